-- Email delivery state: a claim is committed before the send and hides the message from other
-- senders; a failure that delivered nothing is retried after a backoff; a permanent failure, the
-- last attempt, or a send that never reported back is given up (secret wiped, email.failed event),
-- because sending again could deliver twice.
\set SHOW_CONTEXT never
SELECT defendable.auth_request('retry@x.example'), defendable.auth_request('perm@x.example'),
       defendable.auth_request('stale@x.example');
SELECT message_id AS m FROM defendable.email_outbox WHERE to_email = 'retry@x.example' \gset
SELECT message_id AS p FROM defendable.email_outbox WHERE to_email = 'perm@x.example' \gset
SELECT message_id AS s FROM defendable.email_outbox WHERE to_email = 'stale@x.example' \gset
SELECT count(*) AS claimed FROM defendable.outbox_claim(100) WHERE to_email LIKE '%@x.example' AND to_email IN ('retry@x.example', 'perm@x.example', 'stale@x.example');
-- claimed (sending): not claimable again
SELECT count(*) AS claimed_again FROM defendable.outbox_claim(100) WHERE to_email IN ('retry@x.example', 'perm@x.example', 'stale@x.example');
-- nothing delivered: retried later, not now
SELECT defendable.outbox_mark_failed(:'m', 'smtp: could not connect', true) AS outcome;
SELECT sending_at IS NULL AS released, next_attempt_at > now() + interval '29 seconds' AS backoff, failed_at IS NULL AS not_given_up,
       secret IS NOT NULL AS link_kept, last_error FROM defendable.email_outbox WHERE message_id = :'m';
SELECT count(*) AS not_yet FROM defendable.outbox_claim(100) WHERE message_id = :'m';
UPDATE defendable.email_outbox SET next_attempt_at = now() - interval '1 second' WHERE message_id = :'m';
SELECT attempts FROM defendable.outbox_claim(100) WHERE message_id = :'m';
-- the second retry waits twice as long
SELECT defendable.outbox_mark_failed(:'m', 'smtp: 451 try later', true) AS outcome;
SELECT next_attempt_at > now() + interval '59 seconds' AS doubled FROM defendable.email_outbox WHERE message_id = :'m';
-- the last allowed attempt gives up even when retryable
UPDATE defendable.email_outbox SET next_attempt_at = NULL, attempts = 4 WHERE message_id = :'m';
SELECT attempts FROM defendable.outbox_claim(100) WHERE message_id = :'m';
SELECT defendable.outbox_mark_failed(:'m', 'smtp: 451 try later', true) AS outcome;
-- a permanent refusal gives up at once
SELECT defendable.outbox_mark_failed(:'p', 'smtp: 550 no such user', false) AS outcome;
SELECT to_email, failed_at IS NOT NULL AS given_up, secret IS NULL AS link_wiped, sending_at IS NULL AS released
FROM defendable.email_outbox WHERE message_id IN (:'m', :'p') ORDER BY to_email;
SELECT count(*) AS claimable FROM defendable.outbox_claim(100) WHERE message_id IN (:'m', :'p');
-- a send that never reported back is given up by the next claim, not retried
UPDATE defendable.email_outbox SET sending_at = now() - interval '11 minutes' WHERE message_id = :'s';
SELECT count(*) AS reclaimed FROM defendable.outbox_claim(100) WHERE message_id = :'s';
SELECT failed_at IS NOT NULL AS given_up, secret IS NULL AS link_wiped, last_error FROM defendable.email_outbox WHERE message_id = :'s';
SELECT detail ->> 'reason' AS reason, detail ? 'secret' AS has_secret FROM defendable.security_events
WHERE kind = 'email.failed' AND (detail ->> 'message_id')::uuid IN (:'m', :'p', :'s') ORDER BY event_id;
-- a sender that reports success late (after being given up) is still believed: it was sent
SELECT defendable.outbox_mark_sent(:'s');
SELECT sent_at IS NOT NULL AS sent, sending_at IS NULL AS released FROM defendable.email_outbox WHERE message_id = :'s';
-- an unknown message is reported as such
SELECT defendable.outbox_mark_failed(gen_random_uuid(), 'x', true) AS outcome;
