/*
 * fuzz_note: C2SP signed notes and tlog checkpoints (dfd_note_parse, dfd_note_verify,
 * dfd_checkpoint_parse, dfd_vkey_parse, dfd_skey_parse): what a bundle's "checkpoint" member,
 * an export's checkpoint lines, record_checkpoint() and the CLI's --key read.
 *
 * The harness key is Go's published PeterNeumann test key (signed-notes.json), so the seed
 * notes signed by it reach signature verification and the fuzzer mutates around real ones.
 *
 * Invariants:
 *   - a parsed note's text is a prefix of the input ending in "\n", and every signature line
 *     names a valid key name; a note verifies exactly when it carries a line by the key and
 *     every line by the key checks independently with Ed25519 over exactly that text;
 *   - any note text the parser accepts can be signed, re-parsed and verified (round trip);
 *   - a parsed checkpoint re-formats to the same first three lines (one text per tree head);
 *   - a parsed verifier or signer key re-formats to the same text.
 */
#include "../extension/core/dfd_core.h"
#include "../extension/core/dfd_note.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

#define MAX_INPUT 65536

static const char harness_skey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static dfd_skey skey;
static dfd_note note, resigned; /* about 9 KB each: static rather than on the stack */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(dfd_skey_parse(harness_skey, strlen(harness_skey), &skey), "harness key");
    return 0;
}

/*
 * Two checks here are pure functions of their bytes and each costs Ed25519 work: the round
 * trip of a note text (a signature and a verification) and the independent verification of one
 * signature line. Most mutations keep the text and the lines, so each distinct one is computed
 * once and remembered: the table holds 8 bytes of SHA-256 of up to 32,768 keys with their
 * answers, then stops remembering (and keeps computing).
 */
#define SEEN_SLOTS 65536
static uint64_t seen_key[SEEN_SLOTS];
static bool seen_val[SEEN_SLOTS];
static size_t n_seen;

static uint64_t
key_of(const void *a, size_t alen, const void *b, size_t blen, uint8_t tag)
{
    static dfd_buf msg;
    uint8_t h[DFD_SHA256_LEN];
    uint64_t k = 0;

    dfd_buf_reset(&msg);
    FUZZ_CHECK(dfd_buf_putc(&msg, (char)tag) && dfd_buf_append(&msg, a, alen) &&
                   dfd_buf_append(&msg, b, blen) && dfd_sha256(msg.data, msg.len, h),
               "cache key");
    for (int i = 0; i < 8; i++)
        k = k << 8 | h[i];
    return k | 1; /* 0 marks a free slot */
}

/* Returns the slot of k, or SEEN_SLOTS when k is unknown (and *free_slot where it would go). */
static size_t
seen_find(uint64_t k, size_t *free_slot)
{
    for (size_t i = k % SEEN_SLOTS;; i = (i + 1) % SEEN_SLOTS) {
        if (seen_key[i] == k)
            return i;
        if (seen_key[i] == 0) {
            *free_slot = i;
            return SEEN_SLOTS;
        }
    }
}

static void
seen_put(uint64_t k, size_t slot, bool v)
{
    if (n_seen < SEEN_SLOTS / 2) {
        seen_key[slot] = k;
        seen_val[slot] = v;
        n_seen++;
    }
}

/* Ed25519 verification of one line by the harness key, remembered. */
static bool
line_verifies(const dfd_note *n, const dfd_note_sig *s)
{
    uint64_t k = key_of(n->text, n->text_len, s->sig, sizeof s->sig, 1);
    size_t free_slot = 0, i = seen_find(k, &free_slot);
    bool v;

    if (i < SEEN_SLOTS)
        return seen_val[i];
    v = dfd_ed25519_verify(skey.vkey.pub, (const uint8_t *)n->text, n->text_len, s->sig);
    seen_put(k, free_slot, v);
    return v;
}

/* True when this text's round trip was already checked (and records it as checked). */
static bool
round_trip_done(const char *text, size_t len)
{
    uint64_t k = key_of(text, len, "", 0, 2);
    size_t free_slot = 0;

    if (seen_find(k, &free_slot) < SEEN_SLOTS)
        return true;
    seen_put(k, free_slot, true);
    return false;
}

