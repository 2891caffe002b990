-- Included by sql/upgrade.sql: every object of the extension, with the properties that matter,
-- as one sorted text, so that two databases can be compared.
CREATE VIEW ext_objects AS
SELECT string_agg(d, E'\n' ORDER BY d) AS objects FROM (
    SELECT pg_describe_object(classid, objid, 0) || ' ' || coalesce((
        SELECT p.oid::regprocedure || ' ' || p.prosecdef || ' ' || p.provolatile::text || ' ' || p.proisstrict || ' ' ||
               p.proparallel::text || ' ' || coalesce(array_to_string(p.proconfig, ','), '') || ' ' || p.prorettype::regtype
        FROM pg_proc p WHERE p.oid = objid AND classid = 'pg_proc'::regclass), '') AS d
    FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'defendable')
    UNION ALL
    SELECT c.relname || '.' || a.attname || ' ' || a.atttypid::regtype || ' ' || a.attnotnull
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = 'defendable'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT tgrelid::regclass || ' ' || tgname || ' ' || tgtype || ' ' || tgfoid::regproc || ' ' || tgdeferrable
    FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'defendable'::regnamespace) AND NOT tgisinternal
    UNION ALL
    SELECT indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid)
    FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'defendable'::regnamespace)
    UNION ALL
    SELECT 'config ' || extconfig::regclass[]::text FROM pg_extension WHERE extname = 'defendable'
) s;
