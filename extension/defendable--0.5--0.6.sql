/* defendable 0.5 -> 0.6: runs queued by operators (a restore drill is recorded as a Run of the
   organization it reports to, not only as a loose receipt), and a runner may claim one named
   run, so the tool that queued a run is the one that executes it. */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.6'" to load this file. \quit

-- One set of rules for every way a run is queued: by a member, or by an operator.
CREATE FUNCTION defendable.run_insert(org uuid, kind text, input jsonb, actor uuid,
                                      OUT run_id uuid, OUT state text, OUT created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF kind IS NULL OR kind !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' OR length(kind) > 64 THEN
        PERFORM defendable.err('U0422', 'invalid run kind');
    END IF;
    IF input IS NULL OR jsonb_typeof(input) <> 'object' OR length(input::text) > 65536 THEN
        PERFORM defendable.err('U0422', 'run input must be a JSON object of at most 64 KiB');
    END IF;
    INSERT INTO defendable.runs AS x (org_id, kind, input, created_by)
        VALUES (org, run_insert.kind, input, actor)
        RETURNING x.run_id, x.state, x.created_at INTO run_id, state, created_at;
END $$;
COMMENT ON FUNCTION defendable.run_insert(uuid, text, jsonb, uuid) IS
    'Queues a run after checking its kind and input (callers check who may).';

CREATE OR REPLACE FUNCTION defendable.run_create(actor uuid, iat timestamptz, org uuid, kind text, input jsonb,
                                                 OUT run_id uuid, OUT state text, OUT created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    SELECT i.run_id, i.state, i.created_at INTO run_id, state, created_at
        FROM defendable.run_insert(org, kind, input, actor) i;
END $$;

CREATE FUNCTION defendable.run_enqueue(org uuid, kind text, input jsonb,
                                       OUT run_id uuid, OUT state text, OUT created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF org IS NULL OR NOT EXISTS (SELECT 1 FROM defendable.orgs o WHERE o.org_id = org) THEN
        PERFORM defendable.err('U0404', 'organization not found');
    END IF;
    SELECT i.run_id, i.state, i.created_at INTO run_id, state, created_at
        FROM defendable.run_insert(org, kind, input, NULL) i;
END $$;
COMMENT ON FUNCTION defendable.run_enqueue(uuid, text, jsonb) IS
    'An operator (POST /internal/runs) queues a run for an organization, such as a restore drill.';

-- only_run: claim that run if it is claimable, else nothing (a restore drill executes the run it
-- queued, never another queued drill)
DROP FUNCTION defendable.runner_claim(text, interval);
CREATE FUNCTION defendable.runner_claim(runner text, lease interval DEFAULT '5 minutes', only_run uuid DEFAULT NULL)
    RETURNS TABLE (org_id uuid, run_id uuid, kind text, input jsonb, lease_until timestamptz, attempts integer)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF runner IS NULL OR runner !~ '^[A-Za-z0-9._-]{1,64}$' THEN
        PERFORM defendable.err('U0422', 'invalid runner name');
    END IF;
    IF lease IS NULL OR lease < interval '10 seconds' OR lease > interval '1 hour' THEN
        PERFORM defendable.err('U0422', 'a lease lasts 10 seconds to 1 hour');
    END IF;
    -- the oldest queued run, or one whose runner's lease ran out; SKIP LOCKED lets runners claim
    -- in parallel without waiting for each other or claiming the same run
    RETURN QUERY
    UPDATE defendable.runs r SET state = 'running', runner = runner_claim.runner, claimed_at = now(),
        lease_until = now() + lease, attempts = r.attempts + 1
    WHERE (r.org_id, r.run_id) = (SELECT x.org_id, x.run_id FROM defendable.runs x
                                  WHERE (x.state = 'queued' OR (x.state = 'running' AND x.lease_until < now()))
                                    AND (only_run IS NULL OR x.run_id = only_run)
                                  ORDER BY x.created_at, x.run_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING r.org_id, r.run_id, r.kind, r.input, r.lease_until, r.attempts;
END $$;
COMMENT ON FUNCTION defendable.runner_claim(text, interval, uuid) IS
    'A runner claims the oldest queued run (or one whose lease expired), or only the named one, under a lease.';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA defendable FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    defendable.run_enqueue(uuid, text, jsonb),
    defendable.runner_claim(text, interval, uuid)
TO defendable_gateway;
