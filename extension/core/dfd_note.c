/*
 * dfd_note.c: C2SP signed notes with Ed25519 keys, and tlog-checkpoint bodies.
 *
 * The formats are those of c2sp.org/signed-note and c2sp.org/tlog-checkpoint, and they agree
 * with golang.org/x/mod/sumdb/note, whose keys and notes we must read and write byte for byte.
 * Where the two leave room we are the stricter one: base64 must be canonical, the key ID of a
 * text key must be eight lower-case hex digits, a checkpoint root must be exactly 32 bytes and
 * its extension lines must be non-empty. Ed25519 itself is OpenSSL's.
 */
#include "dfd_note.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define ALG_ED25519 0x01
/* A text key's decoded key part: algorithm byte and 32 key bytes. */
#define KEY_BLOB_LEN (1 + DFD_ED25519_KEY_LEN)
/* A signature line's decoded part for Ed25519: key ID and signature. */
#define SIG_BLOB_LEN (4 + DFD_ED25519_SIG_LEN)

/* U+2014 EM DASH followed by a space opens every signature line. */
static const char sig_prefix[] = "\xe2\x80\x94 ";
#define SIG_PREFIX_LEN (sizeof sig_prefix - 1)

static const char skey_prefix[] = "PRIVATE+KEY+";
#define SKEY_PREFIX_LEN (sizeof skey_prefix - 1)

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hex_lower[] = "0123456789abcdef";

/* ---- base64 (RFC 4648 section 4) --------------------------------------------------------- */

/* Characters of the padded base64 text of n bytes. */
size_t
dfd_b64std_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Padded base64 of n bytes into out (dfd_b64std_len(n) chars, no terminator). */
void
dfd_b64std_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t v = (uint32_t)in[i] << 16;

        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
    }
}

/* Value of one base64 alphabet character, or -1. */
static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Checks the whole of a padded base64 text and decodes it, keeping only the first cap bytes.
 * *total receives the full decoded length. Signature lines of other algorithms can be long, and
 * all we need from them is the key ID, so this saves allocating room for the rest.
 */
static bool
b64std_decode_prefix(const char *in, size_t len, uint8_t *out, size_t cap, size_t *total)
{
    size_t o = 0;

    if (len % 4 != 0)
        return false;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        uint32_t v = 0;
        int pad = 0;

        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)in[i + j];
            int d;

            /* '=' may only fill the last one or two places of the final group */
            if (c == '=' && last && j >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (pad > 0 || (d = b64_value(c)) < 0)
                return false;
            v = v << 6 | (uint32_t)d;
        }
        /* canonical form: the bits that padding leaves over must be zero */
        if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
            return false;
        for (int j = 0; j < 3 - pad; j++, o++) {
            if (o < cap)
                out[o] = (uint8_t)(v >> (16 - 8 * j));
        }
    }
    *total = o;
    return true;
}

/*
 * Strict padded base64 decode. out must hold len / 4 * 3 bytes; *outlen gets the decoded
 * length. Refuses wrong padding, characters outside the alphabet and non-zero trailing bits,
 * so that every byte string has exactly one accepted text.
 */
bool
dfd_b64std_decode(const char *in, size_t len, uint8_t *out, size_t *outlen)
{
    return b64std_decode_prefix(in, len, out, SIZE_MAX, outlen);
}

/* ---- text checks ------------------------------------------------------------------------- */

/*
 * Checks note text: valid UTF-8 and no ASCII control character except "\n" (signed-note
 * section "Format"). Checkpoint bodies are note texts, so they share the rule.
 */
static dfd_status
check_note_chars(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        size_t n;

        if (u[i] < 0x80) {
            if (u[i] < 0x20 && u[i] != '\n')
                return DFD_ESYNTAX;
            i++;
            continue;
        }
        if ((n = dfd_utf8_decode(u + i, len - i, &cp)) == 0)
            return DFD_EUTF8;
        i += n;
    }
    return DFD_OK;
}

/* Unicode White_Space, the set Go's unicode.IsSpace tests and C2SP forbids in key names. */
static bool
is_unicode_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

/*
 * A key name is 1..DFD_NOTE_NAME_MAX bytes of UTF-8 with no Unicode space and no '+'. We also
 * refuse the other ASCII control characters: a note may not contain them, so a key with one in
 * its name could never sign or verify anything.
 */
