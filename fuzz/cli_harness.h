/*
 * cli_harness.h: what the two CLI harnesses share. defendable-verify.c is included whole (its
 * main renamed by the Makefile's -Dmain=...), so its static parsers run exactly as built, with
 * no change to the CLI for the sake of the fuzzer.
 *
 * The harness key is Go's published PeterNeumann test key (signed-notes.json). Standard output
 * is captured per input in a memory stream, so "--json output is one JSON document" can be
 * checked and nothing reaches the terminal.
 */
#ifndef FUZZ_CLI_HARNESS_H
#define FUZZ_CLI_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmd_export opens its input by name: hand it the current fuzz input instead */
static const uint8_t *fuzz_input;
static size_t fuzz_input_len;

static FILE *
fuzz_fopen(const char *path, const char *mode)
{
    (void)path;
    (void)mode;
    /* fmemopen refuses a zero-sized buffer; an empty file is an empty stream either way */
    return fuzz_input_len > 0 ? fmemopen((void *)fuzz_input, fuzz_input_len, "rb")
                              : fopen("/dev/null", "rb");
}

/*
 * cmd_export allocates its 1 MiB line buffer per call. Under ASan every such allocation is a
 * fresh mapping, which made the harness spend its time in mmap (1,500 inputs/s). The buffer
 * comes from one static array of the same size instead; a global array keeps ASan redzones on
 * both sides, so an overflow of the line buffer is still caught. Every other allocation is
 * the CLI's own malloc.
 */
static char line_pool[(1u << 20) + 1];
static bool line_pool_used;

static void *
fuzz_malloc(size_t n)
{
    if (n == sizeof line_pool && !line_pool_used) {
        line_pool_used = true;
        return line_pool;
    }
    return malloc(n);
}

static void
fuzz_free(void *p)
{
    if (p == line_pool)
        line_pool_used = false;
    else
        free(p);
}

#define fopen(path, mode) fuzz_fopen(path, mode)
#define malloc(n) fuzz_malloc(n)
#define free(p) fuzz_free(p)
#include "../gateway/defendable-verify.c"
#undef fopen
#undef malloc
#undef free

#include "fuzz_check.h"

static const char harness_skey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static dfd_skey skey;
static char vkey_text[600];

static void
cli_init(void)
{
    dfd_buf b;

    FUZZ_CHECK(dfd_skey_parse(harness_skey, strlen(harness_skey), &skey), "harness key");
    dfd_buf_init(&b);
    FUZZ_CHECK(dfd_vkey_format(&b, &skey.vkey) == DFD_OK && b.len < sizeof vkey_text, "vkey");
    memcpy(vkey_text, b.data, b.len);
    vkey_text[b.len] = '\0';
    dfd_buf_free(&b);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cli_init();
    return 0;
}

static FILE *real_stdout;
static char *captured;
static size_t captured_len;

static void
capture_begin(void)
{
    real_stdout = stdout;
    stdout = open_memstream(&captured, &captured_len);
    FUZZ_CHECK(stdout != NULL, "open_memstream");
}

/* Ends the capture; with json set, the output must be exactly one JSON object and one "\n". */
static void
capture_end(bool json)
{
    fclose(stdout);
    stdout = real_stdout;
    if (json) {
        json_error_t err;
        json_t *doc;

        FUZZ_CHECK(captured_len > 0 && captured[captured_len - 1] == '\n',
                   "--json output does not end in a newline");
        doc = json_loadb(captured, captured_len - 1, JSON_REJECT_DUPLICATES, &err);
        if (doc == NULL)
            fprintf(stderr, "%s\n", err.text);
        FUZZ_CHECK(json_is_object(doc), "--json output is not one JSON object");
        FUZZ_CHECK(json_is_boolean(json_object_get(doc, "ok")) &&
                       json_is_array(json_object_get(doc, "checks")),
                   "--json output lacks ok or checks");
        json_decref(doc);
    }
    free(captured);
    captured = NULL;
    captured_len = 0;
}

#endif
