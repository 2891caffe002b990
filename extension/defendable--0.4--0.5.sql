/* defendable 0.4 -> 0.5: the rules of the product surface around the ledger. Dataset catalog
   and download grants (active membership, daily quota, dataset.download receipts), Stripe
   membership (idempotent webhooks, membership.* receipts), runs claimed by runners with a lease
   (run.complete receipts). HTTP, crypto and outbound calls stay in the gateway. */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.5'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Datasets
-- ---------------------------------------------------------------------------------------------

CREATE TABLE defendable.datasets (
    slug text NOT NULL,
    title text NOT NULL,
    storage_key text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    staged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT datasets_pkey PRIMARY KEY (slug)
);
COMMENT ON TABLE defendable.datasets IS
    'The dataset catalog, staged by the internal stager. storage_key never leaves the database except to the gateway that presigns a download.';

CREATE TABLE defendable.org_billing (
    org_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'none',
    stripe_customer text,
    stripe_subscription text,
    current_period_end timestamptz,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT org_billing_pkey PRIMARY KEY (org_id)
);
CREATE INDEX org_billing_customer_idx ON defendable.org_billing (stripe_customer);
CREATE INDEX org_billing_subscription_idx ON defendable.org_billing (stripe_subscription);
COMMENT ON TABLE defendable.org_billing IS 'Each organization''s membership as Stripe last reported it.';

CREATE TABLE defendable.stripe_events (
    event_id text NOT NULL,
    type text NOT NULL,
    org_id uuid,
    outcome text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT stripe_events_pkey PRIMARY KEY (event_id)
);
COMMENT ON TABLE defendable.stripe_events IS 'Stripe webhook events already handled: a redelivered event changes nothing.';

CREATE TABLE defendable.runs (
    org_id uuid NOT NULL,
    run_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    kind text NOT NULL,
    input jsonb NOT NULL,
    state text NOT NULL DEFAULT 'queued',
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    runner text,
    claimed_at timestamptz,
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    finished_at timestamptz,
    output_digest text,
    detail text,
    receipt_seq bigint,
    CONSTRAINT runs_pkey PRIMARY KEY (org_id, run_id),
    CONSTRAINT runs_run_id_key UNIQUE (run_id),
    CONSTRAINT runs_state_check CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['queued', 'running', 'succeeded', 'failed']))
);
CREATE INDEX runs_queue_idx ON defendable.runs (created_at) WHERE state IN ('queued', 'running');
COMMENT ON TABLE defendable.runs IS 'Work queued by members and executed by runners under a lease; finishing mints a run.complete receipt.';