bool
dfd_note_valid_name(const char *name, size_t len)
{
    const unsigned char *u = (const unsigned char *)name;
    size_t i = 0;

    if (name == NULL || len == 0 || len > DFD_NOTE_NAME_MAX)
        return false;
    while (i < len) {
        uint32_t cp;
        size_t n = dfd_utf8_decode(u + i, len - i, &cp);

        if (n == 0 || cp < 0x20 || cp == '+' || is_unicode_space(cp))
            return false;
        i += n;
    }
    return true;
}

/* ---- Ed25519 through OpenSSL ------------------------------------------------------------- */

/*
 * Failed OpenSSL calls leave entries on the thread's error queue. Inside a backend other
 * OpenSSL users (the SSL connection) read that queue, so we never leave ours behind.
 */
static bool
openssl_failed(void)
{
    ERR_clear_error();
    return false;
}

/* Derives the Ed25519 public key from a 32-byte seed (RFC 8032 section 5.1.5). */
bool
dfd_ed25519_public_from_seed(const uint8_t seed[DFD_ED25519_KEY_LEN],
                             uint8_t pub[DFD_ED25519_KEY_LEN])
{
    EVP_PKEY *pkey;
    size_t n = DFD_ED25519_KEY_LEN;
    bool ok;

    pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, DFD_ED25519_KEY_LEN);
    if (pkey == NULL)
        return openssl_failed();
    ok = EVP_PKEY_get_raw_public_key(pkey, pub, &n) == 1 && n == DFD_ED25519_KEY_LEN;
    EVP_PKEY_free(pkey);
    return ok ? true : openssl_failed();
}

/* Pure Ed25519 signature of msg with the key of this seed. */
bool
dfd_ed25519_sign(const uint8_t seed[DFD_ED25519_KEY_LEN], const uint8_t *msg, size_t len,
                 uint8_t sig[DFD_ED25519_SIG_LEN])
{
    static const uint8_t empty = 0;
    EVP_PKEY *pkey;
    EVP_MD_CTX *ctx;
    size_t n = DFD_ED25519_SIG_LEN;
    bool ok;

    if (msg == NULL && len > 0)
        return false;
    pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, DFD_ED25519_KEY_LEN);
    ctx = EVP_MD_CTX_new();
    /* Ed25519 hashes internally, so there is no digest to name (NULL md) */
    ok = pkey != NULL && ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
         EVP_DigestSign(ctx, sig, &n, msg != NULL ? msg : &empty, len) == 1 &&
         n == DFD_ED25519_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok ? true : openssl_failed();
}

/* True when sig is a valid pure Ed25519 signature of msg under pub. */
bool
dfd_ed25519_verify(const uint8_t pub[DFD_ED25519_KEY_LEN], const uint8_t *msg, size_t len,
                   const uint8_t sig[DFD_ED25519_SIG_LEN])
{
    static const uint8_t empty = 0;
    EVP_PKEY *pkey;
    EVP_MD_CTX *ctx;
    bool ok;

    if (msg == NULL && len > 0)
        return false;
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, DFD_ED25519_KEY_LEN);
    ctx = EVP_MD_CTX_new();
    ok = pkey != NULL && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
         EVP_DigestVerify(ctx, sig, DFD_ED25519_SIG_LEN, msg != NULL ? msg : &empty, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    /* a wrong signature is also reported through the error queue */
    return ok ? true : openssl_failed();
}

/* ---- keys -------------------------------------------------------------------------------- */

/*
 * Key ID: the first four bytes, big-endian, of SHA-256(name || "\n" || 0x01 || public key).
 * The interface has no way to report failure; if SHA-256 itself fails (OpenSSL broken) the ID
 * is 0, which at worst makes a key fail to match.
 */
