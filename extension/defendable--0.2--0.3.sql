/* defendable 0.2 -> 0.3: tenancy, identity and access. Orgs, users, memberships with roles,
   invites, magic links, sessions, API keys, security events, quotas, database roles.

   Every API function is SECURITY DEFINER with a pinned search_path, checks its caller itself
   (owner-only paths are enforced here, not only in the gateway), and leaves a receipt for
   every material action. Errors use the SQLSTATEs of docs/access-model.md:
     U0401 unauthorized   U0403 forbidden   U0404 not found   U0409 conflict
     U0410 expired        U0422 invalid     U0429 quota exceeded */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.3'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE defendable.users (
    user_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_login_at timestamptz,
    -- JWTs issued before this instant are refused (logout everywhere, offboarding)
    sessions_valid_after timestamptz NOT NULL DEFAULT '-infinity',
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalized CHECK (email OPERATOR(pg_catalog.=) pg_catalog.lower(pg_catalog.btrim(email)))
);
COMMENT ON TABLE defendable.users IS 'People who log in; email normalized (trimmed, lower case) and unique.';

CREATE TABLE defendable.orgs (
    org_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by uuid NOT NULL,
    CONSTRAINT orgs_pkey PRIMARY KEY (org_id)
);
COMMENT ON TABLE defendable.orgs IS 'Organizations (tenants); each has its own receipt chain.';

CREATE TABLE defendable.memberships (
    org_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT memberships_pkey PRIMARY KEY (org_id, user_id),
    CONSTRAINT memberships_role_check CHECK (role OPERATOR(pg_catalog.=) ANY (ARRAY['owner', 'member']))
);
CREATE INDEX memberships_user_idx ON defendable.memberships (user_id);
COMMENT ON TABLE defendable.memberships IS 'Who belongs to which organization, as owner or member. An organization always keeps an owner.';

CREATE TABLE defendable.invites (
    invite_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    org_id uuid NOT NULL,
    email text NOT NULL,
    role text NOT NULL,
    token_hash bytea NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid,
    revoked_at timestamptz,
    CONSTRAINT invites_pkey PRIMARY KEY (org_id, invite_id),
    CONSTRAINT invites_token_hash_key UNIQUE (token_hash),
    CONSTRAINT invites_role_check CHECK (role OPERATOR(pg_catalog.=) ANY (ARRAY['owner', 'member']))
);
COMMENT ON TABLE defendable.invites IS 'Email-bound, single-use, expiring invitations; only the SHA-256 of each token is kept.';

CREATE TABLE defendable.auth_tokens (
    token_hash bytea NOT NULL,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz,
    CONSTRAINT auth_tokens_pkey PRIMARY KEY (token_hash)
);
CREATE INDEX auth_tokens_expires_idx ON defendable.auth_tokens (expires_at);
COMMENT ON TABLE defendable.auth_tokens IS 'Magic-link tokens (SHA-256 only): single use, 15 minutes.';

CREATE TABLE defendable.api_keys (
    key_id text NOT NULL,
    org_id uuid NOT NULL,
    name text NOT NULL,
    secret_hash bytea NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_used_at timestamptz,
    revoked_at timestamptz,
    revoked_by uuid,
    CONSTRAINT api_keys_pkey PRIMARY KEY (key_id)
);
CREATE INDEX api_keys_org_idx ON defendable.api_keys (org_id);
COMMENT ON TABLE defendable.api_keys IS 'Organization API keys dfd_<id>_<secret>; only the SHA-256 of the secret is kept.';

CREATE TABLE defendable.email_outbox (
    message_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    kind text NOT NULL,
    to_email text NOT NULL,
    org_id uuid,
    -- the link token, kept only until the message is sent or expires (see docs/access-model.md)
    secret text,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz NOT NULL,
    sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    CONSTRAINT email_outbox_pkey PRIMARY KEY (message_id)
);
COMMENT ON TABLE defendable.email_outbox IS 'Transactional outbox of magic links and invites, written in the same transaction as their token; the gateway delivers them.';

