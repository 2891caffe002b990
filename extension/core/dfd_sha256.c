/*
 * dfd_sha256.c: SHA-256 through OpenSSL's EVP interface.
 *
 * The digest implementation is fetched once per thread and the context reused: in OpenSSL 3 a
 * plain EVP_Digest(..., EVP_sha256(), ...) looks the algorithm up again on every call, which
 * costs more than hashing a 256-byte receipt body.
 */
#include "dfd_core.h"

#include <openssl/evp.h>

static _Thread_local EVP_MD *sha256_md;
static _Thread_local EVP_MD_CTX *sha256_ctx;

bool
dfd_sha256(const void *data, size_t len, uint8_t out[DFD_SHA256_LEN])
{
    unsigned int outlen = 0;

    if (sha256_ctx == NULL) {
        if (sha256_md == NULL)
            sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (sha256_md == NULL)
            return false;
        sha256_ctx = EVP_MD_CTX_new();
        if (sha256_ctx == NULL)
            return false;
    }
    if (EVP_DigestInit_ex(sha256_ctx, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(sha256_ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(sha256_ctx, out, &outlen) != 1)
        return false;
    return outlen == DFD_SHA256_LEN;
}

void
dfd_sha256_thread_release(void)
{
    EVP_MD_CTX_free(sha256_ctx);
    EVP_MD_free(sha256_md);
    sha256_ctx = NULL;
    sha256_md = NULL;
}

bool
dfd_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;

    /* no early exit: every byte is read whatever the earlier ones were */
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}
