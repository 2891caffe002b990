/*
 * test_merkle.c: tests of dfd_merkle.c (RFC 9162 section 2.1 Merkle trees), run without a server.
 *
 * Usage: test_merkle VECTOR_DIR   (VECTOR_DIR holds merkle/ as copied from the published vectors)
 * Prints one line per failed check and a final "merkle: N passed, N failed" line.
 *
 * Besides the published vectors, results are compared with a deliberately naive model written
 * here from the RFC's recursive definitions (MTH, PATH, SUBPROOF). It shares no code with
 * dfd_merkle.c, not even the node hash, so the two can only agree by both being right.
 */
#include "dfd_merkle.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test_check.h"

static const char *vector_dir;

#define HASH_LEN DFD_MERKLE_HASH_LEN

/* ---- the naive model ------------------------------------------------------------------------ */

/* SHA-256 that cannot fail quietly: a broken OpenSSL would make every later check meaningless. */
static void
sha256_or_die(const void *data, size_t len, dfd_hash out)
{
    if (!dfd_sha256(data, len, out)) {
        printf("FAIL dfd_sha256 failed\n");
        exit(1);
    }
}

/* The model's leaf hash, SHA-256(0x00 || data), assembled by hand. */
static void
model_leaf(const uint8_t *data, size_t len, dfd_hash out)
{
    uint8_t *buf = malloc(len + 1);

    if (buf == NULL) {
        printf("FAIL out of memory\n");
        exit(1);
    }
    buf[0] = 0x00;
    if (len > 0)
        memcpy(buf + 1, data, len);
    sha256_or_die(buf, len + 1, out);
    free(buf);
}

/* The model's node hash, SHA-256(0x01 || left || right). */
static void
model_node(const dfd_hash left, const dfd_hash right, dfd_hash out)
{
    uint8_t buf[1 + 2 * HASH_LEN];

    buf[0] = 0x01;
    memcpy(buf + 1, left, HASH_LEN);
    memcpy(buf + 1 + HASH_LEN, right, HASH_LEN);
    sha256_or_die(buf, sizeof buf, out);
}

/* The largest power of two smaller than n (n >= 2): 2k < n, written so that 2k cannot wrap. */
static uint64_t
model_split(uint64_t n)
{
    uint64_t k = 1;

    while (k <= (n - 1) / 2)
        k *= 2;
    return k;
}

/* MTH(D[n]) of RFC 9162 section 2.1.1, recursively from the leaf hashes. */
static void
model_mth(const dfd_hash *leaves, uint64_t n, dfd_hash out)
{
    dfd_hash left, right;
    uint64_t k;

    if (n == 0) {
        sha256_or_die("", 0, out);
        return;
    }
    if (n == 1) {
        memcpy(out, leaves[0], HASH_LEN);
        return;
    }
    k = model_split(n);
    model_mth(leaves, k, left);
    model_mth(leaves + k, n - k, right);
    model_node(left, right, out);
}

/* PATH(m, D[n]) of RFC 9162 section 2.1.3.1, as written; returns the number of hashes. */
static size_t
model_path(uint64_t m, const dfd_hash *leaves, uint64_t n, dfd_hash *out)
{
    uint64_t k;
    size_t len;

    if (n <= 1)
        return 0;
    k = model_split(n);
    if (m < k) {
        len = model_path(m, leaves, k, out);
        model_mth(leaves + k, n - k, out[len]);
    } else {
        len = model_path(m - k, leaves + k, n - k, out);
        model_mth(leaves, k, out[len]);
    }
    return len + 1;
}

/* SUBPROOF(m, D[n], b) of RFC 9162 section 2.1.4.1, as written. */
static size_t
model_subproof(uint64_t m, const dfd_hash *leaves, uint64_t n, bool b, dfd_hash *out)
{
    uint64_t k;
    size_t len;

    if (m == n) {
        if (b)
            return 0;
        model_mth(leaves, n, out[0]);
        return 1;
    }
    k = model_split(n);
    if (m <= k) {
        len = model_subproof(m, leaves, k, b, out);
        model_mth(leaves + k, n - k, out[len]);
    } else {
        len = model_subproof(m - k, leaves + k, n - k, false, out);
        model_mth(leaves, k, out[len]);
    }
    return len + 1;
}

/* Length of PATH(m, D[n]) without computing it (works for any n below 2^63). */
static size_t
model_path_len(uint64_t m, uint64_t n)
{
    uint64_t k;

    if (n <= 1)
        return 0;
    k = model_split(n);
    return 1 + (m < k ? model_path_len(m, k) : model_path_len(m - k, n - k));
}

/* Length of SUBPROOF(m, D[n], b) without computing it. */
static size_t
model_subproof_len(uint64_t m, uint64_t n, bool b)
{
    uint64_t k;

    if (m == n)
        return b ? 0 : 1;
    k = model_split(n);
    return 1 + (m <= k ? model_subproof_len(m, k, b) : model_subproof_len(m - k, n - k, false));
}

/* ---- a tree served through dfd_merkle_node_fn ------------------------------------------------ */

#define TREE_MAX_LEAVES 2048
#define TREE_LEVELS 12 /* 2^11 = TREE_MAX_LEAVES */

/*
 * All perfect subtree roots of up to 2048 leaves, precomputed bottom-up with the model's node
 * hash. `size` is the tree the callback pretends to be: asking for a node beyond it is a
 * generator bug, so such requests fail and are counted.
 */
typedef struct test_tree {
    dfd_hash nodes[TREE_LEVELS][TREE_MAX_LEAVES];
    size_t leaves;
    uint64_t size;
    unsigned long calls;
    unsigned long out_of_range;
    unsigned long fail_at; /* 1-based call number that fails, 0 for none */
} test_tree;

static test_tree tree;

/* Loads leaf hashes and fills every level above them. */
static void
tree_build(test_tree *t, const dfd_hash *leaf_hashes, size_t n)
{
    memset(t, 0, sizeof *t);
    t->leaves = n;
    t->size = n;
    memcpy(t->nodes[0], leaf_hashes, n * sizeof(dfd_hash));
    for (unsigned level = 1; level < TREE_LEVELS; level++)
        for (size_t i = 0; i < (n >> level); i++)
            model_node(t->nodes[level - 1][2 * i], t->nodes[level - 1][2 * i + 1],
                       t->nodes[level][i]);
}

/* The dfd_merkle_node_fn over a test_tree. */
static bool
tree_node(void *ctx, unsigned level, uint64_t index, dfd_hash out)
{
    test_tree *t = ctx;

    t->calls++;
    if (t->fail_at != 0 && t->calls == t->fail_at)
        return false;
    if (level >= TREE_LEVELS || t->size > t->leaves || index >= (t->size >> level)) {
        t->out_of_range++;
        return false;
    }
    memcpy(out, t->nodes[level][index], HASH_LEN);
    return true;
}

/* Checks what a frontier emits against the tree: every completed subtree, right hash. */
typedef struct emit_check {
    const test_tree *t;
    unsigned long emitted;
    unsigned long wrong;
    bool fail; /* make emit fail, to test that append then leaves the frontier alone */
} emit_check;

