/* defendable 0.3 -> 0.4: the functions behind the gateway's receipt, share and ledger routes
   (each checks its caller like those of 0.3), receipt creation with an API key, the email outbox
   interface of the delivery worker, and the list of organizations whose checkpoint is due. */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.4'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Receipts
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.receipts_list(actor uuid, iat timestamptz, org uuid,
                                         after_seq bigint DEFAULT 0, max_rows integer DEFAULT 50)
    RETURNS TABLE (seq bigint, ts timestamptz, kind text, hash text, fields jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    IF after_seq IS NULL OR after_seq < 0 OR max_rows IS NULL OR max_rows < 1 OR max_rows > 200 THEN
        PERFORM defendable.err('U0422', 'invalid page', 'after is a seq (0 or more); limit is 1 to 200.');
    END IF;
    RETURN QUERY SELECT r.seq, r.ts, r.kind, encode(r.hash, 'hex'), r.fields
        FROM defendable.receipts r WHERE r.org_id = org AND r.seq > after_seq
        ORDER BY r.seq LIMIT max_rows;
END $$;
COMMENT ON FUNCTION defendable.receipts_list(uuid, timestamptz, uuid, bigint, integer) IS
    'A page of the organization''s receipts after a seq (cursor pagination), for members.';

CREATE FUNCTION defendable.receipt_get(actor uuid, iat timestamptz, org uuid, seq bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE d defendable.disclosures;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    IF NOT EXISTS (SELECT 1 FROM defendable.receipts r WHERE r.org_id = org AND r.seq = receipt_get.seq) THEN
        PERFORM defendable.err('U0404', 'receipt not found');
    END IF;
    SELECT * INTO d FROM defendable.disclosures x WHERE x.org_id = org AND x.seq = receipt_get.seq;
    -- members see the values the organization kept (erased ones are gone) and what is public
    RETURN jsonb_build_object('receipt', defendable.public_projection(org, receipt_get.seq),
                              'values', coalesce(d.field_values, '{}'),
                              'public_fields', to_jsonb(coalesce(d.public_fields, '{}')));
END $$;
COMMENT ON FUNCTION defendable.receipt_get(uuid, timestamptz, uuid, bigint) IS
    'One receipt for a member: its public projection, the kept values and which fields are public.';

CREATE FUNCTION defendable.receipt_create_by_key(key text, kind text, fields jsonb,
                                                 public_fields text[] DEFAULT NULL,
                                                 OUT ok boolean, OUT org_id uuid, OUT seq bigint,
                                                 OUT hash text, OUT ts timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a record;
    r defendable.receipts;
BEGIN
    -- the key is checked here, so the gateway never needs append_receipt itself
    SELECT * INTO a FROM defendable.apikey_authenticate(key);
    ok := a.ok;
    IF NOT a.ok THEN
        RETURN;
    END IF;
    r := defendable.append_receipt(a.org_id, kind, fields, public_fields);
    org_id := r.org_id;
    seq := r.seq;
    hash := encode(r.hash, 'hex');
    ts := r.ts;
END $$;
COMMENT ON FUNCTION defendable.receipt_create_by_key(text, text, jsonb, text[]) IS
    'Appends a receipt to the organization of an API key; ok = false (and a security event) for a bad key.';

CREATE FUNCTION defendable.internal_receipt(org uuid, kind text, fields jsonb,
                                            public_fields text[] DEFAULT NULL,
                                            OUT seq bigint, OUT hash text, OUT ts timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE r defendable.receipts;
BEGIN
    -- operators (INTERNAL_API_KEY) record what happened around the service, nothing else
    IF kind IS NULL OR kind !~ '^(incident|secret|restore|backup|deploy)\.' THEN
        PERFORM defendable.err('U0422', 'internal receipts are incident.*, secret.*, restore.*, backup.* or deploy.*');
    END IF;
    IF org IS NULL OR NOT EXISTS (SELECT 1 FROM defendable.orgs o WHERE o.org_id = org) THEN
        PERFORM defendable.err('U0404', 'organization not found');
    END IF;
    r := defendable.append_receipt(org, kind, fields, public_fields);
    seq := r.seq;
    hash := encode(r.hash, 'hex');
    ts := r.ts;
END $$;
COMMENT ON FUNCTION defendable.internal_receipt(uuid, text, jsonb, text[]) IS
    'Operator receipts (incidents, secret rotations, restore drills, backups, deploys) for POST /internal/receipts.';

-- ---------------------------------------------------------------------------------------------
-- Shares
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.share_create_as(actor uuid, iat timestamptz, org uuid, seq bigint,
                                           ttl interval DEFAULT '7 days',
                                           OUT share_id uuid, OUT token text, OUT expires_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE s record;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    IF NOT EXISTS (SELECT 1 FROM defendable.receipts r WHERE r.org_id = org AND r.seq = share_create_as.seq) THEN
        PERFORM defendable.err('U0404', 'receipt not found');
    END IF;
    IF ttl IS NULL OR ttl <= interval '0' OR ttl > interval '366 days' THEN
        PERFORM defendable.err('U0422', 'invalid share lifetime', 'A share link lives up to 366 days.');
    END IF;
    SELECT * INTO s FROM defendable.share_create(org, share_create_as.seq, ttl);
    share_id := s.share_id;
    token := s.token;
    expires_at := s.expires_at;
    -- who shared what is itself on the record
    PERFORM defendable.append_receipt(org, 'receipt.share',
        jsonb_build_object('shared_seq', share_create_as.seq, 'share_id', s.share_id, 'shared_by', actor,
                           'expires_at', s.expires_at), '{shared_seq, share_id, shared_by, expires_at}');
END $$;
COMMENT ON FUNCTION defendable.share_create_as(uuid, timestamptz, uuid, bigint, interval) IS
    'A member shares one of the organization''s receipts; the token is returned once.';

CREATE FUNCTION defendable.share_revoke_as(actor uuid, iat timestamptz, share uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE org uuid;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    SELECT s.org_id INTO org FROM defendable.shares s WHERE s.share_id = share;
    -- a share of another organization does not exist for the caller
    IF org IS NULL OR NOT EXISTS (SELECT 1 FROM defendable.memberships m WHERE m.org_id = org AND m.user_id = actor) THEN
        PERFORM defendable.err('U0404', 'share link not found');
    END IF;
    IF NOT defendable.share_revoke(org, share) THEN
        PERFORM defendable.err('U0404', 'share link not found', 'It was already revoked.');
    END IF;
    PERFORM defendable.append_receipt(org, 'receipt.unshare',
        jsonb_build_object('share_id', share, 'revoked_by', actor), '{share_id, revoked_by}');
END $$;
COMMENT ON FUNCTION defendable.share_revoke_as(uuid, timestamptz, uuid) IS 'A member revokes a share link of the organization.';

-- ---------------------------------------------------------------------------------------------
-- Ledger
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.ledger_verify_as(actor uuid, iat timestamptz, org uuid)
    RETURNS TABLE (org_id uuid, receipts bigint, head_seq bigint, head_hash text, ok boolean,
                   first_bad_seq bigint, detail text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    RETURN QUERY SELECT * FROM defendable.verify_ledger(org);
END $$;
COMMENT ON FUNCTION defendable.ledger_verify_as(uuid, timestamptz, uuid) IS 'verify_ledger of one organization, for its members.';

CREATE FUNCTION defendable.ledger_proof_as(actor uuid, iat timestamptz, org uuid, seq bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    IF NOT EXISTS (SELECT 1 FROM defendable.receipts r WHERE r.org_id = org AND r.seq = ledger_proof_as.seq) THEN
        PERFORM defendable.err('U0404', 'receipt not found');
    END IF;
    RETURN defendable.receipt_bundle(org, ledger_proof_as.seq);
END $$;
COMMENT ON FUNCTION defendable.ledger_proof_as(uuid, timestamptz, uuid, bigint) IS
    'The receipt bundle (projection, inclusion proof, checkpoint) of one receipt, for members.';

CREATE FUNCTION defendable.ledger_checkpoint_as(actor uuid, iat timestamptz, org uuid,
                                                OUT tree_size bigint, OUT current_size bigint, OUT note text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    SELECT c.tree_size, c.note INTO tree_size, note FROM defendable.checkpoints c
        WHERE c.org_id = org ORDER BY c.tree_size DESC, c.recorded_at DESC LIMIT 1;
    current_size := coalesce((SELECT h.seq FROM defendable.heads h WHERE h.org_id = org), 0);
END $$;
COMMENT ON FUNCTION defendable.ledger_checkpoint_as(uuid, timestamptz, uuid) IS
    'The newest signed checkpoint of the organization and its current size, for members.';

CREATE FUNCTION defendable.checkpoints_due(max_orgs integer DEFAULT 100)
    RETURNS TABLE (org_id uuid, current_size bigint, checkpoint_size bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT h.org_id, h.seq, coalesce(c.size, 0)
    FROM defendable.heads h
    LEFT JOIN LATERAL (SELECT max(tree_size) AS size FROM defendable.checkpoints c WHERE c.org_id = h.org_id) c ON true
    WHERE h.seq > coalesce(c.size, 0)
    ORDER BY h.seq - coalesce(c.size, 0) DESC, h.org_id
    LIMIT greatest(1, least(max_orgs, 1000))
$$;
COMMENT ON FUNCTION defendable.checkpoints_due(integer) IS
    'Organizations whose newest checkpoint is behind their ledger: what the gateway signs next.';

-- ---------------------------------------------------------------------------------------------
-- Email outbox (the delivery worker's side)
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.outbox_claim(max_messages integer DEFAULT 10)
    RETURNS TABLE (message_id uuid, kind text, to_email text, secret text, payload jsonb, attempts integer)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- SKIP LOCKED: several gateways (or threads) claim disjoint messages; the lock holds until
    -- the claiming transaction ends, so mark the message sent in that transaction
    UPDATE defendable.email_outbox o SET attempts = o.attempts + 1
    WHERE o.message_id IN (SELECT x.message_id FROM defendable.email_outbox x
                           WHERE x.sent_at IS NULL AND x.secret IS NOT NULL AND x.expires_at > now()
                           ORDER BY x.created_at LIMIT greatest(1, least(max_messages, 100))
                           FOR UPDATE SKIP LOCKED)
    RETURNING o.message_id, o.kind, o.to_email, o.secret, o.payload, o.attempts
$$;
COMMENT ON FUNCTION defendable.outbox_claim(integer) IS
    'Claims unsent, unexpired messages (with their link token) for delivery.';

CREATE FUNCTION defendable.outbox_mark_sent(message uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- sent: the link token is wiped at once
    UPDATE defendable.email_outbox SET sent_at = now(), secret = NULL, last_error = NULL
    WHERE message_id = message AND sent_at IS NULL
$$;
COMMENT ON FUNCTION defendable.outbox_mark_sent(uuid) IS 'Marks a message delivered and wipes its link token.';

CREATE FUNCTION defendable.outbox_mark_failed(message uuid, error text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE defendable.email_outbox SET last_error = left(error, 500)
    WHERE message_id = message AND sent_at IS NULL
$$;
COMMENT ON FUNCTION defendable.outbox_mark_failed(uuid, text) IS 'Records a delivery failure (no secret in the text).';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA defendable FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    defendable.receipts_list(uuid, timestamptz, uuid, bigint, integer),
    defendable.receipt_get(uuid, timestamptz, uuid, bigint),
    defendable.receipt_create_by_key(text, text, jsonb, text[]),
    defendable.internal_receipt(uuid, text, jsonb, text[]),
    defendable.share_create_as(uuid, timestamptz, uuid, bigint, interval),
    defendable.share_revoke_as(uuid, timestamptz, uuid),
    defendable.ledger_verify_as(uuid, timestamptz, uuid),
    defendable.ledger_proof_as(uuid, timestamptz, uuid, bigint),
    defendable.ledger_checkpoint_as(uuid, timestamptz, uuid),
    defendable.checkpoints_due(integer),
    defendable.checkpoint_body(uuid, text, bigint),
    defendable.record_checkpoint(text, text),
    defendable.outbox_claim(integer),
    defendable.outbox_mark_sent(uuid),
    defendable.outbox_mark_failed(uuid, text)
TO defendable_gateway;
