-- Isolation between organizations: a member of org A gets "not found" (U0404) from every
-- function aimed at org B, and a plain member gets "forbidden" (U0403) from every owner-only
-- function of their own org. Table-driven: each call's SQLSTATE is shown, and nothing is written.
-- errors raised inside the API functions are shown without their PL/pgSQL call stack
\set SHOW_CONTEXT never
INSERT INTO defendable.users (email) VALUES ('a-owner@x.example'), ('a-member@x.example'), ('b-owner@x.example'), ('b-member@x.example');
SELECT user_id AS a_owner FROM defendable.users WHERE email = 'a-owner@x.example' \gset
SELECT user_id AS a_member FROM defendable.users WHERE email = 'a-member@x.example' \gset
SELECT user_id AS b_owner FROM defendable.users WHERE email = 'b-owner@x.example' \gset
SELECT user_id AS b_member FROM defendable.users WHERE email = 'b-member@x.example' \gset
SELECT org_id AS org_a FROM defendable.org_create(:'a_owner', now(), 'A') \gset
SELECT org_id AS org_b FROM defendable.org_create(:'b_owner', now(), 'B') \gset
SELECT ok FROM defendable.invite_accept((SELECT token FROM defendable.invite_create(:'a_owner', now(), :'org_a', 'a-member@x.example')));
SELECT ok FROM defendable.invite_accept((SELECT token FROM defendable.invite_create(:'b_owner', now(), :'org_b', 'b-member@x.example')));
SELECT invite_id AS b_invite FROM defendable.invite_create(:'b_owner', now(), :'org_b', 'pending@x.example') \gset
SELECT key_id AS b_key FROM defendable.apikey_create(:'b_owner', now(), :'org_b', 'b key') \gset

CREATE TEMP TABLE calls (label text, sql text);
INSERT INTO calls VALUES
 ('org_get',          'SELECT defendable.org_get($1, now(), $2)'),
 ('org_members',      'SELECT defendable.org_members($1, now(), $2)'),
 ('member_set_role',  'SELECT defendable.member_set_role($1, now(), $2, $3, ''member'')'),
 ('member_remove',    'SELECT defendable.member_remove($1, now(), $2, $3)'),
 ('invite_create',    'SELECT defendable.invite_create($1, now(), $2, ''intruder@x.example'')'),
 ('invite_revoke',    'SELECT defendable.invite_revoke($1, now(), $2, $4)'),
 ('invite_list',      'SELECT defendable.invite_list($1, now(), $2)'),
 ('apikey_create',    'SELECT defendable.apikey_create($1, now(), $2, ''intruder'')'),
 ('apikey_revoke',    'SELECT defendable.apikey_revoke($1, now(), $2, $5)'),
 ('apikey_list',      'SELECT defendable.apikey_list($1, now(), $2)');

CREATE FUNCTION pg_temp.outcome(q text, actor uuid, org uuid, target uuid, invite uuid, key text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q USING actor, org, target, invite, key;
    RETURN 'allowed';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;

CREATE TEMP TABLE before AS SELECT
    (SELECT count(*) FROM defendable.receipts) AS receipts, (SELECT count(*) FROM defendable.memberships) AS memberships,
    (SELECT count(*) FROM defendable.invites WHERE revoked_at IS NULL) AS invites, (SELECT count(*) FROM defendable.api_keys WHERE revoked_at IS NULL) AS keys;

-- the owner of A, and a member of A, acting on B
SELECT label, pg_temp.outcome(sql, :'a_owner', :'org_b', :'b_member', :'b_invite', :'b_key') AS a_owner_on_b,
              pg_temp.outcome(sql, :'a_member', :'org_b', :'b_member', :'b_invite', :'b_key') AS a_member_on_b
FROM calls ORDER BY label;
-- a plain member of B acting on B (owner-only paths are refused; reading is allowed)
SELECT label, pg_temp.outcome(sql, :'b_member', :'org_b', :'b_owner', :'b_invite', :'b_key') AS b_member_on_b
FROM calls ORDER BY label;
-- nothing was written by any refused call
SELECT (SELECT count(*) FROM defendable.receipts) - receipts AS receipts, (SELECT count(*) FROM defendable.memberships) - memberships AS memberships,
       (SELECT count(*) FROM defendable.invites WHERE revoked_at IS NULL) - invites AS invites,
       (SELECT count(*) FROM defendable.api_keys WHERE revoked_at IS NULL) - keys AS keys FROM before;
-- an API key of B is only ever B's
SELECT key AS bk FROM defendable.apikey_create(:'b_owner', now(), :'org_b', 'second') \gset
SELECT org_id = :'org_b' AS key_is_bs FROM defendable.apikey_authenticate(:'bk');
-- B's receipts never mention A's people, and A's chain is untouched by all of this
SELECT count(*) FROM defendable.receipts WHERE org_id = :'org_b' AND fields::text LIKE '%' || :'a_owner' || '%';
SELECT org_id = :'org_a' AS a, receipts, ok FROM defendable.verify_ledger() WHERE org_id IN (:'org_a', :'org_b') ORDER BY 1;
