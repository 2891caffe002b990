/*
 * fuzz_cli_bundle: receipt bundles as `defendable-verify bundle` reads them (parse_bundle,
 * verify_bundle, the text and --json reports of gateway/defendable-verify.c), the document a
 * share link hands to anyone.
 *
 * Input: a mode byte, then the bundle. Bit 0 re-signs the bundle's checkpoint text with the
 * harness key (a fuzzer never forges Ed25519), so mutated trees, proofs and receipts reach the
 * inclusion check; bit 1 asks for the --json report instead of text.
 *
 * Invariants: the --json report is one JSON object whatever the bundle holds (untrusted
 * strings are escaped); a bundle reported verified really is: its checkpoint verifies with
 * the key, its tree size and leaf index agree, the receipt's body hashes to its hash, every
 * disclosure's digest is among the fields, and the proof leads to the signed root.
 */
#include "cli_harness.h"

static void
check_verified(bundle *b)
{
    dfd_buf scratch;
    uint8_t computed[DFD_SHA256_LEN];
    dfd_hash leaf;

    FUZZ_CHECK(b->has_checkpoint && dfd_note_verify(b->note, &skey.vkey),
               "verified without a checkpoint signed by the key");
    FUZZ_CHECK(b->tree_size >= 0 && b->cp.size == (uint64_t)b->tree_size,
               "verified with another tree size");
    FUZZ_CHECK(b->leaf_index == b->h.seq - 1 && b->leaf_index < b->tree_size,
               "verified with a wrong leaf index");
    dfd_buf_init(&scratch);
    header_hash(&b->h, &scratch, computed);
    dfd_buf_free(&scratch);
    FUZZ_CHECK(memcmp(computed, b->h.hash, DFD_SHA256_LEN) == 0, "verified a wrong body hash");
    for (size_t i = 0; i < b->ndisc; i++) {
        char digest[DFD_DIGEST_B64_LEN + 1];
        const dfd_field_digest *f = find_field(&b->h, b->disc[i].name, b->disc[i].name_len);

        FUZZ_CHECK(dfd_disclosure_digest(b->disc[i].text, b->disc[i].len, digest), "digest");
        FUZZ_CHECK(f != NULL && memcmp(f->digest, digest, DFD_DIGEST_B64_LEN) == 0,
                   "verified a disclosure whose digest is not in the fields");
    }
    FUZZ_CHECK(dfd_merkle_leaf_hash(b->h.hash, DFD_SHA256_LEN, leaf), "leaf");
    FUZZ_CHECK(dfd_merkle_verify_inclusion((uint64_t)b->leaf_index, (uint64_t)b->tree_size, leaf,
                                           (const dfd_hash *)b->proof, b->nproof, b->cp.root),
               "verified a proof that does not lead to the signed root");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bundle b;
    static dfd_buf resigned;
    bool resign, json;
    report r;
    dfd_buf extra;

    if (size < 1 || size > (1u << 20))
        return 0;
    resign = data[0] & 1;
    json = data[0] & 2;
    memset(&b, 0, sizeof b);
    dfd_buf_init(&resigned);
    dfd_buf_init(&extra);
    capture_begin();
    report_init(&r, json);
    if (parse_bundle(&r, (const char *)data + 1, size - 1, &b)) {
        if (resign && b.has_checkpoint) {
            FUZZ_CHECK(dfd_note_sign(&resigned, b.note->text, b.note->text_len, &skey) == DFD_OK,
                       "cannot sign a checkpoint text the parser accepted");
            FUZZ_CHECK(dfd_note_parse(resigned.data, resigned.len, b.note) == DFD_OK &&
                           dfd_checkpoint_parse(b.note->text, b.note->text_len, &b.cp) == DFD_OK,
                       "a re-signed checkpoint does not parse");
        }
        verify_bundle(&r, &b, &skey.vkey);
        if (report_exit(&r) == EXIT_VERIFIED) {
            check_verified(&b);
            if (json)
                bundle_json_result(&b, &skey.vkey, &extra);
            else
                bundle_text_result(&b);
        }
    }
    (void)report_finish(&r, "bundle", &extra, "verified");
    capture_end(json);
    free_bundle(&b);
    dfd_buf_free(&extra);
    dfd_buf_free(&resigned);
    return 0;
}