static void
check_note(const uint8_t *data, size_t size)
{
    bool by_key = false, bad_by_key = false;

    if (dfd_note_parse((const char *)data, size, &note) != DFD_OK)
        return;
    FUZZ_CHECK(note.text == (const char *)data && note.text_len > 0 && note.text_len < size,
               "note text is not a proper prefix of the input");
    FUZZ_CHECK(note.text[note.text_len - 1] == '\n', "note text does not end in a newline");
    FUZZ_CHECK(note.nsigs >= 1 && note.nsigs <= DFD_NOTE_MAX_SIGS, "signature count");
    for (size_t i = 0; i < note.nsigs; i++) {
        const dfd_note_sig *s = &note.sigs[i];

        FUZZ_CHECK(s->name >= (const char *)data &&
                       s->name + s->name_len <= (const char *)data + size,
                   "signature name outside the input");
        FUZZ_CHECK(dfd_note_valid_name(s->name, s->name_len), "signature line with a bad name");
        /* as Go's note.Open: a line by the key that does not verify spoils the note */
        if (s->id == skey.vkey.id && s->name_len == skey.vkey.name_len &&
            memcmp(s->name, skey.vkey.name, s->name_len) == 0) {
            if (s->is_ed25519 && line_verifies(&note, s))
                by_key = true;
            else
                bad_by_key = true;
        }
    }
    FUZZ_CHECK(dfd_note_verify(&note, &skey.vkey) == (by_key && !bad_by_key),
               "dfd_note_verify disagrees with the signature lines");

    /* round trip: what parses as a note text can be signed and verifies */
    if (!round_trip_done(note.text, note.text_len)) {
        dfd_buf signed_note;

        dfd_buf_init(&signed_note);
        FUZZ_CHECK(dfd_note_sign(&signed_note, note.text, note.text_len, &skey) == DFD_OK,
                   "cannot sign a text the parser accepted");
        FUZZ_CHECK(dfd_note_parse(signed_note.data, signed_note.len, &resigned) == DFD_OK,
                   "cannot parse a note just signed");
        FUZZ_CHECK(resigned.text_len == note.text_len &&
                       memcmp(resigned.text, note.text, note.text_len) == 0,
                   "re-signed note has another text");
        FUZZ_CHECK(dfd_note_verify(&resigned, &skey.vkey), "note just signed does not verify");
        dfd_buf_free(&signed_note);
    }
}

static void
check_checkpoint(const uint8_t *data, size_t size)
{
    dfd_checkpoint cp;
    dfd_buf again;
    size_t head;

    if (dfd_checkpoint_parse((const char *)data, size, &cp) != DFD_OK)
        return;
    FUZZ_CHECK(cp.extensions_len <= size, "extensions longer than the input");
    head = size - cp.extensions_len;
    FUZZ_CHECK(cp.extensions == (const char *)data + head, "extensions are not the tail");
    FUZZ_CHECK(cp.extensions_len == 0 || cp.extensions[cp.extensions_len - 1] == '\n',
               "extension lines do not end in a newline");
    dfd_buf_init(&again);
    FUZZ_CHECK(dfd_checkpoint_format(&again, cp.origin, cp.origin_len, cp.size, cp.root) == DFD_OK,
               "cannot format a parsed checkpoint");
    FUZZ_CHECK(again.len == head && memcmp(again.data, data, head) == 0,
               "checkpoint does not re-format to its own text");
    dfd_buf_free(&again);
}

static void
check_keys(const uint8_t *data, size_t size)
{
    dfd_vkey vk;
    dfd_skey sk;
    dfd_buf again;

    if (size > 1024)
        return;
    if (dfd_vkey_parse((const char *)data, size, &vk)) {
        dfd_buf_init(&again);
        FUZZ_CHECK(dfd_vkey_format(&again, &vk) == DFD_OK, "cannot format a parsed vkey");
        FUZZ_CHECK(again.len == size && memcmp(again.data, data, size) == 0,
                   "verifier key does not re-format to its own text");
        dfd_buf_free(&again);
    }
    if (dfd_skey_parse((const char *)data, size, &sk)) {
        dfd_buf_init(&again);
        FUZZ_CHECK(dfd_skey_format(&again, &sk) == DFD_OK, "cannot format a parsed skey");
        FUZZ_CHECK(again.len == size && memcmp(again.data, data, size) == 0,
                   "signer key does not re-format to its own text");
        dfd_buf_free(&again);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    check_note(data, size);
    check_checkpoint(data, size);
    check_keys(data, size);
    return 0;
}