/* The dfd_merkle_emit_fn used with emit_check. */
static bool
check_emit(void *ctx, unsigned level, uint64_t index, const dfd_hash h)
{
    emit_check *e = ctx;

    if (e->fail)
        return false;
    e->emitted++;
    if (level == 0 || level >= TREE_LEVELS || index >= (e->t->leaves >> level) ||
        memcmp(h, e->t->nodes[level][index], HASH_LEN) != 0)
        e->wrong++;
    return true;
}

/*
 * A frontier of `size` leaves holds, for each set bit k, the tree's perfect subtree at level k
 * that ends the run of blocks of that size, and zeros elsewhere (so equal trees give equal
 * structs).
 */
static bool
frontier_matches(const dfd_merkle_frontier *f, const test_tree *t)
{
    static const dfd_hash zero;

    for (unsigned k = 0; k < 64; k++) {
        uint64_t blocks = f->size >> k;

        if ((blocks & 1) == 0) {
            if (memcmp(f->nodes[k], zero, HASH_LEN) != 0)
                return false;
        } else if (k >= TREE_LEVELS || blocks > (t->leaves >> k) ||
                   memcmp(f->nodes[k], t->nodes[k][blocks - 1], HASH_LEN) != 0) {
            return false;
        }
    }
    return true;
}

/* Population count, for the number of nodes a frontier emits (n - popcount(n)). */
static unsigned
popcount64(uint64_t x)
{
    unsigned c = 0;

    for (; x != 0; x &= x - 1)
        c++;
    return c;
}

/* ---- JSON helpers -------------------------------------------------------------------------- */

/* Loads merkle/NAME from the vector directory. */
static json_t *
load_vectors(const char *name, size_t flags)
{
    char path[1024];
    json_error_t err;
    json_t *root;

    snprintf(path, sizeof path, "%s/merkle/%s", vector_dir, name);
    root = json_load_file(path, flags, &err);
    if (root == NULL) {
        printf("FAIL cannot load %s: %s (line %d)\n", path, err.text, err.line);
        failed++;
    }
    return root;
}

/* Decodes a hex string of any even length into buf; returns the byte count or -1. */
static long
hex_bytes(const json_t *v, uint8_t *buf, size_t cap)
{
    const char *s = json_string_value(v);
    size_t len;

    if (s == NULL)
        return -1;
    len = strlen(s);
    if (len % 2 != 0 || len / 2 > cap || !dfd_hex_decode(s, len, buf, len / 2))
        return -1;
    return (long)(len / 2);
}

/* A hash given as exactly 64 hex digits. */
static bool
hex_hash(const json_t *v, dfd_hash out)
{
    return hex_bytes(v, out, HASH_LEN) == HASH_LEN;
}

/*
 * A probe's hash. Some probes give a leaf or root of another length ("WrongLeaf", "", "don't
 * care 2"); dfd_hash cannot even hold such a value, so it becomes a 32-byte stand-in derived from
 * its bytes: equal odd values stay equal (the source compares roots byte for byte, and one probe
 * expects two equal 12-byte roots to be accepted) and none equals a real hash of the tree.
 * *exact (if not NULL) tells whether the value really was 32 bytes.
 */
static bool
probe_hash(const json_t *v, dfd_hash out, bool *exact)
{
    static const char tag[] = "test_merkle stand-in for a non-32-byte value:";
    uint8_t buf[sizeof tag + 256];
    long n = hex_bytes(v, buf + sizeof tag, 256);

    if (n < 0)
        return false;
    if (exact != NULL)
        *exact = n == HASH_LEN;
    if (n == HASH_LEN) {
        memcpy(out, buf + sizeof tag, HASH_LEN);
        return true;
    }
    memcpy(buf, tag, sizeof tag);
    sha256_or_die(buf, sizeof tag + (size_t)n, out);
    return true;
}

/* A proof array of hex hashes (probe conventions when `probe`); returns false if unreadable. */
static bool
json_proof(const json_t *arr, bool probe, dfd_hash proof[DFD_MERKLE_MAX_PROOF], size_t *n)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr) || json_array_size(arr) > DFD_MERKLE_MAX_PROOF)
        return false;
    json_array_foreach(arr, i, v)
    {
        if (!(probe ? probe_hash(v, proof[i], NULL) : hex_hash(v, proof[i])))
            return false;
    }
    *n = json_array_size(arr);
    return true;
}

/*
 * A size or index. The probe file is read with JSON_DECODE_INT_AS_REAL because one probe holds
 * 18446744073709551615 (the source's uint64 0 - 1), which jansson's signed integers refuse.
 * Doubles are exact below 2^53, and that value reads as exactly 2^64, so it is mapped back;
 * nothing else in the files lies in between.
 */
static bool
json_u64(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return false;
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);

        if (d >= 0 && d < 9007199254740992.0 && (double)(uint64_t)d == d) {
            *out = (uint64_t)d;
            return true;
        }
        if (d == 18446744073709551616.0) {
            *out = UINT64_MAX;
            return true;
        }
    }
    return false;
}

/* ---- published vectors --------------------------------------------------------------------- */

/* The hasher vectors: empty root and leaf hashes. */
static void
test_hasher(const json_t *ref)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(ref, "hasher_vectors"), i, v)
    {
        dfd_hash want, got;
        uint8_t leaf[64];
        long leaf_len;

        if (!hex_hash(json_object_get(v, "want"), want)) {
            CHECK(false, "hasher vector %zu: unreadable", i);
            continue;
        }
        if (json_object_get(v, "left_hex") != NULL) {
            /*
             * HashChildren("N123", "N456") hashes 4-byte inputs; dfd_merkle_node_hash takes
             * 32-byte hashes only, so this vector cannot be expressed. The node hash is checked
             * against the reference tree's node hashes instead (test_reference_tree).
             */
            continue;
        }
        if (json_object_get(v, "leaf_hex") != NULL) {
            leaf_len = hex_bytes(json_object_get(v, "leaf_hex"), leaf, sizeof leaf);
            CHECK(leaf_len >= 0 && dfd_merkle_leaf_hash(leaf, (size_t)leaf_len, got) &&
                      memcmp(got, want, HASH_LEN) == 0,
                  "hasher vector %zu: leaf hash", i);
        } else {
            CHECK(dfd_merkle_empty_root(got) && memcmp(got, want, HASH_LEN) == 0,
                  "hasher vector %zu: empty root", i);
        }
    }
}

/*
 * The 8-leaf reference tree: leaf hashes, node hashes, and the root of every size 0..8 through
 * dfd_merkle_root, the frontier and the model. Leaves the tree loaded for the proof tests.
 */
