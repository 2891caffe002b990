/*
 * fuzz_check.h: the one way a harness reports a broken invariant. abort() makes libFuzzer keep
 * the input as a crash file, exactly like a sanitizer report, so a logic bug and a memory bug
 * are found, minimized and replayed the same way.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, what)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, (what));   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The UUID text shape (8-4-4-4-12 hex digits, either case), written apart from the gateway's
 * gw_text_is_uuid so that the harnesses compare it with an independent reading. */
static inline bool
fuzz_uuid_shape(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL)
            return false;
    }
    return true;
}

#endif
