-- Stripe membership: webhooks are applied once per event id, find the org from
-- client_reference_id (checkout) or the stored customer/subscription, and mint membership.*
-- receipts; unknown orgs and other event types change nothing but the record of the event.
\set SHOW_CONTEXT never
INSERT INTO defendable.users (email) VALUES ('bill-owner@x.example'), ('bill-member@x.example');
SELECT user_id AS o FROM defendable.users WHERE email = 'bill-owner@x.example' \gset
SELECT user_id AS m FROM defendable.users WHERE email = 'bill-member@x.example' \gset
SELECT org_id AS org FROM defendable.org_create(:'o', now(), 'Billing Org') \gset
SELECT ok FROM defendable.invite_accept((SELECT token FROM defendable.invite_create(:'o', now(), :'org', 'bill-member@x.example')));
-- only owners start a checkout
SELECT org_id = :'org' AS org, email, status FROM defendable.billing_checkout_begin(:'o', now(), :'org');
\set VERBOSITY sqlstate
SELECT defendable.billing_checkout_begin(:'m', now(), :'org');
\set VERBOSITY default

SELECT outcome, org_id = :'org' AS same_org FROM defendable.billing_webhook('evt_1', 'checkout.session.completed', :'org', 'cus_1', 'sub_1', NULL, NULL);
SELECT status, stripe_customer, stripe_subscription FROM defendable.org_billing WHERE org_id = :'org';
-- redelivered: nothing changes
SELECT outcome FROM defendable.billing_webhook('evt_1', 'checkout.session.completed', :'org', 'cus_1', 'sub_1', NULL, NULL);
SELECT count(*) AS membership_receipts FROM defendable.receipts WHERE org_id = :'org' AND kind LIKE 'membership.%';
-- subscription events find the org by subscription or customer
SELECT outcome FROM defendable.billing_webhook('evt_2', 'customer.subscription.updated', NULL, 'cus_1', 'sub_1', 'past_due', '2026-12-22 00:00:00+00');
SELECT status, current_period_end FROM defendable.org_billing WHERE org_id = :'org';
SELECT outcome FROM defendable.billing_webhook('evt_3', 'customer.subscription.updated', NULL, 'cus_1', NULL, 'active', NULL);
SELECT outcome FROM defendable.billing_webhook('evt_4', 'customer.subscription.deleted', NULL, NULL, 'sub_1', 'canceled', NULL);
SELECT status FROM defendable.org_billing WHERE org_id = :'org';
SELECT kind, d.public_fields FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
WHERE r.org_id = :'org' AND kind LIKE 'membership.%' ORDER BY r.seq;
-- unknown customer, unknown org, another event type: recorded, nothing applied
SELECT outcome, org_id FROM defendable.billing_webhook('evt_5', 'customer.subscription.updated', NULL, 'cus_nobody', 'sub_nobody', 'active', NULL);
SELECT outcome FROM defendable.billing_webhook('evt_6', 'checkout.session.completed', '00000000-0000-4000-8000-000000000000', 'cus_x', 'sub_x', NULL, NULL);
SELECT outcome FROM defendable.billing_webhook('evt_7', 'invoice.paid', NULL, 'cus_1', NULL, NULL, NULL);
SELECT event_id, outcome FROM defendable.stripe_events WHERE event_id ~ '^evt_[0-9]+$' ORDER BY event_id;
SELECT kind, events FROM defendable.security_event_counts(now() - interval '1 hour') WHERE kind = 'stripe.unknown_org';
\set VERBOSITY sqlstate
SELECT defendable.billing_webhook('not-an-event', 'checkout.session.completed', :'org', NULL, NULL, NULL, NULL);
SELECT defendable.billing_webhook(NULL, 'checkout.session.completed', :'org', NULL, NULL, NULL, NULL);
