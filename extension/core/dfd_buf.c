/*
 * dfd_buf.c: replaceable allocator, growable buffers and status texts of the core.
 */
#include "dfd_core.h"

#include <stdlib.h>
#include <string.h>

static void *
default_alloc(size_t size)
{
    return malloc(size);
}

static void *
default_realloc(void *ptr, size_t size)
{
    return realloc(ptr, size);
}

static void
default_free(void *ptr)
{
    free(ptr);
}

static dfd_allocator allocator = {default_alloc, default_realloc, default_free};

void
dfd_set_allocator(const dfd_allocator *a)
{
    allocator = *a;
}

void *
dfd_alloc(size_t size)
{
    return allocator.alloc(size);
}

void
dfd_free(void *ptr)
{
    if (ptr != NULL)
        allocator.free(ptr);
}

const char *
dfd_status_text(dfd_status st)
{
    switch (st) {
    case DFD_OK:
        return "ok";
    case DFD_ENOMEM:
        return "out of memory";
    case DFD_ESYNTAX:
        return "malformed JSON";
    case DFD_EUTF8:
        return "invalid UTF-8 or lone surrogate";
    case DFD_EDUPKEY:
        return "duplicate member name";
    case DFD_EDEPTH:
        return "JSON nested too deeply";
    case DFD_ENUMRANGE:
        return "number outside the range of an IEEE-754 double";
    case DFD_ENUMINEXACT:
        return "number cannot be represented exactly as an IEEE-754 double";
    case DFD_ETOOLARGE:
        return "input too large";
    case DFD_EINVAL:
        return "invalid argument";
    }
    return "unknown error";
}

void
dfd_buf_init(dfd_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void
dfd_buf_reset(dfd_buf *b)
{
    b->len = 0;
}

void
dfd_buf_free(dfd_buf *b)
{
    dfd_free(b->data);
    dfd_buf_init(b);
}

bool
dfd_buf_grow(dfd_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->failed)
        return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    need = b->len + extra + 1; /* room for a terminator */
    if (need <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    p = b->data ? allocator.realloc(b->data, cap) : allocator.alloc(cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool
dfd_buf_terminate(dfd_buf *b)
{
    if (!dfd_buf_reserve(b, 0))
        return false;
    b->data[b->len] = '\0';
    return true;
}
