-- Bad input: each call fails with a specific SQLSTATE and a clear message, and writes nothing.
\set orgb '''88888888-8888-4888-8888-888888888888'''
\set VERBOSITY default
SELECT (defendable.append_receipt(:orgb, 'ok.first', '{}')).seq;
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM defendable.receipts) AS receipts,
    (SELECT count(*) FROM defendable.disclosures) AS disclosures, (SELECT count(*) FROM defendable.heads) AS heads;
\set VERBOSITY sqlstate
\echo null arguments
SELECT defendable.append_receipt(NULL, 'a.b', '{}');
SELECT defendable.append_receipt(:orgb, NULL, '{}');
SELECT defendable.append_receipt(:orgb, 'a.b', NULL);
\set VERBOSITY default
SELECT defendable.append_receipt(NULL, 'a.b', '{}');
\echo kinds
SELECT defendable.append_receipt(:orgb, 'Auth.verify', '{}');
\set VERBOSITY sqlstate
SELECT defendable.append_receipt(:orgb, '', '{}');
SELECT defendable.append_receipt(:orgb, 'auth.', '{}');
SELECT defendable.append_receipt(:orgb, '.auth', '{}');
SELECT defendable.append_receipt(:orgb, 'auth..verify', '{}');
SELECT defendable.append_receipt(:orgb, 'auth-verify', '{}');
SELECT defendable.append_receipt(:orgb, '9auth', '{}');
SELECT defendable.append_receipt(:orgb, 'auth verify', '{}');
SELECT defendable.append_receipt(:orgb, 'authé', '{}');
SELECT defendable.append_receipt(:orgb, repeat('a', 65), '{}');
SELECT (defendable.append_receipt(:orgb, repeat('a', 64), '{}')).seq AS kind_of_64_bytes_is_fine;
\echo field names
\set VERBOSITY default
SELECT defendable.append_receipt(:orgb, 'a.b', '{"User": 1}');
\set VERBOSITY sqlstate
SELECT defendable.append_receipt(:orgb, 'a.b', '{"": 1}');
SELECT defendable.append_receipt(:orgb, 'a.b', '{"_x": 1}');
SELECT defendable.append_receipt(:orgb, 'a.b', '{"a.b": 1}');
SELECT defendable.append_receipt(:orgb, 'a.b', '{"a b": 1}');
SELECT defendable.append_receipt(:orgb, 'a.b', jsonb_build_object(repeat('a', 65), 1));
\echo too many fields
\set VERBOSITY default
SELECT defendable.append_receipt(:orgb, 'a.b', (SELECT jsonb_object_agg('f' || i, i) FROM generate_series(1, 65) i));
SELECT (defendable.append_receipt(:orgb, 'a.b', (SELECT jsonb_object_agg('f' || i, i) FROM generate_series(1, 64) i))).seq AS sixty_four_fields_are_fine;
\echo fields that are not an object
SELECT defendable.append_receipt(:orgb, 'a.b', '[]');
\set VERBOSITY sqlstate
SELECT defendable.append_receipt(:orgb, 'a.b', '"text"');
SELECT defendable.append_receipt(:orgb, 'a.b', '42');
SELECT defendable.append_receipt(:orgb, 'a.b', 'null');
\echo numbers that do not survive the double round trip, at any depth
\set VERBOSITY default
SELECT defendable.append_receipt(:orgb, 'a.b', '{"amount": 9007199254740993}');
\set VERBOSITY sqlstate
SELECT defendable.append_receipt(:orgb, 'a.b', '{"amount": 0.1000000000000000000000000001}');
SELECT defendable.append_receipt(:orgb, 'a.b', '{"deep": {"list": [1, 2, 1e400]}}');
SELECT defendable.append_receipt(:orgb, 'a.b', '{"tiny": 1e-400}');
\echo public_fields
\set VERBOSITY default
SELECT defendable.append_receipt(:orgb, 'a.b', '{"a": 1}', '{b}');
\set VERBOSITY sqlstate
SELECT defendable.append_receipt(:orgb, 'a.b', '{"a": 1}', ARRAY['a', NULL]);
SELECT defendable.append_receipt(:orgb, 'a.b', '{"a": 1}', '{{a},{a}}');
\echo oversized fields
SET defendable.max_fields_bytes = 1024;
SELECT defendable.append_receipt(:orgb, 'a.b', jsonb_build_object('blob', repeat('x', 2000)));
RESET defendable.max_fields_bytes;
\echo bad arguments of the other functions
SELECT defendable.jcs_text('{"a":');
SELECT defendable.jcs_text('[' || repeat('[', 200) || repeat(']', 200) || ']');
SELECT defendable.public_projection(:orgb, -1);
\set VERBOSITY default
-- none of the failed calls wrote anything: only the two valid boundary appends above (a
-- 64-byte kind without fields, 64 fields) added receipts, one disclosures row, no new head
SELECT (SELECT count(*) FROM defendable.receipts) - receipts AS new_receipts,
       (SELECT count(*) FROM defendable.disclosures) - disclosures AS new_disclosures,
       (SELECT count(*) FROM defendable.heads) - heads AS new_heads FROM before;
SELECT receipts, ok, detail FROM defendable.verify_ledger(:orgb);
-- values nested deeper than canonical-JSON readers accept are refused, so no receipt holds a
-- value that nobody could verify: 127 containers with a scalar inside fit, 128 do not
SELECT (defendable.append_receipt(:orgb, 'a.b', jsonb_build_object('x', (repeat('[', 127) || '1' || repeat(']', 127))::jsonb))).seq AS deepest_accepted;
\set VERBOSITY sqlstate
SELECT defendable.append_receipt(:orgb, 'a.b', jsonb_build_object('x', (repeat('[', 128) || '1' || repeat(']', 128))::jsonb));
\set VERBOSITY default
-- a whole document is level 0: 129 nested arrays reach level 128 and fit, 130 do not
SELECT length(defendable.jcs((repeat('[', 129) || repeat(']', 129))::jsonb)) AS fits;
SELECT defendable.jcs((repeat('[', 130) || repeat(']', 130))::jsonb);
