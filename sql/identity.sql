-- Identity: magic links (hashed, 15 minutes, single use, no account enumeration), users
-- (normalized unique email), sessions (revocation by iat), orgs, roles and the last owner.
-- errors raised inside the API functions are shown without their PL/pgSQL call stack
\set SHOW_CONTEXT never
\set VERBOSITY default

-- a magic-link request for an unknown address does exactly what it does for a known one
SELECT defendable.auth_request('  Alice@Example.COM ', '192.0.2.1');
SELECT count(*) AS users_created_by_request FROM defendable.users;
SELECT to_email, kind, length(secret) AS token_len, left(secret, 4) AS prefix,
       expires_at BETWEEN now() + interval '14 minutes' AND now() + interval '15 minutes' AS fifteen_minutes
FROM defendable.email_outbox WHERE kind = 'magic_link';
-- only the hash is stored
SELECT a.token_hash = sha256(convert_to(o.secret, 'UTF8')) AS hash_stored,
       NOT EXISTS (SELECT 1 FROM defendable.auth_tokens t WHERE t::text LIKE '%' || o.secret || '%') AS token_not_stored
FROM defendable.auth_tokens a JOIN defendable.email_outbox o ON o.to_email = a.email WHERE o.kind = 'magic_link';
SELECT secret AS t1 FROM defendable.email_outbox WHERE kind = 'magic_link' ORDER BY created_at LIMIT 1 \gset

-- the token and the outbox message are one transaction: a rollback leaves neither
BEGIN;
SELECT defendable.auth_request('ghost@example.com');
ROLLBACK;
SELECT count(*) AS tokens, (SELECT count(*) FROM defendable.email_outbox) AS messages FROM defendable.auth_tokens;

-- verify: creates the user on first login, returns memberships, works once
SELECT ok, email, memberships FROM defendable.auth_verify(:'t1', '192.0.2.1');
SELECT ok, user_id IS NULL AS no_user, email IS NULL AS no_email FROM defendable.auth_verify(:'t1', '192.0.2.1');
SELECT email, last_login_at IS NOT NULL AS logged_in FROM defendable.users;
SELECT user_id AS alice FROM defendable.users WHERE email = 'alice@example.com' \gset
-- a newer request does not revive an old token, and an expired token fails
SELECT defendable.auth_request('alice@example.com');
SELECT ok FROM defendable.auth_verify(:'t1');
SELECT defendable.auth_request('alice@example.com');
SELECT secret AS t_exp FROM defendable.email_outbox WHERE kind = 'magic_link' ORDER BY created_at DESC LIMIT 1 \gset
UPDATE defendable.auth_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = sha256(convert_to(:'t_exp', 'UTF8'));
SELECT ok FROM defendable.auth_verify(:'t_exp');
SELECT ok FROM defendable.auth_verify('dfm_nonsense');
SELECT ok FROM defendable.auth_verify('');
-- every failure is evidence that survives: counted by kind
SELECT kind, events FROM defendable.security_event_counts(now() - interval '1 hour') ORDER BY kind;
-- a second user, and the email rules
SELECT defendable.auth_request('bob@example.com');
SELECT ok FROM defendable.auth_verify((SELECT secret FROM defendable.email_outbox WHERE to_email = 'bob@example.com'));
SELECT user_id AS bob FROM defendable.users WHERE email = 'bob@example.com' \gset
\set VERBOSITY sqlstate
SELECT defendable.auth_request('not an address');
SELECT defendable.auth_request('a@b');
SELECT defendable.auth_request(repeat('a', 250) || '@example.com');
SELECT defendable.auth_request(NULL);
\set VERBOSITY default
SELECT defendable.auth_request('@example.com');
\set VERBOSITY sqlstate
INSERT INTO defendable.users (email) VALUES ('Carol@Example.com');
\set VERBOSITY default
-- no receipt and no event holds a token
SELECT NOT EXISTS (SELECT 1 FROM defendable.receipts r, defendable.email_outbox o WHERE r::text LIKE '%' || o.secret || '%') AS receipts_clean,
       NOT EXISTS (SELECT 1 FROM defendable.security_events e, defendable.email_outbox o WHERE e::text LIKE '%' || o.secret || '%') AS events_clean;

