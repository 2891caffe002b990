-- Invites: owner-only, email-bound, token returned once and stored as SHA-256, single use,
-- expiring (7 days by default), revocable; accepting creates the membership and a receipt.
-- errors raised inside the API functions are shown without their PL/pgSQL call stack
\set SHOW_CONTEXT never
INSERT INTO defendable.users (email) VALUES ('owner@inv.example'), ('member@inv.example');
SELECT user_id AS owner FROM defendable.users WHERE email = 'owner@inv.example' \gset
SELECT user_id AS member FROM defendable.users WHERE email = 'member@inv.example' \gset
SELECT org_id AS org FROM defendable.org_create(:'owner', now(), 'Invites Inc') \gset
SELECT token AS mt FROM defendable.invite_create(:'owner', now(), :'org', 'member@inv.example') \gset
SELECT ok, org_id = :'org' AS org FROM defendable.invite_accept(:'mt');

SELECT invite_id AS i1, token AS t1, expires_at BETWEEN now() + interval '7 days' - interval '1 minute' AND now() + interval '7 days' AS seven_days
FROM defendable.invite_create(:'owner', now(), :'org', '  New.Person@Inv.Example ') \gset
SELECT :'seven_days' AS default_lifetime_seven_days, left(:'t1', 4) AS prefix, length(:'t1') AS len;
SELECT email, role, token_hash = sha256(convert_to(:'t1', 'UTF8')) AS hash_stored,
       NOT EXISTS (SELECT 1 FROM defendable.invites i WHERE i::text LIKE '%' || :'t1' || '%') AS token_not_stored
FROM defendable.invites WHERE invite_id = :'i1';
-- the email is queued with the invite, in the same transaction
SELECT kind, to_email, payload FROM defendable.email_outbox WHERE secret = :'t1';
-- the receipt names the invite and the role; the email is committed but never public
SELECT d.public_fields, r.fields ? 'email' AS email_committed,
       defendable.public_projection(r.org_id, r.seq)::text !~ 'new\.person' AS email_not_public
FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
WHERE r.org_id = :'org' AND r.kind = 'invite.create' ORDER BY r.seq DESC LIMIT 1;
-- only owners invite
\set VERBOSITY sqlstate
SELECT defendable.invite_create(:'member', now(), :'org', 'x@inv.example');
SELECT defendable.invite_list(:'member', now(), :'org');
\set VERBOSITY default
SELECT email, role, status FROM defendable.invite_list(:'owner', now(), :'org') ORDER BY email;

-- accepting creates the user and the membership, once
SELECT ok, email, org_id = :'org' AS org, memberships -> 0 ->> 'role' AS role FROM defendable.invite_accept(:'t1', '198.51.100.7');
SELECT ok FROM defendable.invite_accept(:'t1');
SELECT u.email, m.role FROM defendable.memberships m JOIN defendable.users u USING (user_id) WHERE m.org_id = :'org' ORDER BY 1;
SELECT accepted_at IS NOT NULL AS accepted, accepted_by = (SELECT user_id FROM defendable.users WHERE email = 'new.person@inv.example') AS by_invitee
FROM defendable.invites WHERE invite_id = :'i1';

-- an owner invite; accepted by someone already a member keeps their role
SELECT token AS t2 FROM defendable.invite_create(:'owner', now(), :'org', 'member@inv.example', 'owner') \gset
SELECT ok FROM defendable.invite_accept(:'t2');
SELECT role FROM defendable.memberships WHERE org_id = :'org' AND user_id = :'member';

-- revoked and expired invites fail; unknown tokens fail the same way
SELECT invite_id AS i3, token AS t3 FROM defendable.invite_create(:'owner', now(), :'org', 'late@inv.example') \gset
SELECT defendable.invite_revoke(:'owner', now(), :'org', :'i3');
SELECT secret IS NULL AS link_wiped_from_outbox FROM defendable.email_outbox WHERE to_email = 'late@inv.example';
SELECT ok FROM defendable.invite_accept(:'t3');
SELECT defendable.invite_revoke(:'owner', now(), :'org', :'i3');
SELECT token AS t4 FROM defendable.invite_create(:'owner', now(), :'org', 'slow@inv.example', 'member', interval '1 minute') \gset
UPDATE defendable.invites SET expires_at = now() - interval '1 second' WHERE token_hash = sha256(convert_to(:'t4', 'UTF8'));
SELECT ok FROM defendable.invite_accept(:'t4');
SELECT ok FROM defendable.invite_accept('dfi_unknown');
SELECT status, count(*) FROM defendable.invite_list(:'owner', now(), :'org') GROUP BY status ORDER BY status;
SELECT kind, events FROM defendable.security_event_counts(now() - interval '1 hour') WHERE kind LIKE 'invite.%';

-- bad input: clear errors, nothing written
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM defendable.invites) AS invites, (SELECT count(*) FROM defendable.receipts) AS receipts;
\set VERBOSITY sqlstate
SELECT defendable.invite_create(:'owner', now(), :'org', 'not-an-email');
SELECT defendable.invite_create(:'owner', now(), :'org', 'x@inv.example', 'admin');
SELECT defendable.invite_create(:'owner', now(), :'org', 'x@inv.example', 'member', interval '31 days');
SELECT defendable.invite_create(:'owner', now(), :'org', 'x@inv.example', 'member', interval '10 seconds');
SELECT defendable.invite_create(:'owner', now(), :'org', NULL);
SELECT defendable.invite_revoke(:'owner', now(), :'org', '00000000-0000-4000-8000-000000000000');
\set VERBOSITY default
SELECT (SELECT count(*) FROM defendable.invites) - invites AS new_invites, (SELECT count(*) FROM defendable.receipts) - receipts AS new_receipts FROM before;
SELECT kind FROM defendable.receipts WHERE org_id = :'org' ORDER BY seq;