CREATE TABLE defendable.security_events (
    event_id bigint GENERATED ALWAYS AS IDENTITY,
    at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    kind text NOT NULL,
    org_id uuid,
    user_id uuid,
    ip inet,
    detail jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT security_events_pkey PRIMARY KEY (event_id)
);
CREATE INDEX security_events_at_idx ON defendable.security_events (at);
COMMENT ON TABLE defendable.security_events IS 'Failed logins, invalid keys, refused access, webhook signature failures. Never holds a secret.';

CREATE TABLE defendable.quota_counters (
    scope text NOT NULL,
    subject text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    used integer NOT NULL,
    CONSTRAINT quota_counters_pkey PRIMARY KEY (scope, subject, window_start)
);
CREATE INDEX quota_counters_end_idx ON defendable.quota_counters (window_end);
COMMENT ON TABLE defendable.quota_counters IS 'Fixed-window counters of quota_take(), one row per scope, subject and window.';

SELECT pg_catalog.pg_extension_config_dump('defendable.users', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.orgs', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.memberships', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.invites', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.auth_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.email_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.security_events', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.quota_counters', '');

REVOKE ALL ON defendable.users, defendable.orgs, defendable.memberships, defendable.invites,
    defendable.auth_tokens, defendable.api_keys, defendable.email_outbox,
    defendable.security_events, defendable.quota_counters FROM PUBLIC;

-- security events are evidence: written only by the extension, never changed
CREATE TRIGGER security_events_guard_rows BEFORE INSERT OR UPDATE OR DELETE ON defendable.security_events
    FOR EACH ROW EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER security_events_guard_truncate BEFORE TRUNCATE ON defendable.security_events
    FOR EACH STATEMENT EXECUTE FUNCTION defendable.guard_write();

-- ---------------------------------------------------------------------------------------------
-- C functions
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.quota_take(scope text, subject text, lim integer, win interval,
                                      cost integer DEFAULT 1,
                                      OUT allowed boolean, OUT used integer, OUT remaining integer,
                                      OUT reset_at timestamptz)
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_quota_take';
COMMENT ON FUNCTION defendable.quota_take(text, text, integer, interval, integer) IS
    'Atomic fixed-window counter aligned to UTC: takes cost units of lim per window if they fit.';

CREATE FUNCTION defendable.apikey_authenticate(key text,
                                               OUT ok boolean, OUT org_id uuid, OUT key_id text)
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_apikey_authenticate';
COMMENT ON FUNCTION defendable.apikey_authenticate(text) IS
    'Checks an API key (constant-time comparison of the secret''s SHA-256). A bad key records a security event and returns ok = false.';

CREATE FUNCTION defendable.random_token(prefix text, nbytes integer) RETURNS text
    LANGUAGE c VOLATILE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'dfd_random_token';
COMMENT ON FUNCTION defendable.random_token(text, integer) IS
    'prefix || base64url(nbytes from pg_strong_random): the secret of invites, magic links and API keys.';

-- ---------------------------------------------------------------------------------------------
-- Internal helpers (not granted to anyone)
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.err(code text, message text, detail text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF detail IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
    END IF;
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail;
END $$;
COMMENT ON FUNCTION defendable.err(text, text, text) IS 'Raises one of the errors of docs/access-model.md.';

CREATE FUNCTION defendable.normalize_email(email text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE e text := lower(btrim(email));
BEGIN
    IF e IS NULL OR length(e) > 254 OR e !~ '^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$' THEN
        PERFORM defendable.err('U0422', 'invalid email address');
    END IF;
    RETURN e;
END $$;
COMMENT ON FUNCTION defendable.normalize_email(text) IS 'Trims and lower-cases an email address; refuses what is not shaped like one.';

CREATE FUNCTION defendable.token_hash(token text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
    AS $$ SELECT sha256(convert_to(token, 'UTF8')) $$;

-- the acting user of a JWT: exists, and the token was issued after the last session revocation
CREATE FUNCTION defendable.check_actor(actor uuid, iat timestamptz) RETURNS defendable.users
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE u defendable.users;
BEGIN
    SELECT * INTO u FROM defendable.users WHERE user_id = actor;
    IF actor IS NULL OR iat IS NULL OR NOT FOUND OR iat < u.sessions_valid_after THEN
        PERFORM defendable.err('U0401', 'invalid or expired session');
    END IF;
    RETURN u;
END $$;

-- the actor's role in org, or U0404 when not a member: other organizations do not exist for them
CREATE FUNCTION defendable.require_member(org uuid, actor uuid) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE r text;
BEGIN
    SELECT role INTO r FROM defendable.memberships WHERE org_id = org AND user_id = actor;
    IF r IS NULL THEN
        PERFORM defendable.err('U0404', 'organization not found');
    END IF;
    RETURN r;
END $$;

CREATE FUNCTION defendable.require_owner(org uuid, actor uuid) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF defendable.require_member(org, actor) <> 'owner' THEN
        PERFORM defendable.err('U0403', 'only an owner of the organization may do this');
    END IF;
END $$;

-- memberships as the gateway puts them into a JWT or a /me answer
CREATE FUNCTION defendable.memberships_of(u uuid) RETURNS jsonb
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('org_id', m.org_id, 'name', o.name, 'role', m.role)
                              ORDER BY o.created_at, m.org_id), '[]')
    FROM defendable.memberships m JOIN defendable.orgs o USING (org_id) WHERE m.user_id = u
$$;

CREATE FUNCTION defendable.record_event(kind text, org uuid, usr uuid, ip inet, detail jsonb) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_record_event';

CREATE FUNCTION defendable.check_name(value text, what text, max_len integer) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE v text := btrim(value);
BEGIN
    IF v IS NULL OR length(v) = 0 OR length(v) > max_len OR v ~ '[[:cntrl:]]' THEN
        PERFORM defendable.err('U0422', format('invalid %s', what),
                               format('The %s has 1 to %s characters and no control characters.', what, max_len));
    END IF;
    RETURN v;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Magic links and sessions
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.auth_request(email text, ip inet DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e text := defendable.normalize_email(email);
    token text := defendable.random_token('dfm_', 32);
BEGIN
    -- the same work whether or not the address has an account: nothing to enumerate
    INSERT INTO defendable.auth_tokens (token_hash, email, expires_at)
        VALUES (defendable.token_hash(token), e, now() + interval '15 minutes');
    INSERT INTO defendable.email_outbox (kind, to_email, secret, expires_at)
        VALUES ('magic_link', e, token, now() + interval '15 minutes');
    PERFORM defendable.record_event('auth.request', NULL, NULL, ip, jsonb_build_object('email', e));
END $$;
COMMENT ON FUNCTION defendable.auth_request(text, inet) IS
    'Creates a one-time login token (15 minutes) and queues its email in the same transaction. Behaves the same for unknown addresses.';

CREATE FUNCTION defendable.auth_verify(token text, ip inet DEFAULT NULL,
                                       OUT ok boolean, OUT user_id uuid, OUT email text,
                                       OUT memberships jsonb)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e text;
    u uuid;
    m record;
BEGIN
    ok := false;
    -- consuming is one UPDATE: of two concurrent verifies, the second waits for the first's row
    -- lock, re-checks consumed_at on the new row version, and finds nothing
    UPDATE defendable.auth_tokens t SET consumed_at = now()
        WHERE t.token_hash = defendable.token_hash(auth_verify.token)
          AND t.consumed_at IS NULL AND t.expires_at > now()
        RETURNING t.email INTO e;
    IF e IS NULL THEN
        -- no error: the event must commit, and the caller learns only "invalid or expired"
        PERFORM defendable.record_event('auth.verify_failed', NULL, NULL, ip, '{}');
        RETURN;
    END IF;
    INSERT INTO defendable.users AS x (email, last_login_at) VALUES (e, now())
        ON CONFLICT ON CONSTRAINT users_email_key DO UPDATE SET last_login_at = now()
        RETURNING x.user_id INTO u;
    FOR m IN SELECT org_id FROM defendable.memberships WHERE memberships.user_id = u ORDER BY org_id LOOP
        PERFORM defendable.append_receipt(m.org_id, 'auth.verify',
            jsonb_build_object('user_id', u, 'method', 'magic_link'), '{user_id, method}');
    END LOOP;
    ok := true;
    user_id := u;
    email := e;
    memberships := defendable.memberships_of(u);
END $$;
COMMENT ON FUNCTION defendable.auth_verify(text, inet) IS
    'Consumes a magic-link token (exactly once) and returns the user, created on first login, and their memberships; ok = false when invalid or expired.';

CREATE FUNCTION defendable.me(actor uuid, iat timestamptz,
                              OUT user_id uuid, OUT email text, OUT memberships jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE u defendable.users := defendable.check_actor(actor, iat);
BEGIN
    user_id := u.user_id;
    email := u.email;
    memberships := defendable.memberships_of(u.user_id);
END $$;
COMMENT ON FUNCTION defendable.me(uuid, timestamptz) IS 'The acting user and their memberships.';

CREATE FUNCTION defendable.session_revoke_all(actor uuid, iat timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u defendable.users := defendable.check_actor(actor, iat);
    revoked_from timestamptz := clock_timestamp();
    m record;
BEGIN
    UPDATE defendable.users SET sessions_valid_after = revoked_from WHERE user_id = u.user_id;
    FOR m IN SELECT org_id FROM defendable.memberships WHERE user_id = u.user_id ORDER BY org_id LOOP
        PERFORM defendable.append_receipt(m.org_id, 'session.revoke',
            jsonb_build_object('user_id', u.user_id), '{user_id}');
    END LOOP;
    RETURN revoked_from;
END $$;
COMMENT ON FUNCTION defendable.session_revoke_all(uuid, timestamptz) IS
    'Logout everywhere: every JWT of the user issued before now is refused from now on.';

-- ---------------------------------------------------------------------------------------------
-- Organizations and memberships
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.org_create(actor uuid, iat timestamptz, name text,
                                      OUT org_id uuid, OUT org_name text, OUT created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u defendable.users := defendable.check_actor(actor, iat);
    n text := defendable.check_name(name, 'organization name', 200);
BEGIN
    INSERT INTO defendable.orgs AS o (name, created_by) VALUES (n, u.user_id)
        RETURNING o.org_id, o.name, o.created_at INTO org_id, org_name, created_at;
    INSERT INTO defendable.memberships (org_id, user_id, role) VALUES (org_create.org_id, u.user_id, 'owner');
    PERFORM defendable.append_receipt(org_create.org_id, 'org.create',
        jsonb_build_object('name', n, 'created_by', u.user_id), '{name, created_by}');
END $$;
COMMENT ON FUNCTION defendable.org_create(uuid, timestamptz, text) IS 'Creates an organization whose first owner is the actor.';

CREATE FUNCTION defendable.org_get(actor uuid, iat timestamptz, org uuid,
                                   OUT org_id uuid, OUT name text, OUT created_at timestamptz, OUT role text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    role := defendable.require_member(org, actor);
    SELECT o.org_id, o.name, o.created_at INTO org_id, name, created_at FROM defendable.orgs o WHERE o.org_id = org;
END $$;
COMMENT ON FUNCTION defendable.org_get(uuid, timestamptz, uuid) IS 'An organization the actor belongs to, with the actor''s role.';

CREATE FUNCTION defendable.org_members(actor uuid, iat timestamptz, org uuid)
    RETURNS TABLE (user_id uuid, email text, role text, joined_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    RETURN QUERY SELECT m.user_id, u.email, m.role, m.created_at
        FROM defendable.memberships m JOIN defendable.users u ON u.user_id = m.user_id
        WHERE m.org_id = org ORDER BY m.created_at, m.user_id;
END $$;
COMMENT ON FUNCTION defendable.org_members(uuid, timestamptz, uuid) IS 'Members of an organization the actor belongs to.';

-- serializes membership changes of one org, so two owners demoting each other cannot leave none
CREATE FUNCTION defendable.lock_org(org uuid) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
    AS $$ SELECT 1 FROM defendable.orgs WHERE org_id = org FOR UPDATE $$;

CREATE FUNCTION defendable.member_set_role(actor uuid, iat timestamptz, org uuid, member uuid, new_role text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE old_role text;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_owner(org, actor);
    IF new_role IS NULL OR new_role NOT IN ('owner', 'member') THEN
        PERFORM defendable.err('U0422', 'invalid role', 'A role is owner or member.');
    END IF;
    PERFORM defendable.lock_org(org);
    SELECT role INTO old_role FROM defendable.memberships WHERE org_id = org AND user_id = member FOR UPDATE;
    IF old_role IS NULL THEN
        PERFORM defendable.err('U0404', 'member not found');
    END IF;
    IF old_role = new_role THEN
        RETURN;
    END IF;
    IF old_role = 'owner' AND (SELECT count(*) FROM defendable.memberships WHERE org_id = org AND role = 'owner') = 1 THEN
        PERFORM defendable.err('U0409', 'an organization must keep at least one owner');
    END IF;
    UPDATE defendable.memberships SET role = new_role WHERE org_id = org AND user_id = member;
    PERFORM defendable.append_receipt(org, 'member.role_change',
        jsonb_build_object('user_id', member, 'old_role', old_role, 'new_role', new_role, 'changed_by', actor),
        '{user_id, old_role, new_role, changed_by}');
END $$;
COMMENT ON FUNCTION defendable.member_set_role(uuid, timestamptz, uuid, uuid, text) IS
    'Owner-only: changes a member''s role; the last owner cannot be demoted.';

CREATE FUNCTION defendable.member_remove(actor uuid, iat timestamptz, org uuid, member uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE old_role text;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    -- owners remove anyone; a member may only leave
    IF member IS DISTINCT FROM actor THEN
        PERFORM defendable.require_owner(org, actor);
    ELSE
        PERFORM defendable.require_member(org, actor);
    END IF;
    PERFORM defendable.lock_org(org);
    SELECT role INTO old_role FROM defendable.memberships WHERE org_id = org AND user_id = member FOR UPDATE;
    IF old_role IS NULL THEN
        PERFORM defendable.err('U0404', 'member not found');
    END IF;
    IF old_role = 'owner' AND (SELECT count(*) FROM defendable.memberships WHERE org_id = org AND role = 'owner') = 1 THEN
        PERFORM defendable.err('U0409', 'an organization must keep at least one owner');
    END IF;
    DELETE FROM defendable.memberships WHERE org_id = org AND user_id = member;
    PERFORM defendable.append_receipt(org, 'member.remove',
        jsonb_build_object('user_id', member, 'role', old_role, 'removed_by', actor), '{user_id, role, removed_by}');
END $$;
COMMENT ON FUNCTION defendable.member_remove(uuid, timestamptz, uuid, uuid) IS
    'Owner-only (or a member leaving): removes a membership; the last owner cannot be removed.';

-- ---------------------------------------------------------------------------------------------
-- Invites
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.invite_create(actor uuid, iat timestamptz, org uuid, email text,
                                         role text DEFAULT 'member', ttl interval DEFAULT '7 days',
                                         OUT invite_id uuid, OUT token text, OUT expires_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE e text;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_owner(org, actor);
    e := defendable.normalize_email(email);
    IF role IS NULL OR role NOT IN ('owner', 'member') THEN
        PERFORM defendable.err('U0422', 'invalid role', 'A role is owner or member.');
    END IF;
    IF ttl IS NULL OR ttl < interval '1 minute' OR ttl > interval '30 days' THEN
        PERFORM defendable.err('U0422', 'invalid invite lifetime', 'An invite lives 1 minute to 30 days.');
    END IF;
    token := defendable.random_token('dfi_', 32);
    expires_at := now() + ttl;
    INSERT INTO defendable.invites AS i (org_id, email, role, token_hash, created_by, expires_at)
        VALUES (org, e, invite_create.role, defendable.token_hash(token), actor, invite_create.expires_at)
        RETURNING i.invite_id INTO invite_id;
    INSERT INTO defendable.email_outbox (kind, to_email, org_id, secret, payload, expires_at)
        VALUES ('invite', e, org, token,
                jsonb_build_object('org_name', (SELECT name FROM defendable.orgs WHERE org_id = org),
                                   'role', invite_create.role), invite_create.expires_at);
    PERFORM defendable.append_receipt(org, 'invite.create',
        jsonb_build_object('invite_id', invite_id, 'email', e, 'role', invite_create.role, 'invited_by', actor),
        '{invite_id, role, invited_by}');
END $$;
COMMENT ON FUNCTION defendable.invite_create(uuid, timestamptz, uuid, text, text, interval) IS
    'Owner-only: invites an email address; the token is returned once and emailed through the outbox.';

CREATE FUNCTION defendable.invite_revoke(actor uuid, iat timestamptz, org uuid, invite uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_owner(org, actor);
    UPDATE defendable.invites SET revoked_at = now()
        WHERE org_id = org AND invite_id = invite AND revoked_at IS NULL AND accepted_at IS NULL;
    IF NOT FOUND THEN
        PERFORM defendable.err('U0404', 'invite not found', 'It does not exist, or was already accepted or revoked.');
    END IF;
    -- the link in the unsent email dies with the invite
    UPDATE defendable.email_outbox SET secret = NULL
        WHERE kind = 'invite' AND org_id = org AND sent_at IS NULL
          AND secret IS NOT NULL AND defendable.token_hash(secret) = (SELECT token_hash FROM defendable.invites WHERE org_id = org AND invite_id = invite);
    PERFORM defendable.append_receipt(org, 'invite.revoke',
        jsonb_build_object('invite_id', invite, 'revoked_by', actor), '{invite_id, revoked_by}');
END $$;
COMMENT ON FUNCTION defendable.invite_revoke(uuid, timestamptz, uuid, uuid) IS 'Owner-only: revokes a pending invite.';

CREATE FUNCTION defendable.invite_list(actor uuid, iat timestamptz, org uuid)
    RETURNS TABLE (invite_id uuid, email text, role text, created_at timestamptz, expires_at timestamptz, status text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_owner(org, actor);
    RETURN QUERY SELECT i.invite_id, i.email, i.role, i.created_at, i.expires_at,
        CASE WHEN i.accepted_at IS NOT NULL THEN 'accepted' WHEN i.revoked_at IS NOT NULL THEN 'revoked'
             WHEN i.expires_at <= now() THEN 'expired' ELSE 'pending' END
        FROM defendable.invites i WHERE i.org_id = org ORDER BY i.created_at, i.invite_id;
END $$;
COMMENT ON FUNCTION defendable.invite_list(uuid, timestamptz, uuid) IS 'Owner-only: the organization''s invites and their status.';

CREATE FUNCTION defendable.invite_accept(token text, ip inet DEFAULT NULL,
                                         OUT ok boolean, OUT user_id uuid, OUT email text,
                                         OUT org_id uuid, OUT memberships jsonb)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE inv defendable.invites;
BEGIN
    ok := false;
    -- single use, like a magic link: one UPDATE decides who wins
    UPDATE defendable.invites i SET accepted_at = now()
        WHERE i.token_hash = defendable.token_hash(invite_accept.token)
          AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
        RETURNING i.* INTO inv;
    IF inv.invite_id IS NULL THEN
        PERFORM defendable.record_event('invite.accept_failed', NULL, NULL, ip, '{}');
        RETURN;
    END IF;
    INSERT INTO defendable.users AS x (email, last_login_at) VALUES (inv.email, now())
        ON CONFLICT ON CONSTRAINT users_email_key DO UPDATE SET last_login_at = now()
        RETURNING x.user_id INTO user_id;
    UPDATE defendable.invites SET accepted_by = user_id WHERE invites.org_id = inv.org_id AND invite_id = inv.invite_id;
    -- already a member: the invite is used up, the existing role stays
    INSERT INTO defendable.memberships (org_id, user_id, role) VALUES (inv.org_id, invite_accept.user_id, inv.role)
        ON CONFLICT DO NOTHING;
    PERFORM defendable.append_receipt(inv.org_id, 'invite.accept',
        jsonb_build_object('invite_id', inv.invite_id, 'user_id', invite_accept.user_id, 'role', inv.role),
        '{invite_id, user_id, role}');
    ok := true;
    email := inv.email;
    org_id := inv.org_id;
    memberships := defendable.memberships_of(invite_accept.user_id);
END $$;
COMMENT ON FUNCTION defendable.invite_accept(text, inet) IS
    'Consumes an invite token (exactly once), creating the user if needed and the membership; logs the user in like a magic link.';

-- ---------------------------------------------------------------------------------------------
-- API keys
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.apikey_create(actor uuid, iat timestamptz, org uuid, name text,
                                         OUT key_id text, OUT key text, OUT created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n text;
    secret text := defendable.random_token('', 32);
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_owner(org, actor);
    n := defendable.check_name(name, 'key name', 100);
    -- 48 random bits as 12 hex digits; the primary key refuses the (unlikely) repeat
    key_id := substr(encode(sha256(convert_to(defendable.random_token('', 16), 'UTF8')), 'hex'), 1, 12);
    key := 'dfd_' || key_id || '_' || secret;
    INSERT INTO defendable.api_keys AS k (key_id, org_id, name, secret_hash, created_by)
        VALUES (apikey_create.key_id, org, n, defendable.token_hash(secret), actor)
        RETURNING k.created_at INTO created_at;
    PERFORM defendable.append_receipt(org, 'apikey.create',
        jsonb_build_object('key_id', apikey_create.key_id, 'name', n, 'created_by', actor), '{key_id, name, created_by}');
END $$;
COMMENT ON FUNCTION defendable.apikey_create(uuid, timestamptz, uuid, text) IS
    'Owner-only: creates an API key dfd_<12 hex id>_<secret>; the key is returned once, only the SHA-256 of the secret is kept.';

CREATE FUNCTION defendable.apikey_revoke(actor uuid, iat timestamptz, org uuid, key text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_owner(org, actor);
    UPDATE defendable.api_keys SET revoked_at = now(), revoked_by = actor
        WHERE org_id = org AND key_id = key AND revoked_at IS NULL;
    IF NOT FOUND THEN
        PERFORM defendable.err('U0404', 'API key not found', 'It does not exist or was already revoked.');
    END IF;
    PERFORM defendable.append_receipt(org, 'apikey.revoke',
        jsonb_build_object('key_id', key, 'revoked_by', actor), '{key_id, revoked_by}');
END $$;
COMMENT ON FUNCTION defendable.apikey_revoke(uuid, timestamptz, uuid, text) IS 'Owner-only: revokes an API key at once.';

CREATE FUNCTION defendable.apikey_list(actor uuid, iat timestamptz, org uuid)
    RETURNS TABLE (key_id text, name text, created_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_owner(org, actor);
    RETURN QUERY SELECT k.key_id, k.name, k.created_at, k.last_used_at, k.revoked_at
        FROM defendable.api_keys k WHERE k.org_id = org ORDER BY k.created_at, k.key_id;
END $$;
COMMENT ON FUNCTION defendable.apikey_list(uuid, timestamptz, uuid) IS 'Owner-only: the organization''s API keys (never their secrets).';

-- ---------------------------------------------------------------------------------------------
-- Security events and quotas
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.security_event_record(kind text, org uuid DEFAULT NULL, usr uuid DEFAULT NULL,
                                                 ip inet DEFAULT NULL, detail jsonb DEFAULT '{}') RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF kind IS NULL OR kind !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' OR length(kind) > 64 THEN
        PERFORM defendable.err('U0422', 'invalid security event kind');
    END IF;
    IF detail IS NULL OR jsonb_typeof(detail) <> 'object' OR length(detail::text) > 4096 THEN
        PERFORM defendable.err('U0422', 'security event detail must be a JSON object of at most 4 KiB');
    END IF;
    PERFORM defendable.record_event(kind, org, usr, ip, detail);
END $$;
COMMENT ON FUNCTION defendable.security_event_record(text, uuid, uuid, inet, jsonb) IS
    'Records a security event. The gateway calls it in its own statement after a request failed, so the evidence outlives the failed transaction.';

CREATE FUNCTION defendable.security_event_counts(since timestamptz DEFAULT now() - interval '5 minutes')
    RETURNS TABLE (kind text, events bigint, last_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.kind, count(*), max(e.at) FROM defendable.security_events e WHERE e.at >= since
    GROUP BY e.kind ORDER BY e.kind
$$;
COMMENT ON FUNCTION defendable.security_event_counts(timestamptz) IS 'Counts of security events per kind since a time: the numbers alerts watch.';

CREATE FUNCTION defendable.security_events_cleanup(older_than interval DEFAULT '90 days') RETURNS bigint
    LANGUAGE c VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_security_events_cleanup';
COMMENT ON FUNCTION defendable.security_events_cleanup(interval) IS 'Deletes security events older than the retention; returns how many.';

CREATE FUNCTION defendable.quota_cleanup(older_than interval DEFAULT '1 day') RETURNS bigint
    LANGUAGE sql VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH d AS (DELETE FROM defendable.quota_counters WHERE window_end < now() - older_than RETURNING 1)
    SELECT count(*) FROM d
$$;
COMMENT ON FUNCTION defendable.quota_cleanup(interval) IS 'Deletes quota windows that ended more than older_than ago; returns how many.';

CREATE FUNCTION defendable.auth_cleanup() RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH t AS (DELETE FROM defendable.auth_tokens WHERE expires_at < now() - interval '1 day' RETURNING 1),
         o AS (UPDATE defendable.email_outbox SET secret = NULL WHERE secret IS NOT NULL AND expires_at < now() RETURNING 1)
    SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM o)
$$;
COMMENT ON FUNCTION defendable.auth_cleanup() IS 'Drops expired magic-link tokens and wipes link secrets of expired outbox messages.';

-- ---------------------------------------------------------------------------------------------
-- Row-level security: defence in depth. The API functions run as the extension owner and see
-- every row; any other role that is ever granted SELECT sees nothing, except the auditor's reads.
-- ---------------------------------------------------------------------------------------------

ALTER TABLE defendable.receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.disclosures ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.merkle_nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.invites ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.auth_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.email_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.security_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.quota_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.disclosure_policy ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------------
-- Database roles
-- ---------------------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'defendable_gateway') THEN
        CREATE ROLE defendable_gateway NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'defendable_auditor') THEN
        CREATE ROLE defendable_auditor NOLOGIN;
    END IF;
END $$;

CREATE POLICY auditor_read ON defendable.receipts FOR SELECT TO defendable_auditor USING (true);
CREATE POLICY auditor_read ON defendable.heads FOR SELECT TO defendable_auditor USING (true);
CREATE POLICY auditor_read ON defendable.merkle_nodes FOR SELECT TO defendable_auditor USING (true);
CREATE POLICY auditor_read ON defendable.checkpoints FOR SELECT TO defendable_auditor USING (true);

-- nothing of the extension is callable by PUBLIC; one statement, so no function can be missed
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA defendable FROM PUBLIC;

GRANT USAGE ON SCHEMA defendable TO defendable_gateway, defendable_auditor;

-- the gateway: the API functions, nothing else (no table privilege at all)
GRANT EXECUTE ON FUNCTION
    defendable.quota_take(text, text, integer, interval, integer),
    defendable.apikey_authenticate(text),
    defendable.auth_request(text, inet),
    defendable.auth_verify(text, inet),
    defendable.me(uuid, timestamptz),
    defendable.session_revoke_all(uuid, timestamptz),
    defendable.org_create(uuid, timestamptz, text),
    defendable.org_get(uuid, timestamptz, uuid),
    defendable.org_members(uuid, timestamptz, uuid),
    defendable.member_set_role(uuid, timestamptz, uuid, uuid, text),
    defendable.member_remove(uuid, timestamptz, uuid, uuid),
    defendable.invite_create(uuid, timestamptz, uuid, text, text, interval),
    defendable.invite_revoke(uuid, timestamptz, uuid, uuid),
    defendable.invite_list(uuid, timestamptz, uuid),
    defendable.invite_accept(text, inet),
    defendable.apikey_create(uuid, timestamptz, uuid, text),
    defendable.apikey_revoke(uuid, timestamptz, uuid, text),
    defendable.apikey_list(uuid, timestamptz, uuid),
    defendable.security_event_record(text, uuid, uuid, inet, jsonb),
    defendable.security_event_counts(timestamptz),
    defendable.share_resolve(text)
TO defendable_gateway;

-- the auditor: read the ledger and run every verification
GRANT SELECT ON defendable.receipts, defendable.heads, defendable.merkle_nodes, defendable.checkpoints
    TO defendable_auditor;
GRANT EXECUTE ON FUNCTION
    defendable.verify_ledger(uuid),
    defendable.verify_disclosures(uuid),
    defendable.verify_checkpoint(text, text),
    defendable.receipt_body(uuid, bigint),
    defendable.public_projection(uuid, bigint),
    defendable.merkle_root(uuid, bigint),
    defendable.inclusion_proof(uuid, bigint, bigint),
    defendable.consistency_proof(uuid, bigint, bigint),
    defendable.verify_inclusion(bytea, bigint, bigint, bytea[], bytea),
    defendable.verify_consistency(bigint, bigint, bytea, bytea, bytea[]),
    defendable.merkle_leaf_hash(bytea),
    defendable.export_org(uuid),
    defendable.jcs(jsonb),
    defendable.jcs_text(text)
TO defendable_auditor;