static void
test_reference_tree(const json_t *ref)
{
    dfd_hash leaf_hashes[8];
    const json_t *levels = json_object_get(ref, "node_hashes_by_level");
    const json_t *roots = json_object_get(ref, "roots_by_tree_size");
    dfd_merkle_frontier f;
    emit_check ec = {&tree, 0, 0, false};

    CHECK(json_array_size(json_object_get(ref, "leaves_hex")) == 8 && json_array_size(roots) == 9 &&
              json_array_size(levels) == 4,
          "reference tree: unexpected shape");
    for (size_t i = 0; i < 8; i++) {
        uint8_t leaf[64];
        long len = hex_bytes(json_array_get(json_object_get(ref, "leaves_hex"), i), leaf, 64);
        dfd_hash want, got, model;

        CHECK(len >= 0 && hex_hash(json_array_get(json_object_get(ref, "leaf_hashes"), i), want),
              "reference leaf %zu unreadable", i);
        if (len < 0)
            continue;
        model_leaf(leaf, (size_t)len, model);
        CHECK(dfd_merkle_leaf_hash(leaf, (size_t)len, got) && memcmp(got, want, HASH_LEN) == 0 &&
                  memcmp(model, want, HASH_LEN) == 0,
              "reference leaf hash %zu", i);
        memcpy(leaf_hashes[i], want, HASH_LEN);
    }
    tree_build(&tree, leaf_hashes, 8);

    for (size_t level = 0; level < 4; level++) {
        const json_t *row = json_array_get(levels, level);

        CHECK(json_array_size(row) == (8u >> level), "reference level %zu: size", level);
        for (size_t i = 0; i < json_array_size(row) && i < (8u >> level); i++) {
            dfd_hash want, got;

            CHECK(hex_hash(json_array_get(row, i), want) &&
                      memcmp(tree.nodes[level][i], want, HASH_LEN) == 0,
                  "reference node level %zu index %zu (model)", level, i);
            if (level > 0)
                CHECK(dfd_merkle_node_hash(tree.nodes[level - 1][2 * i],
                                           tree.nodes[level - 1][2 * i + 1], got) &&
                          memcmp(got, want, HASH_LEN) == 0,
                      "reference node level %zu index %zu (dfd_merkle_node_hash)", level, i);
        }
    }

    dfd_merkle_frontier_init(&f);
    for (uint64_t size = 0; size <= 8; size++) {
        dfd_hash want, got, model;

        if (!hex_hash(json_array_get(roots, size), want)) {
            CHECK(false, "reference root %lu unreadable", (unsigned long)size);
            continue;
        }
        tree.size = size;
        tree.calls = 0;
        CHECK(dfd_merkle_root(size, tree_node, &tree, got) && memcmp(got, want, HASH_LEN) == 0,
              "reference root of size %lu via dfd_merkle_root", (unsigned long)size);
        CHECK(tree.calls == popcount64(size), "reference root of size %lu: %lu callbacks",
              (unsigned long)size, tree.calls);
        model_mth(leaf_hashes, size, model);
        CHECK(memcmp(model, want, HASH_LEN) == 0, "reference root of size %lu via the model",
              (unsigned long)size);
        {
            /* packed and unpacked, the frontier is the same tree; a wrong length is refused */
            uint8_t packed[DFD_MERKLE_FRONTIER_MAX];
            size_t plen = dfd_merkle_frontier_pack(&f, packed);
            dfd_merkle_frontier back;
            dfd_hash a, b;

            CHECK(dfd_merkle_frontier_unpack(size, packed, plen, &back) &&
                      dfd_merkle_frontier_root(&back, a) && dfd_merkle_frontier_root(&f, b) &&
                      memcmp(a, b, sizeof a) == 0 && back.size == size,
                  "frontier of %lu leaves survives pack and unpack", (unsigned long)size);
            CHECK(!dfd_merkle_frontier_unpack(size + 1, packed, plen, &back) ||
                      (size_t)__builtin_popcountll(size + 1) == (size_t)__builtin_popcountll(size),
                  "unpack refuses a length that does not fit size %lu", (unsigned long)size + 1);
            CHECK(!dfd_merkle_frontier_unpack(size, packed, plen + DFD_MERKLE_HASH_LEN, &back),
                  "unpack refuses one node too many at size %lu", (unsigned long)size);
        }
        CHECK(f.size == size && dfd_merkle_frontier_root(&f, got) &&
                  memcmp(got, want, HASH_LEN) == 0,
              "reference root of size %lu via the frontier", (unsigned long)size);
        if (size < 8)
            CHECK(dfd_merkle_frontier_append(&f, leaf_hashes[size], check_emit, &ec),
                  "reference frontier append %lu", (unsigned long)size);
    }
    CHECK(ec.emitted == 7 && ec.wrong == 0, "reference frontier emitted %lu nodes, %lu wrong",
          ec.emitted, ec.wrong);
    CHECK(tree.out_of_range == 0, "reference roots asked for %lu nodes outside the tree",
          tree.out_of_range);
}

/* The reference inclusion and consistency proofs, generated and verified. */
static void
test_reference_proofs(const json_t *ref)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(ref, "inclusion_proofs"), i, v)
    {
        dfd_hash want[DFD_MERKLE_MAX_PROOF], got[DFD_MERKLE_MAX_PROOF], leaf, root;
        size_t want_n = 0, got_n = 0;
        uint64_t index, size;

        if (!json_u64(json_object_get(v, "leaf_index"), &index) ||
            !json_u64(json_object_get(v, "tree_size"), &size) || size > 8 ||
            !json_proof(json_object_get(v, "proof"), false, want, &want_n) ||
            !hex_hash(json_object_get(v, "leaf_hash"), leaf) ||
            !hex_hash(json_object_get(v, "root"), root)) {
            CHECK(false, "reference inclusion proof %zu unreadable", i);
            continue;
        }
        tree.size = size;
        CHECK(dfd_merkle_inclusion_proof(index, size, tree_node, &tree, got, &got_n) &&
                  got_n == want_n && memcmp(got, want, want_n * sizeof(dfd_hash)) == 0,
              "reference inclusion proof %zu (leaf %lu of %lu) generated", i, (unsigned long)index,
              (unsigned long)size);
        CHECK(dfd_merkle_verify_inclusion(index, size, leaf, (const dfd_hash *)want, want_n, root),
              "reference inclusion proof %zu verified", i);
    }

    json_array_foreach(json_object_get(ref, "consistency_proofs"), i, v)
    {
        dfd_hash want[DFD_MERKLE_MAX_PROOF], got[DFD_MERKLE_MAX_PROOF], root1, root2;
        size_t want_n = 0, got_n = 0;
        uint64_t size1, size2;

        if (!json_u64(json_object_get(v, "size1"), &size1) ||
            !json_u64(json_object_get(v, "size2"), &size2) || size2 > 8 ||
            !json_proof(json_object_get(v, "proof"), false, want, &want_n) ||
            !hex_hash(json_object_get(v, "root1"), root1) ||
            !hex_hash(json_object_get(v, "root2"), root2)) {
            CHECK(false, "reference consistency proof %zu unreadable", i);
            continue;
        }
        tree.size = size2;
        CHECK(dfd_merkle_consistency_proof(size1, size2, tree_node, &tree, got, &got_n) &&
                  got_n == want_n && memcmp(got, want, want_n * sizeof(dfd_hash)) == 0,
              "reference consistency proof %zu (%lu -> %lu) generated", i, (unsigned long)size1,
              (unsigned long)size2);
        CHECK(dfd_merkle_verify_consistency(size1, size2, root1, root2, (const dfd_hash *)want,
                                            want_n),
              "reference consistency proof %zu verified", i);
    }
    CHECK(tree.out_of_range == 0, "reference proofs asked for %lu nodes outside the tree",
          tree.out_of_range);
}

