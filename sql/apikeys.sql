-- API keys: owner-only create/revoke/list, dfd_<12 hex id>_<43 char secret>, only the SHA-256 of
-- the secret stored, checked in constant time in C, last_used_at, revoked keys fail at once.
-- errors raised inside the API functions are shown without their PL/pgSQL call stack
\set SHOW_CONTEXT never
INSERT INTO defendable.users (email) VALUES ('owner@keys.example'), ('member@keys.example');
SELECT user_id AS owner FROM defendable.users WHERE email = 'owner@keys.example' \gset
SELECT user_id AS member FROM defendable.users WHERE email = 'member@keys.example' \gset
SELECT org_id AS org FROM defendable.org_create(:'owner', now(), 'Keys Ltd') \gset
SELECT token AS t FROM defendable.invite_create(:'owner', now(), :'org', 'member@keys.example') \gset
SELECT ok FROM defendable.invite_accept(:'t');

SELECT key_id AS kid, key AS k FROM defendable.apikey_create(:'owner', now(), :'org', 'ci deploys') \gset
SELECT :'k' ~ '^dfd_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$' AS format, substr(:'k', 5, 12) = :'kid' AS id_in_key;
SELECT secret_hash = sha256(convert_to(substr(:'k', 18), 'UTF8')) AS hash_of_secret,
       NOT EXISTS (SELECT 1 FROM defendable.api_keys a WHERE a::text LIKE '%' || substr(:'k', 18) || '%') AS secret_not_stored,
       NOT EXISTS (SELECT 1 FROM defendable.receipts r WHERE r::text LIKE '%' || substr(:'k', 18) || '%') AS not_in_receipts,
       NOT EXISTS (SELECT 1 FROM defendable.disclosures d WHERE d::text LIKE '%' || substr(:'k', 18) || '%') AS not_in_disclosures
FROM defendable.api_keys WHERE key_id = :'kid';

-- authentication
SELECT ok, org_id = :'org' AS org, key_id = :'kid' AS kid FROM defendable.apikey_authenticate(:'k');
SELECT last_used_at IS NOT NULL AS used FROM defendable.api_keys WHERE key_id = :'kid';
-- one character off anywhere in the secret, a wrong id, a wrong shape: all refused
SELECT length(:'k') AS key_length;
SELECT ok FROM defendable.apikey_authenticate(left(:'k', 59) || CASE WHEN right(:'k', 1) = 'A' THEN 'B' ELSE 'A' END);
SELECT ok FROM defendable.apikey_authenticate(overlay(:'k' placing CASE WHEN substr(:'k', 20, 1) = 'Z' THEN 'Y' ELSE 'Z' END from 20 for 1));
SELECT ok FROM defendable.apikey_authenticate('dfd_ffffffffffff' || substr(:'k', 17));
-- (a key id of digits only has no upper case: nothing to test then)
SELECT coalesce((SELECT ok FROM defendable.apikey_authenticate('dfd_' || upper(:'kid') || substr(:'k', 17)) WHERE :'kid' ~ '[a-f]'), false) AS ok;
SELECT ok FROM defendable.apikey_authenticate(left(:'k', 59));
SELECT ok FROM defendable.apikey_authenticate('');
SELECT ok FROM defendable.apikey_authenticate('Bearer ' || :'k');
-- the events name the key id at most, never the secret
SELECT detail ->> 'reason' AS reason, count(*) FROM defendable.security_events WHERE kind = 'apikey.invalid' GROUP BY 1 ORDER BY 1;
SELECT NOT EXISTS (SELECT 1 FROM defendable.security_events e WHERE e::text LIKE '%' || substr(:'k', 18, 20) || '%') AS events_hold_no_secret;

-- list: owners only, never a secret
SELECT key_id = :'kid' AS kid, name, revoked_at IS NULL AS active FROM defendable.apikey_list(:'owner', now(), :'org');
\set VERBOSITY sqlstate
SELECT defendable.apikey_list(:'member', now(), :'org');
SELECT defendable.apikey_create(:'member', now(), :'org', 'sneaky');
SELECT defendable.apikey_revoke(:'member', now(), :'org', :'kid');
SELECT defendable.apikey_create(:'owner', now(), :'org', '');
SELECT defendable.apikey_create(:'owner', now(), :'org', repeat('n', 101));
SELECT defendable.apikey_revoke(:'owner', now(), :'org', 'ffffffffffff');
\set VERBOSITY default

-- revoked keys fail at once
SELECT defendable.apikey_revoke(:'owner', now(), :'org', :'kid');
SELECT ok FROM defendable.apikey_authenticate(:'k');
SELECT defendable.apikey_revoke(:'owner', now(), :'org', :'kid');
SELECT kind, d.public_fields FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
WHERE r.org_id = :'org' AND kind LIKE 'apikey.%' ORDER BY r.seq;
