/*
 * fuzz_bearer: the Authorization header as the gateway reads it before any route runs:
 * gw_bearer_token (body.c) takes the credential after "Bearer ", then server.c's authenticate
 * tells an API key ("dfd_" prefix, at most 200 bytes, checked in SQL by the handler) from a
 * session JWT (gw_jwt_verify, then the subject must be a UUID).
 *
 * Seeds include headers carrying JWTs signed with the harness secret, so mutations of the
 * scheme, spacing and token reach an accepted session as well as every refusal.
 *
 * Invariants: the credential is the header's text after a case-insensitive "Bearer " and the
 * spaces after it, never empty and never outside the header; no header without that scheme
 * yields one; an accepted session's subject is a UUID and the token is the credential exactly.
 */
#include "gw_stubs.h"
#include "../gateway/jwt.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

#define NOW INT64_C(1700000000)
#define LEEWAY 60
#define MAX_HEADER 8192

static const uint8_t key[] = "fuzz current session secret, 32+ bytes long";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char header[MAX_HEADER + 1];
    const char *tok;
    bool scheme;
    size_t skip = 7;

    if (size > MAX_HEADER || memchr(data, '\0', size) != NULL)
        return 0; /* a header value is a C string by the time the gateway sees it */
    memcpy(header, data, size);
    header[size] = '\0';

    tok = gw_bearer_token(header);
    scheme = size >= 7 && strncasecmp(header, "bearer ", 7) == 0;
    while (scheme && skip < size && header[skip] == ' ')
        skip++;
    if (!scheme || skip == size) {
        FUZZ_CHECK(tok == NULL, "a credential from a header without one");
        FUZZ_CHECK(gw_bearer_token(NULL) == NULL, "a credential from no header");
        return 0;
    }
    FUZZ_CHECK(tok == header + skip, "the credential is not the text after the scheme");

    /* authenticate(): an API key goes to SQL as it is; anything else must be a session JWT */
    if (strncmp(tok, "dfd_", 4) != 0) {
        gw_jwt_claims c;
        size_t len = strlen(tok);

        if (gw_jwt_verify(tok, len, key, sizeof key - 1, NULL, 0, NOW, LEEWAY, &c) == GW_JWT_OK &&
            gw_text_is_uuid(c.sub)) {
            FUZZ_CHECK(strlen(c.sub) == 36, "an accepted subject that is not a UUID");
            FUZZ_CHECK(len <= GW_JWT_MAX_LEN, "an accepted token longer than the limit");
        }
    }
    return 0;
}
