/*
 * fuzz_encode: the byte encodings every outside token goes through: base64url (receipt
 * digests, JWT segments, salts), standard padded base64 (checkpoint roots, note keys and
 * signatures), hex (hashes) and the one UTF-8 decoder.
 *
 * Invariants: decode(encode(x)) == x for every byte string, and every accepted text is the
 * only text of its bytes (encode(decode(t)) == t, or lower-case t for hex), which is what makes
 * a digest or a signature comparable as text. Every UTF-8 sequence the decoder accepts is
 * re-encoded here independently and must be the same, shortest, bytes.
 */
#include "../extension/core/dfd_core.h"
#include "../extension/core/dfd_note.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

#define MAX_INPUT 4096

static uint8_t decoded[MAX_INPUT];
static char text[2 * MAX_INPUT + 8];

static void
b64url(const uint8_t *data, size_t size)
{
    size_t n, len = dfd_b64url_len(size);

    dfd_b64url_encode(data, size, text);
    FUZZ_CHECK(dfd_b64url_decode(text, len, decoded, &n), "base64url refuses its own output");
    FUZZ_CHECK(n == size && memcmp(decoded, data, size) == 0, "base64url round trip");
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK(text[i] != '=' && text[i] != '+' && text[i] != '/', "base64url alphabet");

    if (dfd_b64url_decode((const char *)data, size, decoded, &n)) {
        FUZZ_CHECK(n == size * 3 / 4, "base64url decoded length");
        FUZZ_CHECK(dfd_b64url_len(n) == size, "base64url text length");
        dfd_b64url_encode(decoded, n, text);
        FUZZ_CHECK(memcmp(text, data, size) == 0, "base64url accepted a non-canonical text");
    }
}

static void
b64std(const uint8_t *data, size_t size)
{
    size_t n, len = dfd_b64std_len(size);

    dfd_b64std_encode(data, size, text);
    FUZZ_CHECK(len % 4 == 0, "padded base64 length");
    FUZZ_CHECK(dfd_b64std_decode(text, len, decoded, &n), "base64 refuses its own output");
    FUZZ_CHECK(n == size && memcmp(decoded, data, size) == 0, "base64 round trip");

    if (dfd_b64std_decode((const char *)data, size, decoded, &n)) {
        FUZZ_CHECK(dfd_b64std_len(n) == size, "base64 text length");
        dfd_b64std_encode(decoded, n, text);
        FUZZ_CHECK(memcmp(text, data, size) == 0, "base64 accepted a non-canonical text");
    }
}

static void
hex(const uint8_t *data, size_t size)
{
    dfd_hex_encode(data, size, text);
    FUZZ_CHECK(dfd_hex_decode(text, 2 * size, decoded, size), "hex refuses its own output");
    FUZZ_CHECK(memcmp(decoded, data, size) == 0, "hex round trip");

    if (size % 2 == 0 && dfd_hex_decode((const char *)data, size, decoded, size / 2)) {
        dfd_hex_encode(decoded, size / 2, text);
        for (size_t i = 0; i < size; i++) {
            char c = (char)data[i];

            if (c >= 'A' && c <= 'F')
                c = (char)(c - 'A' + 'a');
            FUZZ_CHECK(text[i] == c, "hex accepted something that is not hex");
        }
    }
    /* a wrong length is never accepted, whatever the digits */
    if (size > 0)
        FUZZ_CHECK(!dfd_hex_decode((const char *)data, size, decoded, (size + 1) / 2 + 1),
                   "hex accepted a text of the wrong length");
}

/* The UTF-8 of one code point, written here without the core (RFC 3629 section 3). */
static size_t
utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static void
utf8(const uint8_t *data, size_t size)
{
    size_t i = 0;

    while (i < size) {
        uint32_t cp = 0;
        uint8_t again[4];
        size_t k = dfd_utf8_decode(data + i, size - i, &cp);

        if (k == 0) {
            i++;
            continue;
        }
        FUZZ_CHECK(k <= size - i, "UTF-8 decoder read past the end");
        FUZZ_CHECK(cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF),
                   "UTF-8 decoder accepted a surrogate or a value above U+10FFFF");
        FUZZ_CHECK(utf8_encode(cp, again) == k && memcmp(again, data + i, k) == 0,
                   "UTF-8 decoder accepted an overlong or inconsistent sequence");
        i += k;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    b64url(data, size);
    b64std(data, size);
    hex(data, size);
    utf8(data, size);
    return 0;
}