/* The transparency-dev probes: each verifier must accept exactly the probes without want_error. */
static void
test_probes(void)
{
    json_t *probes = load_vectors("transparency-dev-proof-probes.json", JSON_DECODE_INT_AS_REAL);
    size_t i, count = 0;
    json_t *v;

    if (probes == NULL)
        return;
    json_array_foreach(json_object_get(probes, "inclusion"), i, v)
    {
        dfd_hash proof[DFD_MERKLE_MAX_PROOF], leaf, root;
        size_t n = 0;
        uint64_t index, size;
        const char *file = json_string_value(json_object_get(v, "file"));
        bool want_error = json_is_true(json_object_get(v, "want_error"));
        bool leaf_exact, accepted;

        if (!json_u64(json_object_get(v, "leaf_index"), &index) ||
            !json_u64(json_object_get(v, "tree_size"), &size) ||
            !json_proof(json_object_get(v, "proof"), true, proof, &n) ||
            !probe_hash(json_object_get(v, "leaf_hash"), leaf, &leaf_exact) ||
            !probe_hash(json_object_get(v, "root"), root, NULL)) {
            CHECK(false, "probe %s unreadable", file ? file : "?");
            continue;
        }
        /*
         * The source refuses a leaf hash that is not 32 bytes before verifying; with dfd_hash
         * that refusal belongs to whoever turns input bytes into a dfd_hash (as here). The
         * verifier still runs on the stand-in.
         */
        accepted = dfd_merkle_verify_inclusion(index, size, leaf, (const dfd_hash *)proof, n, root);
        CHECK((leaf_exact && accepted) == !want_error, "probe %s: want_error %d", file ? file : "?",
              want_error);
        count++;
    }
    json_array_foreach(json_object_get(probes, "consistency"), i, v)
    {
        dfd_hash proof[DFD_MERKLE_MAX_PROOF], root1, root2;
        size_t n = 0;
        uint64_t size1, size2;
        const char *file = json_string_value(json_object_get(v, "file"));
        bool want_error = json_is_true(json_object_get(v, "want_error"));

        if (!json_u64(json_object_get(v, "size1"), &size1) ||
            !json_u64(json_object_get(v, "size2"), &size2) ||
            !json_proof(json_object_get(v, "proof"), true, proof, &n) ||
            !probe_hash(json_object_get(v, "root1"), root1, NULL) ||
            !probe_hash(json_object_get(v, "root2"), root2, NULL)) {
            CHECK(false, "probe %s unreadable", file ? file : "?");
            continue;
        }
        CHECK(dfd_merkle_verify_consistency(size1, size2, root1, root2, (const dfd_hash *)proof,
                                            n) == !want_error,
              "probe %s: want_error %d", file ? file : "?", want_error);
        count++;
    }
    CHECK(count == 196, "ran %zu probes, expected 196", count);
    json_decref(probes);
}

/* ---- self-consistency sweep ----------------------------------------------------------------- */

/* Fills leaf hashes of a few distinct bytes each. */
static void
make_leaves(dfd_hash *leaves, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t data[4] = {'l', (uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i * 7)};

        model_leaf(data, sizeof data, leaves[i]);
    }
}

/* Flips each byte of each proof hash in turn; returns how many flips still verified. */
static unsigned
inclusion_flips_accepted(uint64_t index, uint64_t size, const dfd_hash leaf, dfd_hash *proof,
                         size_t n, const dfd_hash root)
{
    unsigned accepted = 0;

    for (size_t e = 0; e < n; e++)
        for (size_t b = 0; b < HASH_LEN; b++) {
            proof[e][b] ^= 0x01;
            accepted +=
                dfd_merkle_verify_inclusion(index, size, leaf, (const dfd_hash *)proof, n, root);
            proof[e][b] ^= 0x01;
        }
    return accepted;
}

/* The same for consistency proofs. */
static unsigned
consistency_flips_accepted(uint64_t old_size, uint64_t new_size, const dfd_hash old_root,
                           const dfd_hash new_root, dfd_hash *proof, size_t n)
{
    unsigned accepted = 0;

    for (size_t e = 0; e < n; e++)
        for (size_t b = 0; b < HASH_LEN; b++) {
            proof[e][b] ^= 0x01;
            accepted += dfd_merkle_verify_consistency(old_size, new_size, old_root, new_root,
                                                      (const dfd_hash *)proof, n);
            proof[e][b] ^= 0x01;
        }
    return accepted;
}

/* A copy of h with one bit flipped. */
static void
flipped(const dfd_hash h, size_t byte, dfd_hash out)
{
    memcpy(out, h, HASH_LEN);
    out[byte % HASH_LEN] ^= 0x80;
}

#define SWEEP_MAX 64

/*
 * Every inclusion proof in trees of 1..64 leaves: generated equal to the model's PATH, verified,
 * and rejected after any single-byte change, with another index, or with another size.
 */
static void
sweep_inclusion(const dfd_hash *leaves, dfd_hash roots[SWEEP_MAX + 1], uint64_t size)
{
    for (uint64_t m = 0; m < size; m++) {
        dfd_hash proof[DFD_MERKLE_MAX_PROOF + 1], model[DFD_MERKLE_MAX_PROOF], bad;
        size_t n = 0, model_n;
        unsigned accepted = 0;
        const dfd_hash *cproof = (const dfd_hash *)proof;

        tree.size = size;
        tree.calls = 0;
        if (!dfd_merkle_inclusion_proof(m, size, tree_node, &tree, proof, &n)) {
            CHECK(false, "inclusion proof of %lu in %lu not generated", (unsigned long)m,
                  (unsigned long)size);
            continue;
        }
        model_n = model_path(m, leaves, size, model);
        CHECK(n == model_n && memcmp(proof, model, n * sizeof(dfd_hash)) == 0,
              "inclusion proof of %lu in %lu differs from the model", (unsigned long)m,
              (unsigned long)size);
        /* one callback per hash, except the right-edge one: one per set bit of its range */
        CHECK(tree.calls + 1 <= n + popcount64(size),
              "inclusion proof of %lu in %lu took %lu callbacks", (unsigned long)m,
              (unsigned long)size, tree.calls);
        CHECK(dfd_merkle_verify_inclusion(m, size, leaves[m], cproof, n, roots[size]),
              "inclusion proof of %lu in %lu rejected", (unsigned long)m, (unsigned long)size);

        CHECK(inclusion_flips_accepted(m, size, leaves[m], proof, n, roots[size]) == 0,
              "inclusion proof of %lu in %lu accepted with a changed byte", (unsigned long)m,
              (unsigned long)size);
        flipped(leaves[m], m, bad);
        accepted += dfd_merkle_verify_inclusion(m, size, bad, cproof, n, roots[size]);
        flipped(roots[size], m, bad);
        accepted += dfd_merkle_verify_inclusion(m, size, leaves[m], cproof, n, bad);
        CHECK(accepted == 0, "inclusion proof of %lu in %lu accepted a changed leaf or root",
              (unsigned long)m, (unsigned long)size);

        /* the proof of m can prove no other position: the left/right pattern pins the index */
        accepted = 0;
        for (uint64_t j = 0; j < size + 2; j++)
            if (j != m)
                accepted += dfd_merkle_verify_inclusion(j, size, leaves[m], cproof, n, roots[size]);
        accepted +=
            dfd_merkle_verify_inclusion(UINT64_MAX, size, leaves[m], cproof, n, roots[size]);
        CHECK(accepted == 0, "inclusion proof of %lu in %lu accepted at another index",
              (unsigned long)m, (unsigned long)size);

        /*
         * Another size with that size's root must fail: the proof would have to be the other
         * tree's PATH. With this tree's root it may legitimately pass when both sizes give the
         * same path shape (leaf 0 of 3 and of 4 both hash as ((l0, p0), p1)), so there only a
         * different proof length is required to fail.
         */
        accepted = 0;
        for (uint64_t other = 0; other <= SWEEP_MAX + 1; other++) {
            if (other == size)
                continue;
            if (other <= SWEEP_MAX)
                accepted +=
                    dfd_merkle_verify_inclusion(m, other, leaves[m], cproof, n, roots[other]);
            if (other <= m || model_path_len(m, other) != n)
                accepted +=
                    dfd_merkle_verify_inclusion(m, other, leaves[m], cproof, n, roots[size]);
        }
        CHECK(accepted == 0, "inclusion proof of %lu in %lu accepted with another size",
              (unsigned long)m, (unsigned long)size);

        /* wrong lengths: one hash short, one extra (repeated, or the root), one in front */
        accepted = 0;
        if (n > 0)
            accepted += dfd_merkle_verify_inclusion(m, size, leaves[m], cproof, n - 1, roots[size]);
        memcpy(proof[n], n > 0 ? proof[n - 1] : roots[size], HASH_LEN);
        accepted += dfd_merkle_verify_inclusion(m, size, leaves[m], cproof, n + 1, roots[size]);
        memcpy(proof[n], roots[size], HASH_LEN);
        accepted += dfd_merkle_verify_inclusion(m, size, leaves[m], cproof, n + 1, roots[size]);
        /*
         * The forgery RFC 9162's "sn is 0" test exists for: one more hash p on top, with the
         * root of (p, real root), which is what the extra step would compute.
         */
        memcpy(proof[n], leaves[0], HASH_LEN);
        model_node(leaves[0], roots[size], bad);
        accepted += dfd_merkle_verify_inclusion(m, size, leaves[m], cproof, n + 1, bad);
        memmove(proof + 1, proof, n * sizeof(dfd_hash));
        memcpy(proof[0], leaves[m], HASH_LEN);
        accepted += dfd_merkle_verify_inclusion(m, size, leaves[m], cproof, n + 1, roots[size]);
        CHECK(accepted == 0, "inclusion proof of %lu in %lu accepted with a wrong length",
              (unsigned long)m, (unsigned long)size);
    }
}