-- sessions: a JWT's iat must not be older than the user's last revocation
SELECT user_id = :'alice' AS me, email FROM defendable.me(:'alice', now());
SELECT org_id AS acme FROM defendable.org_create(:'alice', now(), '  Acme  ') \gset
SELECT name, role FROM defendable.org_get(:'alice', now(), :'acme');
SELECT defendable.session_revoke_all(:'alice', now() - interval '1 minute') > now() - interval '1 minute' AS revoked;
SELECT defendable.me(:'alice', now() - interval '1 minute');
SELECT email FROM defendable.me(:'alice', clock_timestamp());
SELECT defendable.me(:'alice', NULL);
SELECT defendable.me('00000000-0000-4000-8000-000000000000', now());
SELECT kind FROM defendable.receipts WHERE org_id = :'acme' ORDER BY seq;

-- orgs and roles
SELECT defendable.org_create(:'alice', now(), '');
SELECT defendable.org_create(:'alice', now(), E'bad\nname');
SELECT defendable.org_create(:'alice', now(), repeat('x', 201));
SELECT user_id = :'alice' AS alice, role FROM defendable.org_members(:'alice', now(), :'acme');
-- bob joins through an invite (see the invites suite); here directly, as the setup
SELECT token AS inv FROM defendable.invite_create(:'alice', now(), :'acme', 'bob@example.com') \gset
SELECT ok FROM defendable.invite_accept(:'inv');
SELECT role FROM defendable.org_get(:'bob', now(), :'acme');
-- a member cannot change roles or remove others
SELECT defendable.member_set_role(:'bob', now(), :'acme', :'alice', 'member');
SELECT defendable.member_remove(:'bob', now(), :'acme', :'alice');
-- the last owner can be neither demoted nor removed, even by themselves
SELECT defendable.member_set_role(:'alice', now(), :'acme', :'alice', 'member');
SELECT defendable.member_remove(:'alice', now(), :'acme', :'alice');
SELECT defendable.member_set_role(:'alice', now(), :'acme', :'bob', 'admin');
SELECT defendable.member_set_role(:'alice', now(), :'acme', '00000000-0000-4000-8000-000000000000', 'owner');
-- promote bob; now alice may step down, and bob may not demote the last remaining owner
SELECT defendable.member_set_role(:'alice', now(), :'acme', :'bob', 'owner');
SELECT defendable.member_set_role(:'alice', now(), :'acme', :'alice', 'member');
SELECT defendable.member_set_role(:'bob', now(), :'acme', :'bob', 'member');
SELECT user_id = :'alice' AS alice, role FROM defendable.org_members(:'bob', now(), :'acme') ORDER BY 1;
-- a member may leave; then the org does not exist for them
SELECT defendable.member_remove(:'alice', now(), :'acme', :'alice');
SELECT defendable.org_get(:'alice', now(), :'acme');
SELECT kind, d.public_fields FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
WHERE r.org_id = :'acme' ORDER BY r.seq;
SELECT receipts, ok FROM defendable.verify_ledger(:'acme');

-- the gateway records refusals that rolled back (401/403, webhook signatures) in a new statement
SELECT defendable.security_event_record('http.forbidden', :'acme', :'bob', '203.0.113.9', '{"route": "PATCH /orgs/{org}/members/{user}"}');
SELECT kind, org_id = :'acme' AS org, user_id = :'bob' AS usr, ip, detail FROM defendable.security_events WHERE kind = 'http.forbidden';
\set VERBOSITY sqlstate
SELECT defendable.security_event_record('Bad Kind');
SELECT defendable.security_event_record('ok.kind', NULL, NULL, NULL, '[1]');
SELECT defendable.security_event_record('ok.kind', NULL, NULL, NULL, jsonb_build_object('x', repeat('y', 5000)));
-- the evidence itself cannot be edited or deleted
UPDATE defendable.security_events SET kind = 'nothing.happened';
DELETE FROM defendable.security_events;
\set VERBOSITY default
-- retention: events older than the retention go, the rest stay; at least a day is kept
SET session_replication_role = replica;
UPDATE defendable.security_events SET at = at - interval '100 days' WHERE kind = 'http.forbidden';
RESET session_replication_role;
SELECT defendable.security_events_cleanup() AS removed, (SELECT count(*) > 0 FROM defendable.security_events) AS others_kept;
SELECT defendable.security_events_cleanup(interval '1 hour');
-- expired link secrets are wiped from the outbox, expired tokens dropped
UPDATE defendable.email_outbox SET expires_at = now() - interval '1 minute' WHERE to_email = 'bob@example.com';
UPDATE defendable.auth_tokens SET expires_at = now() - interval '2 days' WHERE email = 'bob@example.com';
SELECT defendable.auth_cleanup() > 0 AS cleaned;
SELECT secret IS NULL AS bob_link_wiped FROM defendable.email_outbox WHERE to_email = 'bob@example.com';
SELECT count(*) AS bob_tokens FROM defendable.auth_tokens WHERE email = 'bob@example.com';
