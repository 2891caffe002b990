/* defendable 0.8 -> 0.9: share link accesses counted in batches.
   share_resolve(token) writes a counter row in every call, so a share link served over HTTP
   cost a write and a commit per request (bench/gateway.sh: 44% of the gateway's share rate at
   64 connections, and the slowest statements of the run). The gateway now resolves with
   share_resolve_uncounted(token), keeps the counts in memory and adds them once a second with
   share_access_add(tokens, accesses). share_resolve(token) stays, counting as before, for
   callers in SQL. */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.9'" to load this file. \quit

CREATE FUNCTION defendable.share_resolve_uncounted(token text) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_share_resolve_uncounted';
COMMENT ON FUNCTION defendable.share_resolve_uncounted(text) IS
    'The receipt bundle of a share link, as share_resolve, without counting the access: for a caller that adds its counts with share_access_add.';

CREATE FUNCTION defendable.share_access_add(tokens text[], accesses bigint[]) RETURNS bigint
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_share_access_add';
COMMENT ON FUNCTION defendable.share_access_add(text[], bigint[]) IS
    'Adds accesses[i] to the access count of the link of tokens[i] (at most 10,000 links per call); unknown tokens are skipped. Returns the number of links counted.';

REVOKE ALL ON FUNCTION
    defendable.share_resolve_uncounted(text),
    defendable.share_access_add(text[], bigint[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    defendable.share_resolve_uncounted(text),
    defendable.share_access_add(text[], bigint[])
TO defendable_gateway;
