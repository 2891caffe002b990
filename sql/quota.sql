-- quota_take: fixed windows aligned to UTC (one day is the UTC day), one row per window, costs,
-- limits, bad input, and cleanup of old windows. (Exactness under concurrency: the isolation
-- spec quota_exact and scripts/check-quota-concurrency.)
-- errors raised inside the API functions are shown without their PL/pgSQL call stack
\set SHOW_CONTEXT never
-- one transaction: windows follow the transaction's start time, so no boundary can fall in between
BEGIN;
SELECT allowed, used, remaining FROM defendable.quota_take('test.scope', 'alice', 3, interval '10 minutes');
SELECT allowed, used, remaining FROM defendable.quota_take('test.scope', 'alice', 3, interval '10 minutes', 2);
SELECT allowed, used, remaining FROM defendable.quota_take('test.scope', 'alice', 3, interval '10 minutes');
-- the limit is never exceeded, and a refused take changes nothing
SELECT allowed, used, remaining FROM defendable.quota_take('test.scope', 'alice', 3, interval '10 minutes');
SELECT used FROM defendable.quota_counters WHERE scope = 'test.scope' AND subject = 'alice';
COMMIT;
-- other subjects and scopes count apart; a cost above the limit is refused without a row
SELECT allowed, used FROM defendable.quota_take('test.scope', 'bob', 3, interval '10 minutes');
SELECT allowed, used FROM defendable.quota_take('other.scope', 'alice', 3, interval '10 minutes');
SELECT allowed, used, remaining FROM defendable.quota_take('test.scope', 'carol', 3, interval '10 minutes', 4);
SELECT count(*) AS carol_rows FROM defendable.quota_counters WHERE subject = 'carol';
SELECT allowed, used, remaining FROM defendable.quota_take('test.zero', 'x', 0, interval '1 hour');
-- windows are aligned to UTC: a one-day window ends at the next UTC midnight, an hour on the hour
SELECT reset_at = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day' AS utc_day
FROM defendable.quota_take('test.daily', 'org-1', 500, interval '1 day');
SELECT reset_at = date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 hour' AS utc_hour
FROM defendable.quota_take('test.hourly', 'org-1', 60, interval '1 hour');
SELECT extract(epoch FROM reset_at)::bigint % 600 AS on_ten_minutes FROM defendable.quota_take('test.scope', 'alice', 3, interval '10 minutes');
SELECT window_end - window_start AS span FROM defendable.quota_counters WHERE scope = 'test.daily';
-- one row per scope, subject and window
SELECT count(*) AS rows FROM defendable.quota_counters WHERE scope = 'test.scope';
-- bad input
\set VERBOSITY sqlstate
SELECT defendable.quota_take('test.scope', 'alice', 3, interval '1 month');
SELECT defendable.quota_take('test.scope', 'alice', 3, interval '0 seconds');
SELECT defendable.quota_take('test.scope', 'alice', 3, interval '1.5 seconds');
SELECT defendable.quota_take('test.scope', 'alice', 3, interval '40 days');
SELECT defendable.quota_take('test.scope', 'alice', -1, interval '1 hour');
SELECT defendable.quota_take('test.scope', 'alice', 3, interval '1 hour', 0);
SELECT defendable.quota_take('', 'alice', 3, interval '1 hour');
SELECT defendable.quota_take('test.scope', repeat('s', 301), 3, interval '1 hour');
SELECT defendable.quota_take(NULL, 'alice', 3, interval '1 hour');
\set VERBOSITY default
-- cleanup removes only windows that ended long enough ago
UPDATE defendable.quota_counters SET window_start = window_start - interval '3 days', window_end = window_end - interval '3 days' WHERE subject = 'bob';
SELECT defendable.quota_cleanup() AS removed;
SELECT count(*) FILTER (WHERE subject = 'bob') AS bob, count(*) FILTER (WHERE subject = 'alice') AS alice FROM defendable.quota_counters;
