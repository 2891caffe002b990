/*
 * fuzz_check.h: the one way a harness reports a broken invariant. abort() makes libFuzzer keep
 * the input as a crash file, exactly like a sanitizer report, so a logic bug and a memory bug
 * are found, minimized and replayed the same way.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, what)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, (what));   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