uint32_t
dfd_note_key_id(const char *name, size_t len, const uint8_t pub[DFD_ED25519_KEY_LEN])
{
    uint8_t pre[DFD_NOTE_NAME_MAX + 2 + DFD_ED25519_KEY_LEN];
    uint8_t h[DFD_SHA256_LEN];

    if (len > DFD_NOTE_NAME_MAX || (name == NULL && len > 0))
        return 0;
    if (len > 0)
        memcpy(pre, name, len);
    pre[len] = '\n';
    pre[len + 1] = ALG_ED25519;
    memcpy(pre + len + 2, pub, DFD_ED25519_KEY_LEN);
    if (!dfd_sha256(pre, len + 2 + DFD_ED25519_KEY_LEN, h))
        return 0;
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Parses exactly eight lower-case hex digits, the only spelling we write. */
static bool
parse_key_id(const char *s, size_t len, uint32_t *id)
{
    uint32_t v = 0;

    if (len != 8)
        return false;
    for (size_t i = 0; i < 8; i++) {
        const char *p = memchr(hex_lower, s[i], 16);

        if (p == NULL)
            return false;
        v = v << 4 | (uint32_t)(p - hex_lower);
    }
    *id = v;
    return true;
}

/*
 * Parses "<name>+<hex id>+<base64(0x01 || 32 bytes)>", the tail shared by verifier and signer
 * keys. The name ends at the first '+' (names cannot hold one); base64 may, so the key part is
 * everything after the second. key receives the 32 key bytes.
 */
static bool
parse_key_text(const char *s, size_t len, dfd_vkey *k, uint8_t key[DFD_ED25519_KEY_LEN])
{
    const char *p1, *p2;
    uint8_t blob[KEY_BLOB_LEN];
    size_t name_len, total;
    bool ok;

    if (s == NULL || (p1 = memchr(s, '+', len)) == NULL)
        return false;
    name_len = (size_t)(p1 - s);
    p2 = memchr(p1 + 1, '+', len - name_len - 1);
    if (p2 == NULL || !dfd_note_valid_name(s, name_len) ||
        !parse_key_id(p1 + 1, (size_t)(p2 - p1 - 1), &k->id))
        return false;
    ok = b64std_decode_prefix(p2 + 1, len - (size_t)(p2 + 1 - s), blob, sizeof blob, &total) &&
         total == KEY_BLOB_LEN && blob[0] == ALG_ED25519;
    if (ok)
        memcpy(key, blob + 1, DFD_ED25519_KEY_LEN);
    OPENSSL_cleanse(blob, sizeof blob); /* it may be a seed */
    if (!ok)
        return false;
    memcpy(k->name, s, name_len);
    k->name[name_len] = '\0';
    k->name_len = name_len;
    return true;
}

/* Parses a verifier key; the key ID must be the one computed from its name and public key. */
bool
dfd_vkey_parse(const char *s, size_t len, dfd_vkey *out)
{
    dfd_vkey k;

    memset(&k, 0, sizeof k);
    if (out == NULL || !parse_key_text(s, len, &k, k.pub) ||
        k.id != dfd_note_key_id(k.name, k.name_len, k.pub))
        return false;
    *out = k;
    return true;
}

/* Parses a signer key; its key ID must match the public key derived from the seed. */
bool
dfd_skey_parse(const char *s, size_t len, dfd_skey *out)
{
    dfd_skey k;
    bool ok;

    if (s == NULL || out == NULL || len < SKEY_PREFIX_LEN ||
        memcmp(s, skey_prefix, SKEY_PREFIX_LEN) != 0)
        return false;
    memset(&k, 0, sizeof k);
    ok = parse_key_text(s + SKEY_PREFIX_LEN, len - SKEY_PREFIX_LEN, &k.vkey, k.seed) &&
         dfd_ed25519_public_from_seed(k.seed, k.vkey.pub) &&
         k.vkey.id == dfd_note_key_id(k.vkey.name, k.vkey.name_len, k.vkey.pub);
    if (ok)
        *out = k;
    OPENSSL_cleanse(&k, sizeof k);
    return ok;
}

/* A vkey struct is usable only if its name is valid and its ID belongs to name and key. */
static bool
vkey_consistent(const dfd_vkey *k)
{
    return dfd_note_valid_name(k->name, k->name_len) &&
           k->id == dfd_note_key_id(k->name, k->name_len, k->pub);
}

/* An skey struct is usable only if, in addition, its public key is the seed's. */
static bool
skey_consistent(const dfd_skey *k)
{
    uint8_t pub[DFD_ED25519_KEY_LEN];

    return vkey_consistent(&k->vkey) && dfd_ed25519_public_from_seed(k->seed, pub) &&
           memcmp(pub, k->vkey.pub, DFD_ED25519_KEY_LEN) == 0;
}

/* Appends "<name>+<hex id>+<base64(0x01 || key)>". */
static void
put_key_text(dfd_buf *out, const dfd_vkey *k, const uint8_t key[DFD_ED25519_KEY_LEN])
{
    uint8_t blob[KEY_BLOB_LEN];
    char text[8 + 1 + 44 + 1];

    for (int i = 0; i < 8; i++)
        text[i] = hex_lower[(k->id >> (28 - 4 * i)) & 0x0f];
    text[8] = '+';
    blob[0] = ALG_ED25519;
    memcpy(blob + 1, key, DFD_ED25519_KEY_LEN);
    dfd_b64std_encode(blob, sizeof blob, text + 9);
    dfd_buf_append(out, k->name, k->name_len);
    dfd_buf_putc(out, '+');
    dfd_buf_append(out, text, 8 + 1 + 44);
    OPENSSL_cleanse(blob, sizeof blob);
    OPENSSL_cleanse(text, sizeof text);
}

/* Appends the verifier key text; refuses a struct whose name or ID is not consistent. */
dfd_status
dfd_vkey_format(dfd_buf *out, const dfd_vkey *k)
{
    if (out == NULL || k == NULL || !vkey_consistent(k))
        return DFD_EINVAL;
    put_key_text(out, k, k->pub);
    return out->failed ? DFD_ENOMEM : DFD_OK;
}

/* Appends the signer key text (Go's format); refuses an inconsistent struct. */
dfd_status
dfd_skey_format(dfd_buf *out, const dfd_skey *k)
{
    if (out == NULL || k == NULL || !skey_consistent(k))
        return DFD_EINVAL;
    /* reserve first, so that no copy of the seed is left behind in a reallocated block */
    if (!dfd_buf_reserve(out, SKEY_PREFIX_LEN + k->vkey.name_len + 1 + 8 + 1 + 44))
        return DFD_ENOMEM;
    dfd_buf_append(out, skey_prefix, SKEY_PREFIX_LEN);
    put_key_text(out, &k->vkey, k->seed);
    return out->failed ? DFD_ENOMEM : DFD_OK;
}

/* Makes a signer key with a fresh random seed. */
bool
dfd_skey_generate(const char *name, size_t name_len, dfd_skey *out)
{
    dfd_skey k;
    bool ok;

    if (out == NULL || !dfd_note_valid_name(name, name_len))
        return false;
    memset(&k, 0, sizeof k);
    ok = RAND_bytes(k.seed, DFD_ED25519_KEY_LEN) == 1 &&
         dfd_ed25519_public_from_seed(k.seed, k.vkey.pub);
    if (ok) {
        memcpy(k.vkey.name, name, name_len);
        k.vkey.name[name_len] = '\0';
        k.vkey.name_len = name_len;
        k.vkey.id = dfd_note_key_id(name, name_len, k.vkey.pub);
        *out = k;
    } else {
        ERR_clear_error();
    }
    OPENSSL_cleanse(&k, sizeof k);
    return ok;
}

/* ---- notes ------------------------------------------------------------------------------- */

/*
 * Parses one signature line without its "\n": em dash, space, name, space, base64. Like Go we
 * require at least a key ID and one signature byte. Signatures of other algorithms (say a
 * cosignature/v1, 4 + 8 + 64 bytes) are kept with their key ID, marked as not Ed25519.
 */
static bool
parse_sig_line(const char *line, size_t len, dfd_note_sig *sig)
{
    const char *name, *sp, *b64;
    uint8_t blob[SIG_BLOB_LEN];
    size_t name_len, b64_len, total;

    if (len < SIG_PREFIX_LEN || memcmp(line, sig_prefix, SIG_PREFIX_LEN) != 0)
        return false;
    name = line + SIG_PREFIX_LEN;
    sp = memchr(name, ' ', len - SIG_PREFIX_LEN);
    if (sp == NULL)
        return false;
    name_len = (size_t)(sp - name);
    b64 = sp + 1;
    b64_len = len - (size_t)(b64 - line);
    if (!dfd_note_valid_name(name, name_len) || b64_len == 0 ||
        !b64std_decode_prefix(b64, b64_len, blob, sizeof blob, &total) || total < 5)
        return false;
    sig->name = name;
    sig->name_len = name_len;
    sig->id = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | blob[3];
    sig->is_ed25519 = total == SIG_BLOB_LEN;
    if (sig->is_ed25519)
        memcpy(sig->sig, blob + 4, DFD_ED25519_SIG_LEN);
    else
        memset(sig->sig, 0, DFD_ED25519_SIG_LEN);
    return true;
}

/* Splits a signed note at its last blank line and reads every signature line. */
dfd_status
dfd_note_parse(const char *msg, size_t len, dfd_note *out)
{
    size_t split = 0, pos;
    bool found = false;
    dfd_status st;

    if (msg == NULL || out == NULL)
        return DFD_EINVAL;
    out->text = NULL;
    out->text_len = 0;
    out->nsigs = 0;
    if (len > DFD_NOTE_MAX_LEN)
        return DFD_ETOOLARGE;
    if ((st = check_note_chars(msg, len)) != DFD_OK)
        return st;
    /* the text may contain blank lines itself; the last one is the separator */
    for (size_t i = len; i >= 2; i--) {
        if (msg[i - 1] == '\n' && msg[i - 2] == '\n') {
            split = i - 2;
            found = true;
            break;
        }
    }
    if (!found || split + 2 == len || msg[len - 1] != '\n')
        return DFD_ESYNTAX;
    for (pos = split + 2; pos < len;) {
        const char *nl = memchr(msg + pos, '\n', len - pos);
        dfd_note_sig sig;

        /* nl is never NULL: the message ends in "\n" */
        if (!parse_sig_line(msg + pos, (size_t)(nl - (msg + pos)), &sig)) {
            out->nsigs = 0;
            return DFD_ESYNTAX;
        }
        if (out->nsigs == DFD_NOTE_MAX_SIGS) {
            out->nsigs = 0;
            return DFD_ETOOLARGE;
        }
        out->sigs[out->nsigs++] = sig;
        pos = (size_t)(nl - msg) + 1;
    }
    out->text = msg;
    out->text_len = split + 1;
    return DFD_OK;
}

/*
 * True when at least one line carries k's name and key ID and every such line is a valid
 * Ed25519 signature of the text. Lines of other keys are ignored. A bad line under k's own name
 * and ID makes the answer false even if another line verifies: Go's note.Open rejects such a
 * note outright, and a signer never has reason to write one.
 */
bool
dfd_note_verify(const dfd_note *note, const dfd_vkey *k)
{
    bool any = false;

    if (note == NULL || k == NULL || note->text == NULL || note->nsigs > DFD_NOTE_MAX_SIGS)
        return false;
    for (size_t i = 0; i < note->nsigs; i++) {
        const dfd_note_sig *s = &note->sigs[i];

        if (s->id != k->id || s->name_len != k->name_len ||
            memcmp(s->name, k->name, k->name_len) != 0)
            continue;
        if (!s->is_ed25519 ||
            !dfd_ed25519_verify(k->pub, (const uint8_t *)note->text, note->text_len, s->sig))
            return false;
        any = true;
    }
    return any;
}

/*
 * Appends text, the blank line and one signature line by k. The text must be a valid note text
 * (UTF-8, no control characters but "\n", ending in "\n") so that the result parses again.
 */
dfd_status
dfd_note_sign(dfd_buf *out, const char *text, size_t len, const dfd_skey *k)
{
    uint8_t blob[SIG_BLOB_LEN];
    char b64[(SIG_BLOB_LEN + 2) / 3 * 4];
    size_t line_len;
    dfd_status st;

    if (out == NULL || text == NULL || k == NULL || !skey_consistent(k))
        return DFD_EINVAL;
    line_len = SIG_PREFIX_LEN + k->vkey.name_len + 1 + sizeof b64 + 1;
    if (len > DFD_NOTE_MAX_LEN || len + 1 + line_len > DFD_NOTE_MAX_LEN)
        return DFD_ETOOLARGE;
    if ((st = check_note_chars(text, len)) != DFD_OK)
        return st;
    if (len == 0 || text[len - 1] != '\n')
        return DFD_ESYNTAX;
    blob[0] = (uint8_t)(k->vkey.id >> 24);
    blob[1] = (uint8_t)(k->vkey.id >> 16);
    blob[2] = (uint8_t)(k->vkey.id >> 8);
    blob[3] = (uint8_t)k->vkey.id;
    if (!dfd_ed25519_sign(k->seed, (const uint8_t *)text, len, blob + 4))
        return DFD_EINVAL;
    dfd_b64std_encode(blob, sizeof blob, b64);
    dfd_buf_append(out, text, len);
    dfd_buf_putc(out, '\n');
    dfd_buf_append(out, sig_prefix, SIG_PREFIX_LEN);
    dfd_buf_append(out, k->vkey.name, k->vkey.name_len);
    dfd_buf_putc(out, ' ');
    dfd_buf_append(out, b64, sizeof b64);
    dfd_buf_putc(out, '\n');
    return out->failed ? DFD_ENOMEM : DFD_OK;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

/* Decimal tree size: digits only, no sign, no leading zero except "0" itself, fits uint64. */
static bool
parse_size(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';

        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/*
 * Parses a checkpoint body: origin, size, base64 of a 32-byte root, then extension lines. We
 * follow C2SP over transparency-dev here: extension lines must be non-empty, and a root that is
 * not 32 bytes is refused (the hash of every log we speak to is SHA-256).
 */
dfd_status
dfd_checkpoint_parse(const char *text, size_t len, dfd_checkpoint *out)
{
    const char *line[3];
    size_t line_len[3], pos = 0, total;
    uint8_t root[32];
    uint64_t size;
    dfd_status st;

    if (text == NULL || out == NULL)
        return DFD_EINVAL;
    if (len > DFD_NOTE_MAX_LEN)
        return DFD_ETOOLARGE;
    if ((st = check_note_chars(text, len)) != DFD_OK)
        return st;
    for (int i = 0; i < 3; i++) {
        const char *nl = memchr(text + pos, '\n', len - pos);

        if (nl == NULL)
            return DFD_ESYNTAX;
        line[i] = text + pos;
        line_len[i] = (size_t)(nl - line[i]);
        pos += line_len[i] + 1;
    }
    if (line_len[0] == 0 || !parse_size(line[1], line_len[1], &size) ||
        !b64std_decode_prefix(line[2], line_len[2], root, sizeof root, &total) ||
        total != sizeof root)
        return DFD_ESYNTAX;
    /* the rest ends in "\n" and has no empty line: no "\n\n" and no leading "\n" */
    if (pos < len && (text[len - 1] != '\n' || text[pos] == '\n'))
        return DFD_ESYNTAX;
    for (size_t i = pos; i + 1 < len; i++) {
        if (text[i] == '\n' && text[i + 1] == '\n')
            return DFD_ESYNTAX;
    }
    out->origin = line[0];
    out->origin_len = line_len[0];
    out->size = size;
    memcpy(out->root, root, sizeof root);
    out->extensions = text + pos;
    out->extensions_len = len - pos;
    return DFD_OK;
}

/* Appends "<origin>\n<size>\n<base64 root>\n"; the origin must be one line of note text. */
dfd_status
dfd_checkpoint_format(dfd_buf *out, const char *origin, size_t origin_len, uint64_t size,
                      const uint8_t root[32])
{
    char num[24], b64[44];
    int n;
    dfd_status st;

    if (out == NULL || origin == NULL || root == NULL || origin_len == 0)
        return DFD_EINVAL;
    if (origin_len > DFD_NOTE_MAX_LEN)
        return DFD_ETOOLARGE;
    if ((st = check_note_chars(origin, origin_len)) != DFD_OK)
        return st == DFD_EUTF8 ? st : DFD_EINVAL;
    if (memchr(origin, '\n', origin_len) != NULL)
        return DFD_EINVAL;
    n = snprintf(num, sizeof num, "%" PRIu64, size);
    dfd_b64std_encode(root, 32, b64);
    dfd_buf_append(out, origin, origin_len);
    dfd_buf_putc(out, '\n');
    dfd_buf_append(out, num, (size_t)n);
    dfd_buf_putc(out, '\n');
    dfd_buf_append(out, b64, sizeof b64);
    dfd_buf_putc(out, '\n');
    return out->failed ? DFD_ENOMEM : DFD_OK;
}