/* Every consistency proof into a tree of 1..64 leaves, checked like the inclusion proofs. */
static void
sweep_consistency(const dfd_hash *leaves, dfd_hash roots[SWEEP_MAX + 1], uint64_t size)
{
    for (uint64_t old = 1; old <= size; old++) {
        dfd_hash proof[DFD_MERKLE_MAX_PROOF + 1], model[DFD_MERKLE_MAX_PROOF], bad;
        size_t n = 0, model_n;
        unsigned accepted = 0;
        const dfd_hash *cproof = (const dfd_hash *)proof;

        tree.size = size;
        tree.calls = 0;
        if (!dfd_merkle_consistency_proof(old, size, tree_node, &tree, proof, &n)) {
            CHECK(false, "consistency proof %lu -> %lu not generated", (unsigned long)old,
                  (unsigned long)size);
            continue;
        }
        model_n = model_subproof(old, leaves, size, true, model);
        CHECK(n == model_n && memcmp(proof, model, n * sizeof(dfd_hash)) == 0,
              "consistency proof %lu -> %lu differs from the model", (unsigned long)old,
              (unsigned long)size);
        CHECK(tree.calls <= n + popcount64(size), "consistency proof %lu -> %lu took %lu callbacks",
              (unsigned long)old, (unsigned long)size, tree.calls);
        CHECK(dfd_merkle_verify_consistency(old, size, roots[old], roots[size], cproof, n),
              "consistency proof %lu -> %lu rejected", (unsigned long)old, (unsigned long)size);

        CHECK(consistency_flips_accepted(old, size, roots[old], roots[size], proof, n) == 0,
              "consistency proof %lu -> %lu accepted with a changed byte", (unsigned long)old,
              (unsigned long)size);
        flipped(roots[old], old, bad);
        accepted += dfd_merkle_verify_consistency(old, size, bad, roots[size], cproof, n);
        flipped(roots[size], old, bad);
        accepted += dfd_merkle_verify_consistency(old, size, roots[old], bad, cproof, n);
        if (old != size)
            accepted +=
                dfd_merkle_verify_consistency(old, size, roots[size], roots[old], cproof, n);
        CHECK(accepted == 0, "consistency proof %lu -> %lu accepted changed or swapped roots",
              (unsigned long)old, (unsigned long)size);

        /* other sizes, each with its own root: the proof belongs to this pair only */
        accepted = 0;
        for (uint64_t other = 0; other <= SWEEP_MAX; other++) {
            if (other != old)
                accepted += dfd_merkle_verify_consistency(other, size, roots[other], roots[size],
                                                          cproof, n);
            if (other != size)
                accepted +=
                    dfd_merkle_verify_consistency(old, other, roots[old], roots[other], cproof, n);
        }
        CHECK(accepted == 0, "consistency proof %lu -> %lu accepted with another size",
              (unsigned long)old, (unsigned long)size);

        accepted = 0;
        if (n > 0)
            accepted +=
                dfd_merkle_verify_consistency(old, size, roots[old], roots[size], cproof, n - 1);
        memcpy(proof[n], n > 0 ? proof[n - 1] : roots[size], HASH_LEN);
        accepted +=
            dfd_merkle_verify_consistency(old, size, roots[old], roots[size], cproof, n + 1);
        memcpy(proof[n], roots[old], HASH_LEN);
        accepted +=
            dfd_merkle_verify_consistency(old, size, roots[old], roots[size], cproof, n + 1);
        /* one more hash p on top, with both roots combined with p as the extra step would */
        {
            dfd_hash old_bad;

            memcpy(proof[n], leaves[0], HASH_LEN);
            model_node(leaves[0], roots[old], old_bad);
            model_node(leaves[0], roots[size], bad);
            accepted += dfd_merkle_verify_consistency(old, size, old_bad, bad, cproof, n + 1);
            accepted += dfd_merkle_verify_consistency(old, size, roots[old], bad, cproof, n + 1);
        }
        memmove(proof + 1, proof, n * sizeof(dfd_hash));
        memcpy(proof[0], roots[old], HASH_LEN);
        accepted +=
            dfd_merkle_verify_consistency(old, size, roots[old], roots[size], cproof, n + 1);
        CHECK(accepted == 0, "consistency proof %lu -> %lu accepted with a wrong length",
              (unsigned long)old, (unsigned long)size);
    }
}

