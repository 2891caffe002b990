/*
 * dfd_note.h: C2SP signed notes (signed-note.md) with Ed25519, verifier and signer keys, and
 * C2SP tlog-checkpoint bodies. Postgres-free; Ed25519 comes from OpenSSL.
 *
 * Formats (C2SP):
 *   verifier key  <name>+<8 hex key ID>+<base64(0x01 || 32-byte public key)>
 *   signer key    PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>
 *   key ID        first 4 bytes (big-endian) of SHA-256(name || "\n" || 0x01 || public key)
 *   signed note   <text ending in "\n">"\n"<one or more lines "— <name> <base64(key ID || sig)>\n">
 *   checkpoint    "<origin>\n<decimal size>\n<base64 of 32-byte root>\n" [extension lines]
 * base64 here is standard and padded (RFC 4648 section 4).
 */
#ifndef DFD_NOTE_H
#define DFD_NOTE_H

#include "dfd_core.h"

#define DFD_ED25519_KEY_LEN 32
#define DFD_ED25519_SIG_LEN 64
#define DFD_NOTE_NAME_MAX 256 /* bytes of a key name */
#define DFD_NOTE_MAX_SIGS 100 /* signatures read from one note; more is an error */
#define DFD_NOTE_MAX_LEN 1000000

/* Standard padded base64 (RFC 4648 section 4), strict: canonical padding and trailing bits. */
size_t dfd_b64std_len(size_t n);
void dfd_b64std_encode(const uint8_t *in, size_t n, char *out);
bool dfd_b64std_decode(const char *in, size_t len, uint8_t *out, size_t *outlen);

typedef struct dfd_vkey {
    char name[DFD_NOTE_NAME_MAX + 1];
    size_t name_len;
    uint32_t id;
    uint8_t pub[DFD_ED25519_KEY_LEN];
} dfd_vkey;

typedef struct dfd_skey {
    dfd_vkey vkey; /* name, id and the public key derived from the seed */
    uint8_t seed[DFD_ED25519_KEY_LEN];
} dfd_skey;

/* A key name is non-empty, has no Unicode space, no '+', and is valid UTF-8 (C2SP). */
bool dfd_note_valid_name(const char *name, size_t len);
uint32_t dfd_note_key_id(const char *name, size_t len, const uint8_t pub[DFD_ED25519_KEY_LEN]);

/* Parse refuses a wrong algorithm byte, a key ID that does not match, and bad names. */
bool dfd_vkey_parse(const char *s, size_t len, dfd_vkey *out);
dfd_status dfd_vkey_format(dfd_buf *out, const dfd_vkey *k);
bool dfd_skey_parse(const char *s, size_t len, dfd_skey *out);
dfd_status dfd_skey_format(dfd_buf *out, const dfd_skey *k);
/* A new signer key with a random seed (OpenSSL's RAND_bytes). */
bool dfd_skey_generate(const char *name, size_t name_len, dfd_skey *out);

bool dfd_ed25519_public_from_seed(const uint8_t seed[DFD_ED25519_KEY_LEN],
                                  uint8_t pub[DFD_ED25519_KEY_LEN]);
bool dfd_ed25519_sign(const uint8_t seed[DFD_ED25519_KEY_LEN], const uint8_t *msg, size_t len,
                      uint8_t sig[DFD_ED25519_SIG_LEN]);
bool dfd_ed25519_verify(const uint8_t pub[DFD_ED25519_KEY_LEN], const uint8_t *msg, size_t len,
                        const uint8_t sig[DFD_ED25519_SIG_LEN]);

/* One signature line of a note. */
typedef struct dfd_note_sig {
    const char *name; /* points into the parsed message */
    size_t name_len;
    uint32_t id;
    uint8_t sig[DFD_ED25519_SIG_LEN];
    bool is_ed25519; /* the signature decoded to key ID + 64 bytes */
} dfd_note_sig;

typedef struct dfd_note {
    const char *text; /* the signed text, including its final "\n"; points into the message */
    size_t text_len;
    dfd_note_sig sigs[DFD_NOTE_MAX_SIGS];
    size_t nsigs;
} dfd_note;

/*
 * Splits a signed note into text and signature lines (the last "\n\n" separates them).
 * Refuses malformed lines, text not ending in "\n", control characters other than "\n",
 * invalid UTF-8, more than DFD_NOTE_MAX_SIGS signatures, and notes over DFD_NOTE_MAX_LEN.
 */
dfd_status dfd_note_parse(const char *msg, size_t len, dfd_note *out);
/* True when the note carries a valid signature by this key (name and key ID match). */
bool dfd_note_verify(const dfd_note *note, const dfd_vkey *k);
/* Writes text (which must end in "\n"), a blank line and one signature line by k. */
dfd_status dfd_note_sign(dfd_buf *out, const char *text, size_t len, const dfd_skey *k);

typedef struct dfd_checkpoint {
    const char *origin; /* points into the text */
    size_t origin_len;
    uint64_t size;
    uint8_t root[32];
    const char *extensions; /* lines after the root, possibly empty */
    size_t extensions_len;
} dfd_checkpoint;

/* Parses a tlog-checkpoint body (the note text). */
dfd_status dfd_checkpoint_parse(const char *text, size_t len, dfd_checkpoint *out);
dfd_status dfd_checkpoint_format(dfd_buf *out, const char *origin, size_t origin_len, uint64_t size,
                                 const uint8_t root[32]);

#endif /* DFD_NOTE_H */