SELECT pg_catalog.pg_extension_config_dump('defendable.datasets', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.org_billing', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.stripe_events', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.runs', '');
REVOKE ALL ON defendable.datasets, defendable.org_billing, defendable.stripe_events, defendable.runs FROM PUBLIC;
ALTER TABLE defendable.datasets ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.org_billing ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.stripe_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE defendable.runs ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION defendable.dataset_stage(slug text, title text, storage_key text, size bigint, sha256 text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF slug IS NULL OR slug !~ '^[a-z0-9][a-z0-9-]{0,62}$' THEN
        PERFORM defendable.err('U0422', 'invalid dataset slug', 'A slug is 1 to 63 of a-z, 0-9 and -, not starting with -.');
    END IF;
    PERFORM defendable.check_name(title, 'dataset title', 200);
    -- the rules of the gateway's presigner (S3 caps keys at 1024 bytes; HTTP clients rewrite "."
    -- and ".." path segments, so such a key could not be fetched through a signed URL): a key
    -- refused here never turns a committed download grant into an unsigned answer
    IF storage_key IS NULL OR octet_length(storage_key) = 0 OR octet_length(storage_key) > 1024
       OR storage_key ~ '[[:cntrl:]]' OR ('/' || storage_key || '/') ~ '/\.\.?/' THEN
        PERFORM defendable.err('U0422', 'invalid storage key', 'A key is 1 to 1024 bytes without control characters or . and .. segments.');
    END IF;
    IF size IS NULL OR size < 0 THEN
        PERFORM defendable.err('U0422', 'invalid dataset size');
    END IF;
    IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
        PERFORM defendable.err('U0422', 'invalid sha256', 'The SHA-256 of the object, as 64 lower-case hex digits.');
    END IF;
    -- re-staging a slug updates it
    INSERT INTO defendable.datasets AS d (slug, title, storage_key, size, sha256)
        VALUES (dataset_stage.slug, btrim(dataset_stage.title), dataset_stage.storage_key, dataset_stage.size, dataset_stage.sha256)
        ON CONFLICT ON CONSTRAINT datasets_pkey DO UPDATE
        SET title = EXCLUDED.title, storage_key = EXCLUDED.storage_key, size = EXCLUDED.size,
            sha256 = EXCLUDED.sha256, updated_at = now();
END $$;
COMMENT ON FUNCTION defendable.dataset_stage(text, text, text, bigint, text) IS
    'The stager''s call (POST /internal/datasets): adds a dataset to the catalog or updates it.';

CREATE FUNCTION defendable.dataset_catalog(actor uuid, iat timestamptz)
    RETURNS TABLE (slug text, title text, size bigint, sha256 text, updated_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    -- never the storage key
    RETURN QUERY SELECT d.slug, d.title, d.size, d.sha256, d.updated_at FROM defendable.datasets d ORDER BY d.slug;
END $$;
COMMENT ON FUNCTION defendable.dataset_catalog(uuid, timestamptz) IS 'The catalog for logged-in users: slug, title, size, sha256; never the storage key.';

CREATE FUNCTION defendable.dataset_download_grant(actor uuid, iat timestamptz, org uuid, slug text,
                                                  daily_limit integer, ip inet DEFAULT NULL,
                                                  hourly_limit integer DEFAULT 60,
                                                  OUT allowed boolean, OUT storage_key text, OUT receipt_seq bigint,
                                                  OUT used integer, OUT reset_at timestamptz, OUT refused_by text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d defendable.datasets;
    q record;
    r defendable.receipts;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    IF NOT EXISTS (SELECT 1 FROM defendable.org_billing b WHERE b.org_id = org AND b.status = 'active') THEN
        PERFORM defendable.err('U0403', 'downloads need an active membership', 'Start one with POST /billing/checkout.');
    END IF;
    SELECT * INTO d FROM defendable.datasets x WHERE x.slug = dataset_download_grant.slug;
    IF d.slug IS NULL THEN
        PERFORM defendable.err('U0404', 'dataset not found');
    END IF;
    IF daily_limit IS NULL OR daily_limit < 1 OR hourly_limit IS NULL OR hourly_limit < 1 THEN
        PERFORM defendable.err('U0422', 'invalid download limit');
    END IF;
    -- the org's hour (seed 001: 60 grants per org per hour), counted only once the caller is
    -- known to be a member, so that nobody can spend another organization's allowance; then
    -- its UTC day, in the same transaction as the receipt
    FOREACH refused_by IN ARRAY ARRAY['dataset.download.hourly', 'dataset.download.daily'] LOOP
        -- one at a time: a refusal by the hour must not spend the day
        IF refused_by = 'dataset.download.hourly' THEN
            SELECT * INTO q FROM defendable.quota_take(refused_by, org::text, hourly_limit, interval '1 hour');
        ELSE
            SELECT * INTO q FROM defendable.quota_take(refused_by, org::text, daily_limit, interval '1 day');
        END IF;
        used := q.used;
        reset_at := q.reset_at;
        IF NOT q.allowed THEN
            -- a refused grant is not an error: the event must commit, the gateway answers 429
            allowed := false;
            PERFORM defendable.record_event('quota.exceeded', org, actor, ip,
                jsonb_build_object('scope', refused_by,
                                   'limit', CASE WHEN refused_by = 'dataset.download.hourly' THEN hourly_limit ELSE daily_limit END));
            RETURN;
        END IF;
    END LOOP;
    refused_by := NULL;
    r := defendable.append_receipt(org, 'dataset.download',
        jsonb_build_object('slug', d.slug, 'sha256', d.sha256, 'size', d.size, 'storage_key', d.storage_key,
                           'user_id', actor), '{slug, sha256, size, user_id}');
    allowed := true;
    storage_key := d.storage_key;
    receipt_seq := r.seq;
END $$;
COMMENT ON FUNCTION defendable.dataset_download_grant(uuid, timestamptz, uuid, text, integer, inet, integer) IS
    'A member of an org with an active membership gets a download grant: daily quota, a dataset.download receipt (storage key never public), and the storage key for the gateway to presign.';

-- ---------------------------------------------------------------------------------------------
-- Stripe membership
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.billing_checkout_begin(actor uuid, iat timestamptz, org uuid,
                                                  OUT org_id uuid, OUT email text, OUT status text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE u defendable.users := defendable.check_actor(actor, iat);
BEGIN
    PERFORM defendable.require_owner(org, actor);
    org_id := org;
    email := u.email;
    status := coalesce((SELECT b.status FROM defendable.org_billing b WHERE b.org_id = org), 'none');
END $$;
COMMENT ON FUNCTION defendable.billing_checkout_begin(uuid, timestamptz, uuid) IS
    'Owner-only: what the gateway needs to open a Stripe Checkout Session for the organization.';

CREATE FUNCTION defendable.billing_webhook(event_id text, event_type text, org uuid, customer text,
                                           subscription text, sub_status text, period_end timestamptz,
                                           OUT outcome text, OUT org_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_status text;
    kind text;
BEGIN
    IF event_id IS NULL OR event_id !~ '^evt_[A-Za-z0-9]{1,250}$' OR event_type IS NULL OR length(event_type) > 100 THEN
        PERFORM defendable.err('U0422', 'invalid webhook event');
    END IF;
    -- idempotent by event id: a redelivery finds the first handling and changes nothing
    SELECT e.outcome, e.org_id INTO outcome, org_id FROM defendable.stripe_events e WHERE e.event_id = billing_webhook.event_id;
    IF FOUND THEN
        outcome := 'duplicate';
        RETURN;
    END IF;
    IF event_type = 'checkout.session.completed' THEN
        org_id := org;
        new_status := 'active';
        kind := 'membership.activate';
    ELSIF event_type IN ('customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted') THEN
        SELECT b.org_id INTO org_id FROM defendable.org_billing b
            WHERE (subscription IS NOT NULL AND b.stripe_subscription = subscription)
               OR (customer IS NOT NULL AND b.stripe_customer = customer)
            ORDER BY (b.stripe_subscription = subscription) DESC NULLS LAST LIMIT 1;
        new_status := CASE WHEN event_type = 'customer.subscription.deleted' THEN 'canceled'
                           WHEN sub_status IN ('active', 'trialing') THEN 'active'
                           WHEN sub_status IN ('past_due', 'unpaid', 'incomplete', 'incomplete_expired', 'canceled', 'paused')
                               THEN sub_status ELSE 'unknown' END;
        kind := CASE WHEN event_type = 'customer.subscription.deleted' THEN 'membership.cancel' ELSE 'membership.update' END;
    ELSE
        outcome := 'ignored';
        INSERT INTO defendable.stripe_events (event_id, type, org_id, outcome) VALUES (event_id, event_type, NULL, outcome);
        RETURN;
    END IF;
    IF org_id IS NULL OR NOT EXISTS (SELECT 1 FROM defendable.orgs o WHERE o.org_id = billing_webhook.org_id) THEN
        outcome := 'unknown_org';
        PERFORM defendable.record_event('stripe.unknown_org', NULL, NULL, NULL,
            jsonb_build_object('event_id', event_id, 'type', event_type));
        INSERT INTO defendable.stripe_events (event_id, type, org_id, outcome) VALUES (event_id, event_type, NULL, outcome);
        org_id := NULL;
        RETURN;
    END IF;
    INSERT INTO defendable.org_billing AS b (org_id, status, stripe_customer, stripe_subscription, current_period_end)
        VALUES (billing_webhook.org_id, new_status, customer, subscription, period_end)
        ON CONFLICT ON CONSTRAINT org_billing_pkey DO UPDATE
        SET status = EXCLUDED.status,
            stripe_customer = coalesce(EXCLUDED.stripe_customer, b.stripe_customer),
            stripe_subscription = coalesce(EXCLUDED.stripe_subscription, b.stripe_subscription),
            current_period_end = coalesce(EXCLUDED.current_period_end, b.current_period_end),
            updated_at = now();
    PERFORM defendable.append_receipt(org_id, kind,
        jsonb_build_object('status', new_status, 'event_id', event_id, 'subscription', subscription,
                           'period_end', period_end), '{status, event_id, period_end}');
    outcome := 'applied';
    INSERT INTO defendable.stripe_events (event_id, type, org_id, outcome) VALUES (event_id, event_type, org_id, outcome);
END $$;
COMMENT ON FUNCTION defendable.billing_webhook(text, text, uuid, text, text, text, timestamptz) IS
    'Applies a verified Stripe webhook event once: membership status per organization and a membership.* receipt.';

-- ---------------------------------------------------------------------------------------------
-- Runs
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.run_create(actor uuid, iat timestamptz, org uuid, kind text, input jsonb,
                                      OUT run_id uuid, OUT state text, OUT created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    PERFORM defendable.require_member(org, actor);
    IF kind IS NULL OR kind !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' OR length(kind) > 64 THEN
        PERFORM defendable.err('U0422', 'invalid run kind');
    END IF;
    IF input IS NULL OR jsonb_typeof(input) <> 'object' OR length(input::text) > 65536 THEN
        PERFORM defendable.err('U0422', 'run input must be a JSON object of at most 64 KiB');
    END IF;
    INSERT INTO defendable.runs AS x (org_id, kind, input, created_by) VALUES (org, run_create.kind, input, actor)
        RETURNING x.run_id, x.state, x.created_at INTO run_id, state, created_at;
END $$;
COMMENT ON FUNCTION defendable.run_create(uuid, timestamptz, uuid, text, jsonb) IS 'A member queues a run.';

CREATE FUNCTION defendable.run_get(actor uuid, iat timestamptz, run uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE x defendable.runs;
BEGIN
    PERFORM defendable.check_actor(actor, iat);
    SELECT * INTO x FROM defendable.runs r WHERE r.run_id = run;
    -- a run of another organization does not exist for the caller
    IF x.run_id IS NULL OR NOT EXISTS (SELECT 1 FROM defendable.memberships m WHERE m.org_id = x.org_id AND m.user_id = actor) THEN
        PERFORM defendable.err('U0404', 'run not found');
    END IF;
    RETURN jsonb_build_object('run_id', x.run_id, 'org_id', x.org_id, 'kind', x.kind, 'state', x.state,
        'created_at', x.created_at, 'attempts', x.attempts, 'finished_at', x.finished_at,
        'output_digest', x.output_digest, 'receipt_seq', x.receipt_seq);
END $$;
COMMENT ON FUNCTION defendable.run_get(uuid, timestamptz, uuid) IS 'A run''s state and, once finished, its run.complete receipt seq.';

CREATE FUNCTION defendable.runner_claim(runner text, lease interval DEFAULT '5 minutes')
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
                                  WHERE x.state = 'queued' OR (x.state = 'running' AND x.lease_until < now())
                                  ORDER BY x.created_at, x.run_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING r.org_id, r.run_id, r.kind, r.input, r.lease_until, r.attempts;
END $$;
COMMENT ON FUNCTION defendable.runner_claim(text, interval) IS
    'A runner claims the oldest queued run (or one whose lease expired) under a lease.';

CREATE FUNCTION defendable.runner_status(run uuid, runner text, new_state text, output_digest text DEFAULT NULL,
                                         detail text DEFAULT NULL, lease interval DEFAULT '5 minutes',
                                         OUT state text, OUT receipt_seq bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    x defendable.runs;
    r defendable.receipts;
BEGIN
    IF new_state IS NULL OR new_state NOT IN ('running', 'succeeded', 'failed') THEN
        PERFORM defendable.err('U0422', 'a run moves to running, succeeded or failed');
    END IF;
    IF output_digest IS NOT NULL AND output_digest !~ '^[0-9a-f]{64}$' THEN
        PERFORM defendable.err('U0422', 'output_digest is a SHA-256 as 64 lower-case hex digits');
    END IF;
    IF detail IS NOT NULL AND length(detail) > 1000 THEN
        PERFORM defendable.err('U0422', 'detail has at most 1000 characters');
    END IF;
    SELECT * INTO x FROM defendable.runs r2 WHERE r2.run_id = run FOR UPDATE;
    IF x.run_id IS NULL THEN
        PERFORM defendable.err('U0404', 'run not found');
    END IF;
    -- only the holder of a live lease reports; a runner whose lease ran out lost the run
    IF x.state <> 'running' OR x.runner IS DISTINCT FROM runner_status.runner OR x.lease_until < now() THEN
        PERFORM defendable.err('U0409', 'this runner does not hold the run', 'The lease ran out or the run is finished.');
    END IF;
    IF new_state = 'running' THEN
        UPDATE defendable.runs r2 SET lease_until = now() + lease WHERE r2.run_id = run;
        state := 'running';
        RETURN;
    END IF;
    r := defendable.append_receipt(x.org_id, 'run.complete',
        jsonb_build_object('run_id', x.run_id, 'kind', x.kind, 'status', new_state, 'output_digest', output_digest,
                           'attempts', x.attempts, 'runner', runner_status.runner),
        '{run_id, kind, status, output_digest, attempts}');
    UPDATE defendable.runs r2 SET state = new_state, finished_at = now(), output_digest = runner_status.output_digest,
        detail = runner_status.detail, receipt_seq = r.seq, lease_until = NULL
        WHERE r2.run_id = run;
    state := new_state;
    receipt_seq := r.seq;
END $$;
COMMENT ON FUNCTION defendable.runner_status(uuid, text, text, text, text, interval) IS
    'The lease holder extends its lease (running) or finishes the run (succeeded/failed, minting run.complete).';

-- ---------------------------------------------------------------------------------------------
-- Email delivery: at most once per message, retries with backoff for failures known to have
-- delivered nothing
-- ---------------------------------------------------------------------------------------------

-- sending_at: claimed for a send whose outcome is not yet recorded; committed before the send,
-- so a worker that dies mid-send leaves a mark that stops any retry (a retry could duplicate).
-- next_attempt_at: the earliest retry after a failure that delivered nothing.
-- failed_at: given up (permanent refusal, attempts exhausted, or outcome unknown).
ALTER TABLE defendable.email_outbox
    ADD COLUMN sending_at timestamptz,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN failed_at timestamptz;

DROP FUNCTION defendable.outbox_claim(integer);
DROP FUNCTION defendable.outbox_mark_failed(uuid, text);

CREATE FUNCTION defendable.outbox_claim(max_messages integer DEFAULT 10, stale_after interval DEFAULT '10 minutes')
    RETURNS TABLE (message_id uuid, kind text, to_email text, secret text, payload jsonb, attempts integer)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE m record;
BEGIN
    -- sends that never reported back: their outcome is unknown, so they are not retried
    FOR m IN UPDATE defendable.email_outbox o
             SET failed_at = now(), sending_at = NULL, secret = NULL,
                 last_error = 'delivery outcome unknown (the sender stopped mid-send); not retried'
             WHERE o.sending_at < now() - stale_after AND o.sent_at IS NULL AND o.failed_at IS NULL
             RETURNING o.message_id, o.kind, o.org_id, o.attempts
    LOOP
        PERFORM defendable.record_event('email.failed', m.org_id, NULL, NULL,
            jsonb_build_object('message_id', m.message_id, 'kind', m.kind, 'attempts', m.attempts, 'reason', 'outcome unknown'));
    END LOOP;
    -- SKIP LOCKED: several gateways claim disjoint messages; the claim commits with this call
    RETURN QUERY
    UPDATE defendable.email_outbox o SET attempts = o.attempts + 1, sending_at = now()
    WHERE o.message_id IN (SELECT x.message_id FROM defendable.email_outbox x
                           WHERE x.sent_at IS NULL AND x.failed_at IS NULL AND x.sending_at IS NULL
                             AND x.secret IS NOT NULL AND x.expires_at > now()
                             AND (x.next_attempt_at IS NULL OR x.next_attempt_at <= now())
                           ORDER BY x.created_at LIMIT greatest(1, least(max_messages, 100))
                           FOR UPDATE SKIP LOCKED)
    RETURNING o.message_id, o.kind, o.to_email, o.secret, o.payload, o.attempts;
END $$;
COMMENT ON FUNCTION defendable.outbox_claim(integer, interval) IS
    'Claims unsent, unexpired messages due for (re)delivery, with their link token; gives up on sends that never reported back.';

CREATE OR REPLACE FUNCTION defendable.outbox_mark_sent(message uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- sent: the link token is wiped at once
    UPDATE defendable.email_outbox SET sent_at = now(), sending_at = NULL, secret = NULL, last_error = NULL
    WHERE message_id = message AND sent_at IS NULL
$$;

CREATE FUNCTION defendable.outbox_mark_failed(message uuid, error text, retry boolean,
                                              max_attempts integer DEFAULT 5) RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE m defendable.email_outbox;
BEGIN
    SELECT * INTO m FROM defendable.email_outbox o WHERE o.message_id = message AND o.sent_at IS NULL FOR UPDATE;
    IF m.message_id IS NULL THEN
        RETURN 'unknown';
    END IF;
    IF retry AND m.attempts < max_attempts AND m.expires_at > now() THEN
        -- nothing was delivered: try again after 30 s, 1 min, 2 min, ... (capped at 30 min)
        UPDATE defendable.email_outbox o SET sending_at = NULL, last_error = left(error, 500),
            next_attempt_at = now() + least(interval '30 seconds' * power(2, greatest(m.attempts - 1, 0)), interval '30 minutes')
        WHERE o.message_id = message;
        RETURN 'retry';
    END IF;
    UPDATE defendable.email_outbox o SET sending_at = NULL, failed_at = now(), secret = NULL, last_error = left(error, 500)
    WHERE o.message_id = message;
    PERFORM defendable.record_event('email.failed', m.org_id, NULL, NULL,
        jsonb_build_object('message_id', m.message_id, 'kind', m.kind, 'attempts', m.attempts, 'reason', left(error, 200)));
    RETURN 'failed';
END $$;
COMMENT ON FUNCTION defendable.outbox_mark_failed(uuid, text, boolean, integer) IS
    'Records a failed send (no secret in the text): retried with backoff when nothing was delivered, else given up with an email.failed security event.';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA defendable FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    defendable.outbox_claim(integer, interval),
    defendable.outbox_mark_sent(uuid),
    defendable.outbox_mark_failed(uuid, text, boolean, integer),
    defendable.dataset_stage(text, text, text, bigint, text),
    defendable.dataset_catalog(uuid, timestamptz),
    defendable.dataset_download_grant(uuid, timestamptz, uuid, text, integer, inet, integer),
    defendable.billing_checkout_begin(uuid, timestamptz, uuid),
    defendable.billing_webhook(text, text, uuid, text, text, text, timestamptz),
    defendable.run_create(uuid, timestamptz, uuid, text, jsonb),
    defendable.run_get(uuid, timestamptz, uuid),
    defendable.runner_claim(text, interval),
    defendable.runner_status(uuid, text, text, text, text, interval)
TO defendable_gateway;