/* Trees of 1..64 leaves: roots three ways, then every proof (above). */
static void
test_sweep(void)
{
    dfd_hash leaves[SWEEP_MAX], roots[SWEEP_MAX + 1];
    dfd_merkle_frontier f;
    emit_check ec = {&tree, 0, 0, false};

    make_leaves(leaves, SWEEP_MAX);
    tree_build(&tree, leaves, SWEEP_MAX);
    for (uint64_t size = 0; size <= SWEEP_MAX; size++)
        model_mth(leaves, size, roots[size]);

    dfd_merkle_frontier_init(&f);
    for (uint64_t size = 1; size <= SWEEP_MAX; size++) {
        dfd_hash got;

        tree.size = size;
        CHECK(dfd_merkle_root(size, tree_node, &tree, got) &&
                  memcmp(got, roots[size], HASH_LEN) == 0,
              "sweep root of %lu via dfd_merkle_root", (unsigned long)size);
        CHECK(dfd_merkle_frontier_append(&f, leaves[size - 1], check_emit, &ec) &&
                  dfd_merkle_frontier_root(&f, got) && memcmp(got, roots[size], HASH_LEN) == 0,
              "sweep root of %lu via the frontier", (unsigned long)size);
        CHECK(ec.emitted == size - popcount64(size) && ec.wrong == 0,
              "sweep frontier at %lu emitted %lu nodes, %lu wrong", (unsigned long)size, ec.emitted,
              ec.wrong);
        CHECK(frontier_matches(&f, &tree), "sweep frontier at %lu holds wrong nodes",
              (unsigned long)size);
        sweep_inclusion(leaves, roots, size);
        sweep_consistency(leaves, roots, size);
    }
    CHECK(tree.out_of_range == 0, "sweep asked for %lu nodes outside the tree", tree.out_of_range);
}

/*
 * Larger trees (up to 2048 leaves), where the model is too slow for every proof: all proofs are
 * generated and verified, with lengths from the model, and the frontier emits every node.
 */
static void
test_larger_trees(void)
{
    static dfd_hash leaves[TREE_MAX_LEAVES];
    static const uint64_t sizes[] = {127, 128, 129, 1000, 1023, 1024, 1025, 2047, 2048};
    dfd_merkle_frontier f;
    emit_check ec = {&tree, 0, 0, false};
    size_t next_size = 0;

    make_leaves(leaves, TREE_MAX_LEAVES);
    tree_build(&tree, leaves, TREE_MAX_LEAVES);
    dfd_merkle_frontier_init(&f);
    for (uint64_t size = 1; size <= TREE_MAX_LEAVES; size++) {
        dfd_hash root, got, proof[DFD_MERKLE_MAX_PROOF];
        size_t n;
        unsigned long bad_inclusion = 0, bad_consistency = 0;

        if (!dfd_merkle_frontier_append(&f, leaves[size - 1], check_emit, &ec)) {
            CHECK(false, "larger tree: append %lu failed", (unsigned long)size);
            return;
        }
        if (next_size >= sizeof sizes / sizeof sizes[0] || sizes[next_size] != size)
            continue;
        next_size++;

        tree.size = size;
        model_mth(leaves, size, root);
        CHECK(dfd_merkle_root(size, tree_node, &tree, got) && memcmp(got, root, HASH_LEN) == 0,
              "larger tree root of %lu via dfd_merkle_root", (unsigned long)size);
        CHECK(dfd_merkle_frontier_root(&f, got) && memcmp(got, root, HASH_LEN) == 0,
              "larger tree root of %lu via the frontier", (unsigned long)size);

        for (uint64_t m = 0; m < size; m++)
            if (!dfd_merkle_inclusion_proof(m, size, tree_node, &tree, proof, &n) ||
                n != model_path_len(m, size) ||
                !dfd_merkle_verify_inclusion(m, size, leaves[m], (const dfd_hash *)proof, n, root))
                bad_inclusion++;
        CHECK(bad_inclusion == 0, "larger tree of %lu: %lu bad inclusion proofs",
              (unsigned long)size, bad_inclusion);

        for (uint64_t old = 1; old <= size; old++) {
            dfd_hash old_root;

            tree.size = old;
            if (!dfd_merkle_root(old, tree_node, &tree, old_root)) {
                bad_consistency++;
                continue;
            }
            tree.size = size;
            if (!dfd_merkle_consistency_proof(old, size, tree_node, &tree, proof, &n) ||
                n != model_subproof_len(old, size, true) ||
                !dfd_merkle_verify_consistency(old, size, old_root, root, (const dfd_hash *)proof,
                                               n))
                bad_consistency++;
        }
        CHECK(bad_consistency == 0, "larger tree of %lu: %lu bad consistency proofs",
              (unsigned long)size, bad_consistency);
    }
    CHECK(ec.emitted == TREE_MAX_LEAVES - 1 && ec.wrong == 0,
          "larger tree frontier emitted %lu nodes, %lu wrong", ec.emitted, ec.wrong);
    CHECK(tree.out_of_range == 0, "larger trees asked for %lu nodes outside the tree",
          tree.out_of_range);
}

/* ---- huge trees ---------------------------------------------------------------------------- */

/*
 * A tree of any size up to 2^64 - 1 whose leaves are all the same: its perfect subtree at level
 * L is the same for every index, so a real (consistent) tree needs only 64 hashes.
 */
typedef struct uniform_tree {
    dfd_hash level[64];
    uint64_t size;
    unsigned long calls;
    unsigned long out_of_range;
} uniform_tree;

/* The dfd_merkle_node_fn over a uniform_tree. */
static bool
uniform_node(void *ctx, unsigned level, uint64_t index, dfd_hash out)
{
    uniform_tree *u = ctx;

    u->calls++;
    if (level >= 64 || index >= (u->size >> level)) {
        u->out_of_range++;
        return false;
    }
    memcpy(out, u->level[level], HASH_LEN);
    return true;
}

/* MTH of a uniform tree, by the RFC's recursion: a power of two is one level, else split. */
static void
uniform_mth(const uniform_tree *u, uint64_t n, dfd_hash out)
{
    dfd_hash right;
    uint64_t k;
    unsigned level = 0;

    if ((n & (n - 1)) == 0) {
        while ((UINT64_C(1) << level) != n)
            level++;
        memcpy(out, u->level[level], HASH_LEN);
        return;
    }
    k = model_split(n);
    while ((UINT64_C(1) << level) != k)
        level++;
    uniform_mth(u, n - k, right);
    model_node(u->level[level], right, out);
}

/* The frontier of a uniform tree, set up directly from the binary form of its size. */
static void
uniform_frontier(const uniform_tree *u, uint64_t size, dfd_merkle_frontier *f)
{
    memset(f, 0, sizeof *f);
    f->size = size;
    for (unsigned k = 0; k < 64; k++)
        if ((size >> k) & 1)
            memcpy(f->nodes[k], u->level[k], HASH_LEN);
}

/* Proofs at the extremes of the 64-bit range: lengths stay within DFD_MERKLE_MAX_PROOF. */
static void
test_huge_trees(void)
{
    static const uint64_t sizes[] = {UINT64_MAX,
                                     UINT64_MAX - 1,
                                     UINT64_C(1) << 63,
                                     (UINT64_C(1) << 63) + 1,
                                     (UINT64_C(1) << 40) + 12345,
                                     1000000};
    uniform_tree u;
    dfd_merkle_frontier f;
    uint8_t leaf[1] = {'u'};

    memset(&u, 0, sizeof u);
    model_leaf(leaf, 1, u.level[0]);
    for (unsigned k = 1; k < 64; k++)
        model_node(u.level[k - 1], u.level[k - 1], u.level[k]);

    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t size = sizes[s];
        const uint64_t indexes[] = {0, 1, size / 2, size / 2 + 1, size - 2, size - 1};
        const uint64_t olds[] = {1, 2, 3, size / 2, size / 2 + 1, (size >> 1) | 1, size - 1, size};
        dfd_hash root, got, proof[DFD_MERKLE_MAX_PROOF];
        size_t n;

        u.size = size;
        uniform_mth(&u, size, root);
        CHECK(dfd_merkle_root(size, uniform_node, &u, got) && memcmp(got, root, HASH_LEN) == 0,
              "huge tree root of %llu", (unsigned long long)size);
        uniform_frontier(&u, size, &f);
        CHECK(dfd_merkle_frontier_root(&f, got) && memcmp(got, root, HASH_LEN) == 0,
              "huge tree root of %llu via a frontier", (unsigned long long)size);
        for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
            u.calls = 0;
            CHECK(dfd_merkle_inclusion_proof(indexes[i], size, uniform_node, &u, proof, &n) &&
                      n <= 64 &&
                      dfd_merkle_verify_inclusion(indexes[i], size, u.level[0],
                                                  (const dfd_hash *)proof, n, root) &&
                      u.calls < 200,
                  "huge tree: inclusion of %llu in %llu (%zu hashes, %lu callbacks)",
                  (unsigned long long)indexes[i], (unsigned long long)size, n, u.calls);
        }
        for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
            dfd_hash old_root;

            uniform_mth(&u, olds[i], old_root);
            u.calls = 0;
            n = 0;
            CHECK(dfd_merkle_consistency_proof(olds[i], size, uniform_node, &u, proof, &n) &&
                      n <= 65 &&
                      dfd_merkle_verify_consistency(olds[i], size, old_root, root,
                                                    (const dfd_hash *)proof, n) &&
                      u.calls < 200,
                  "huge tree: consistency %llu -> %llu (%zu hashes, %lu callbacks)",
                  (unsigned long long)olds[i], (unsigned long long)size, n, u.calls);
        }
    }
    CHECK(u.out_of_range == 0, "huge trees asked for %lu nodes outside the tree", u.out_of_range);
}

/*
 * The cost the extension pays: callbacks per proof in a 1,000,000-leaf tree. The callback hands
 * out fake but deterministic hashes (SHA-256 of level and index); only the count matters here.
 */
typedef struct counting_source {
    uint64_t size;
    unsigned long calls;
    unsigned long out_of_range;
} counting_source;

/* The dfd_merkle_node_fn of counting_source. */
static bool
counting_node(void *ctx, unsigned level, uint64_t index, dfd_hash out)
{
    counting_source *c = ctx;
    uint8_t key[9];

    c->calls++;
    if (level >= 64 || index >= (c->size >> level)) {
        c->out_of_range++;
        return false;
    }
    key[0] = (uint8_t)level;
    for (int i = 0; i < 8; i++)
        key[1 + i] = (uint8_t)(index >> (8 * i));
    sha256_or_die(key, sizeof key, out);
    return true;
}

/* Callback budget of inclusion and consistency proofs for a million leaves. */
static void
test_callback_budget(void)
{
    counting_source c = {1000000, 0, 0};
    dfd_hash proof[DFD_MERKLE_MAX_PROOF], root;
    size_t n;
    unsigned long worst_inclusion = 0, worst_consistency = 0, bad = 0;

    for (uint64_t m = 0; m < c.size; m += (m < 64 || m > c.size - 64) ? 1 : 9973) {
        c.calls = 0;
        if (!dfd_merkle_inclusion_proof(m, c.size, counting_node, &c, proof, &n) ||
            n != model_path_len(m, c.size))
            bad++;
        if (c.calls > worst_inclusion)
            worst_inclusion = c.calls;
    }
    for (uint64_t old = 1; old <= c.size; old += (old < 64 || old > c.size - 64) ? 1 : 9973) {
        c.calls = 0;
        if (!dfd_merkle_consistency_proof(old, c.size, counting_node, &c, proof, &n) ||
            n != model_subproof_len(old, c.size, true))
            bad++;
        if (c.calls > worst_consistency)
            worst_consistency = c.calls;
    }
    c.calls = 0;
    CHECK(dfd_merkle_root(c.size, counting_node, &c, root) && c.calls == popcount64(c.size),
          "1M-leaf root took %lu callbacks", c.calls);
    CHECK(bad == 0 && c.out_of_range == 0, "1M-leaf proofs: %lu failed, %lu out of range", bad,
          c.out_of_range);
    CHECK(worst_inclusion < 200, "1M-leaf inclusion proof took %lu callbacks", worst_inclusion);
    CHECK(worst_consistency < 200, "1M-leaf consistency proof took %lu callbacks",
          worst_consistency);
    if (getenv("TEST_MERKLE_VERBOSE") != NULL)
        printf("1M-leaf tree: at most %lu callbacks per inclusion proof, %lu per consistency "
               "proof\n",
               worst_inclusion, worst_consistency);
}

/* ---- failures ------------------------------------------------------------------------------ */

/* A callback failing at any point must make the whole operation fail. */
static void
test_callback_failures(void)
{
    dfd_hash leaves[16], out, proof[DFD_MERKLE_MAX_PROOF];
    size_t n;

    make_leaves(leaves, 16);
    tree_build(&tree, leaves, 16);
    tree.size = 13;
    for (unsigned long at = 1; at <= 3; at++) {
        tree.fail_at = at;
        tree.calls = 0;
        CHECK(!dfd_merkle_root(13, tree_node, &tree, out), "root survived failing call %lu", at);
    }
    for (uint64_t m = 0; m < 13; m++) {
        unsigned long total;

        tree.fail_at = 0;
        tree.calls = 0;
        dfd_merkle_inclusion_proof(m, 13, tree_node, &tree, proof, &n);
        total = tree.calls;
        for (unsigned long at = 1; at <= total; at++) {
            tree.fail_at = at;
            tree.calls = 0;
            CHECK(!dfd_merkle_inclusion_proof(m, 13, tree_node, &tree, proof, &n),
                  "inclusion proof of %lu survived failing call %lu", (unsigned long)m, at);
        }
    }
    for (uint64_t old = 1; old <= 13; old++) {
        unsigned long total;

        tree.fail_at = 0;
        tree.calls = 0;
        dfd_merkle_consistency_proof(old, 13, tree_node, &tree, proof, &n);
        total = tree.calls;
        for (unsigned long at = 1; at <= total; at++) {
            tree.fail_at = at;
            tree.calls = 0;
            CHECK(!dfd_merkle_consistency_proof(old, 13, tree_node, &tree, proof, &n),
                  "consistency proof %lu -> 13 survived failing call %lu", (unsigned long)old, at);
        }
    }
    tree.fail_at = 0;
}

/* Arguments the functions must refuse. */
static void
test_bad_arguments(void)
{
    dfd_hash leaves[8], root, proof[DFD_MERKLE_MAX_PROOF + 1];
    size_t n = 0;

    make_leaves(leaves, 8);
    tree_build(&tree, leaves, 8);
    model_mth(leaves, 8, root);
    memset(proof, 0, sizeof proof);

    CHECK(!dfd_merkle_root(8, NULL, NULL, root), "root without a callback");
    CHECK(!dfd_merkle_root(8, tree_node, &tree, NULL), "root without an output");
    CHECK(!dfd_merkle_inclusion_proof(8, 8, tree_node, &tree, proof, &n), "inclusion index 8/8");
    CHECK(!dfd_merkle_inclusion_proof(0, 0, tree_node, &tree, proof, &n), "inclusion size 0");
    CHECK(!dfd_merkle_inclusion_proof(0, 8, NULL, NULL, proof, &n), "inclusion no callback");
    CHECK(!dfd_merkle_inclusion_proof(0, 8, tree_node, &tree, NULL, &n), "inclusion no output");
    CHECK(!dfd_merkle_inclusion_proof(0, 8, tree_node, &tree, proof, NULL), "inclusion no count");
    CHECK(!dfd_merkle_consistency_proof(0, 8, tree_node, &tree, proof, &n), "consistency from 0");
    CHECK(!dfd_merkle_consistency_proof(0, 0, tree_node, &tree, proof, &n), "consistency 0 -> 0");
    CHECK(!dfd_merkle_consistency_proof(5, 4, tree_node, &tree, proof, &n), "consistency 5 -> 4");
    CHECK(!dfd_merkle_consistency_proof(1, 8, NULL, NULL, proof, &n), "consistency no callback");
    CHECK(dfd_merkle_consistency_proof(8, 8, tree_node, &tree, proof, &n) && n == 0,
          "consistency 8 -> 8 is empty");
    /* a callback that serves a smaller tree than asked for: the generator must not succeed */
    tree.size = 4;
    CHECK(!dfd_merkle_inclusion_proof(0, 8, tree_node, &tree, proof, &n),
          "inclusion with missing nodes");
    tree.size = 8;

    CHECK(!dfd_merkle_verify_inclusion(0, 0, leaves[0], (const dfd_hash *)proof, 0, root),
          "verify inclusion in size 0");
    CHECK(!dfd_merkle_verify_inclusion(0, 8, leaves[0], NULL, 3, root), "verify NULL proof");
    CHECK(!dfd_merkle_verify_inclusion(0, 8, NULL, (const dfd_hash *)proof, 3, root),
          "verify NULL leaf");
    CHECK(!dfd_merkle_verify_inclusion(0, 8, leaves[0], (const dfd_hash *)proof, 3, NULL),
          "verify NULL root");
    CHECK(!dfd_merkle_verify_inclusion(0, 8, leaves[0], (const dfd_hash *)proof,
                                       DFD_MERKLE_MAX_PROOF + 1, root),
          "verify overlong proof");
    CHECK(!dfd_merkle_verify_inclusion(0, UINT64_MAX, leaves[0], (const dfd_hash *)proof,
                                       DFD_MERKLE_MAX_PROOF, root),
          "verify 128 zero hashes in a huge tree");
    CHECK(!dfd_merkle_verify_consistency(0, 0, root, root, (const dfd_hash *)proof, 0),
          "verify consistency 0 -> 0");
    CHECK(!dfd_merkle_verify_consistency(0, 8, root, root, (const dfd_hash *)proof, 0),
          "verify consistency 0 -> 8");
    CHECK(!dfd_merkle_verify_consistency(8, 4, root, root, (const dfd_hash *)proof, 0),
          "verify consistency 8 -> 4");
    CHECK(dfd_merkle_verify_consistency(8, 8, root, root, NULL, 0), "verify consistency 8 -> 8");
    CHECK(!dfd_merkle_verify_consistency(8, 8, root, root, (const dfd_hash *)proof, 1),
          "verify consistency 8 -> 8 with a hash");
    CHECK(!dfd_merkle_verify_consistency(4, 8, root, root, NULL, 1),
          "verify consistency NULL proof");
    CHECK(!dfd_merkle_verify_consistency(4, 8, NULL, root, (const dfd_hash *)proof, 1),
          "verify consistency NULL root");
    CHECK(!dfd_merkle_leaf_hash(NULL, 1, root), "leaf hash of NULL data");
    CHECK(!dfd_merkle_leaf_hash(NULL, 0, NULL), "leaf hash without output");
}

/* Leaf hashes of long data (the path that does not fit the stack buffer). */
static void
test_long_leaves(void)
{
    static uint8_t data[5000];

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    for (size_t len = 250; len <= sizeof data; len += len < 260 ? 1 : 1237) {
        dfd_hash got, want;

        model_leaf(data, len, want);
        CHECK(dfd_merkle_leaf_hash(data, len, got) && memcmp(got, want, HASH_LEN) == 0,
              "leaf hash of %zu bytes", len);
    }
}

/* A frontier refuses to overflow and is left unchanged by a failed emit. */
static void
test_frontier_failures(void)
{
    dfd_merkle_frontier f, before;
    dfd_hash leaves[8], got, want;
    emit_check ec = {&tree, 0, 0, true};

    make_leaves(leaves, 8);
    tree_build(&tree, leaves, 8);
    dfd_merkle_frontier_init(&f);
    for (int i = 0; i < 7; i++)
        dfd_merkle_frontier_append(&f, leaves[i], NULL, NULL);
    before = f;
    CHECK(!dfd_merkle_frontier_append(&f, leaves[7], check_emit, &ec) &&
              memcmp(&f, &before, sizeof f) == 0,
          "frontier changed by a failed emit");
    ec.fail = false;
    CHECK(dfd_merkle_frontier_append(&f, leaves[7], check_emit, &ec) && ec.emitted == 3 &&
              ec.wrong == 0,
          "frontier retry after a failed emit");
    model_mth(leaves, 8, want);
    CHECK(dfd_merkle_frontier_root(&f, got) && memcmp(got, want, HASH_LEN) == 0,
          "frontier root after the retry");
    CHECK(f.size == 8, "frontier size after the retry");

    memset(&f, 0, sizeof f);
    f.size = UINT64_MAX;
    before = f;
    CHECK(!dfd_merkle_frontier_append(&f, leaves[0], NULL, NULL) &&
              memcmp(&f, &before, sizeof f) == 0,
          "frontier of 2^64 - 1 leaves accepted another");
    f.size = UINT64_MAX - 1;
    CHECK(dfd_merkle_frontier_append(&f, leaves[0], NULL, NULL) && f.size == UINT64_MAX,
          "frontier append to 2^64 - 2 leaves");
    CHECK(!dfd_merkle_frontier_append(NULL, leaves[0], NULL, NULL), "append to NULL");
    CHECK(!dfd_merkle_frontier_root(NULL, got), "root of NULL");

    dfd_merkle_frontier_init(&f);
    CHECK(dfd_merkle_frontier_root(&f, got) && dfd_merkle_empty_root(want) &&
              memcmp(got, want, HASH_LEN) == 0,
          "empty frontier root");
}

int
main(int argc, char **argv)
{
    json_t *ref;

    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR\n", argv[0]);
        return 2;
    }
    vector_dir = argv[1];

    ref = load_vectors("rfc6962-reference-tree.json", 0);
    if (ref != NULL) {
        test_hasher(ref);
        test_reference_tree(ref);
        test_reference_proofs(ref);
        json_decref(ref);
    }
    test_probes();
    test_sweep();
    test_larger_trees();
    test_huge_trees();
    test_callback_budget();
    test_callback_failures();
    test_bad_arguments();
    test_long_leaves();
    test_frontier_failures();

    printf("merkle: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
