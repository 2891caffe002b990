/*
 * dfd_merkle.c: RFC 9162 section 2.1 Merkle trees (SHA-256, RFC 6962 hashing).
 *
 * Generators never see the leaves: they ask a dfd_merkle_node_fn for roots of perfect aligned
 * subtrees, which the extension answers from stored nodes. Every node of an RFC 9162 tree covers
 * a range [a, a + n) whose start is a multiple of the smallest power of two >= n, so any node is
 * either perfect or a right-edge run of perfect subtrees (one per set bit of n) that can be
 * folded here. A proof therefore costs O(log n) lookups and no rescans.
 *
 * The verifiers follow the RFC's bit-shifting algorithms (2.1.3.2, 2.1.4.2) and share nothing
 * with the generators except the two hash functions, so a bug in one is caught by the other.
 */
#include "dfd_merkle.h"

#include <string.h>

/* Domain separation of RFC 9162 section 2.1.1: a leaf can never be passed off as a node. */
#define LEAF_PREFIX 0x00
#define NODE_PREFIX 0x01

/* Leaves up to this size are hashed from a stack copy; the ledger's leaves are 32 bytes. */
#define LEAF_STACK_MAX 256

/* A tree of at most 2^64 - 1 leaves is at most 64 levels deep. */
#define MAX_DEPTH 64

/* Hashes a leaf: SHA-256(0x00 || data). */
bool
dfd_merkle_leaf_hash(const uint8_t *data, size_t len, dfd_hash out)
{
    uint8_t stack_buf[1 + LEAF_STACK_MAX];
    uint8_t *buf = stack_buf;
    bool ok;

    if (out == NULL || (data == NULL && len > 0))
        return false;
    if (len > LEAF_STACK_MAX) {
        /* rare: only callers hashing long leaves pay for an allocation */
        if (len > SIZE_MAX - 1)
            return false;
        buf = dfd_alloc(1 + len);
        if (buf == NULL)
            return false;
    }
    buf[0] = LEAF_PREFIX;
    if (len > 0)
        memcpy(buf + 1, data, len);
    ok = dfd_sha256(buf, 1 + len, out);
    if (buf != stack_buf)
        dfd_free(buf);
    return ok;
}

/* Hashes an interior node: SHA-256(0x01 || left || right). out may alias left or right. */
bool
dfd_merkle_node_hash(const dfd_hash left, const dfd_hash right, dfd_hash out)
{
    uint8_t buf[1 + 2 * DFD_MERKLE_HASH_LEN];

    if (left == NULL || right == NULL || out == NULL)
        return false;
    /* both inputs are copied before out is written, which is what makes aliasing safe */
    buf[0] = NODE_PREFIX;
    memcpy(buf + 1, left, DFD_MERKLE_HASH_LEN);
    memcpy(buf + 1 + DFD_MERKLE_HASH_LEN, right, DFD_MERKLE_HASH_LEN);
    return dfd_sha256(buf, sizeof buf, out);
}

/* The root of the tree with no leaves: SHA-256 of the empty string. */
bool
dfd_merkle_empty_root(dfd_hash out)
{
    if (out == NULL)
        return false;
    return dfd_sha256("", 0, out);
}

/*
 * The RFC's split point k (the largest power of two smaller than n) for n >= 2, and its level
 * (log2 k). Written as k < n - k instead of 2k < n so that it cannot overflow.
 */
static uint64_t
split_point(uint64_t n, unsigned *level)
{
    uint64_t k = 1;
    unsigned lvl = 0;

    while (lvl < MAX_DEPTH - 1 && k < n - k) {
        k <<= 1;
        lvl++;
    }
    *level = lvl;
    return k;
}

/*
 * Root of the leaves [start, start + count), count >= 1, where start is aligned as every node of
 * an RFC 9162 tree is. The range is a run of perfect subtrees, largest first, one per set bit of
 * count; MTH nests each one to the left of the rest, so the fold starts from the smallest (the
 * last) and costs one callback per set bit.
 */
static bool
range_root(dfd_merkle_node_fn fn, void *ctx, uint64_t start, uint64_t count, dfd_hash out)
{
    dfd_hash acc, part;
    bool have_acc = false;

    if (count == 0 || start > UINT64_MAX - count)
        return false;
    for (unsigned level = 0; level < MAX_DEPTH; level++) {
        uint64_t block = UINT64_C(1) << level;
        /* the larger blocks that precede this one; (block << 1) wraps to 0 at level 63 */
        uint64_t preceding = count & ~((block << 1) - 1);
        uint64_t first_leaf = start + preceding;

        if ((count & block) == 0)
            continue;
        /* a misaligned block is not a node of this tree: refuse rather than ask for it */
        if ((first_leaf & (block - 1)) != 0)
            return false;
        if (!fn(ctx, level, first_leaf >> level, part))
            return false;
        if (!have_acc) {
            memcpy(acc, part, DFD_MERKLE_HASH_LEN);
            have_acc = true;
        } else if (!dfd_merkle_node_hash(part, acc, acc)) {
            return false;
        }
    }
    memcpy(out, acc, DFD_MERKLE_HASH_LEN);
    return true;
}

/* Root of the first `size` leaves, from perfect subtrees only. */
bool
dfd_merkle_root(uint64_t size, dfd_merkle_node_fn fn, void *ctx, dfd_hash out)
{
    if (fn == NULL || out == NULL)
        return false;
    if (size == 0)
        return dfd_merkle_empty_root(out);
    return range_root(fn, ctx, 0, size, out);
}

/* Reverses hashes[0..n): generators walk top-down but proofs list the deepest hash first. */
static void
reverse_hashes(dfd_hash *hashes, size_t n)
{
    dfd_hash tmp;

    for (size_t i = 0; i < n / 2; i++) {
        memcpy(tmp, hashes[i], DFD_MERKLE_HASH_LEN);
        memcpy(hashes[i], hashes[n - 1 - i], DFD_MERKLE_HASH_LEN);
        memcpy(hashes[n - 1 - i], tmp, DFD_MERKLE_HASH_LEN);
    }
}

/*
 * PATH(m, D[n]) of RFC 9162 section 2.1.3.1, unrolled: descend from the root towards the leaf,
 * collecting the root of the half not taken. The left half is always perfect; the right half
 * is a right-edge range only while the walk is still on the tree's right edge.
 */
bool
dfd_merkle_inclusion_proof(uint64_t index, uint64_t size, dfd_merkle_node_fn fn, void *ctx,
                           dfd_hash proof[DFD_MERKLE_MAX_PROOF], size_t *n)
{
    uint64_t lo = 0, hi = size;
    size_t count = 0;

    if (fn == NULL || proof == NULL || n == NULL || index >= size)
        return false;
    *n = 0;
    while (hi - lo > 1) {
        unsigned level;
        uint64_t k = split_point(hi - lo, &level);

        if (count >= MAX_DEPTH)
            return false; /* cannot happen: each step at least halves the range */
        if (index < lo + k) {
            if (!range_root(fn, ctx, lo + k, hi - lo - k, proof[count]))
                return false;
            hi = lo + k;
        } else {
            if (!fn(ctx, level, lo >> level, proof[count]))
                return false;
            lo += k;
        }
        count++;
    }
    reverse_hashes(proof, count);
    *n = count;
    return true;
}

/*
 * PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 section 2.1.4.1, unrolled like the
 * inclusion proof. `old_root_known` is the RFC's flag b: it stays true while the old tree's
 * boundary is the end of the current left-aligned range, whose root the verifier already has.
 * Once the walk goes right it turns false, and the range where the walk stops must be sent too.
 */
bool
dfd_merkle_consistency_proof(uint64_t old_size, uint64_t new_size, dfd_merkle_node_fn fn, void *ctx,
                             dfd_hash proof[DFD_MERKLE_MAX_PROOF], size_t *n)
{
    uint64_t lo = 0, hi = new_size;
    size_t count = 0;
    bool old_root_known = true;
    dfd_hash stop_node;

    if (fn == NULL || proof == NULL || n == NULL || old_size == 0 || old_size > new_size)
        return false;
    *n = 0;
    for (;;) {
        unsigned level;
        uint64_t k;

        if (old_size - lo == hi - lo) {
            if (!old_root_known && !range_root(fn, ctx, lo, hi - lo, stop_node))
                return false;
            break;
        }
        /* at most 64 halvings, plus the stop node: 65 hashes fit DFD_MERKLE_MAX_PROOF */
        if (count >= MAX_DEPTH)
            return false;
        k = split_point(hi - lo, &level);
        if (old_size - lo <= k) {
            if (!range_root(fn, ctx, lo + k, hi - lo - k, proof[count]))
                return false;
            hi = lo + k;
        } else {
            if (!fn(ctx, level, lo >> level, proof[count]))
                return false;
            lo += k;
            old_root_known = false;
        }
        count++;
    }
    reverse_hashes(proof, count);
    if (!old_root_known) {
        memmove(proof + 1, proof, count * sizeof(dfd_hash));
        memcpy(proof[0], stop_node, DFD_MERKLE_HASH_LEN);
        count++;
    }
    *n = count;
    return true;
}

/* Equality of two hashes (all inputs here are public, so no constant-time compare is needed). */
static bool
hash_equal(const dfd_hash a, const dfd_hash b)
{
    return memcmp(a, b, DFD_MERKLE_HASH_LEN) == 0;
}

/*
 * RFC 9162 section 2.1.3.2. fn/sn track the leaf's and the last leaf's positions level by level;
 * a proof of the wrong length either runs sn to 0 early or leaves it non-zero.
 */
bool
dfd_merkle_verify_inclusion(uint64_t index, uint64_t size, const dfd_hash leaf_hash,
                            const dfd_hash *proof, size_t n, const dfd_hash root)
{
    uint64_t fn, sn;
    dfd_hash r;

    if (leaf_hash == NULL || root == NULL || (proof == NULL && n > 0))
        return false;
    if (index >= size || n > DFD_MERKLE_MAX_PROOF)
        return false;
    fn = index;
    sn = size - 1;
    memcpy(r, leaf_hash, DFD_MERKLE_HASH_LEN);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) != 0 || fn == sn) {
            if (!dfd_merkle_node_hash(proof[i], r, r))
                return false;
            /* skip the levels where this node has no right sibling; ends: fn has a set bit */
            while (fn != 0 && (fn & 1) == 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            if (!dfd_merkle_node_hash(r, proof[i], r))
                return false;
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && hash_equal(r, root);
}

/*
 * RFC 9162 section 2.1.4.2, rebuilding both roots from the proof: fr from the hashes left of the
 * old boundary, sr from all of them. Equal sizes (which the RFC leaves out) need an empty proof
 * and equal roots; size 0 is refused outright, as the published probes require.
 */
bool
dfd_merkle_verify_consistency(uint64_t old_size, uint64_t new_size, const dfd_hash old_root,
                              const dfd_hash new_root, const dfd_hash *proof, size_t n)
{
    uint64_t fn, sn;
    dfd_hash fr, sr;
    size_t next;

    if (old_root == NULL || new_root == NULL || (proof == NULL && n > 0))
        return false;
    if (old_size == 0 || old_size > new_size || n > DFD_MERKLE_MAX_PROOF)
        return false;
    if (old_size == new_size)
        return n == 0 && hash_equal(old_root, new_root);
    if (n == 0)
        return false;

    /* an old tree of 2^k leaves is itself a node of the new one, so its root starts the walk */
    if ((old_size & (old_size - 1)) == 0) {
        memcpy(fr, old_root, DFD_MERKLE_HASH_LEN);
        next = 0;
    } else {
        memcpy(fr, proof[0], DFD_MERKLE_HASH_LEN);
        next = 1;
    }
    memcpy(sr, fr, DFD_MERKLE_HASH_LEN);

    fn = old_size - 1;
    sn = new_size - 1;
    /* climb to the lowest level where the old boundary node is a left child; at most 64 */
    while ((fn & 1) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    for (size_t i = next; i < n; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) != 0 || fn == sn) {
            if (!dfd_merkle_node_hash(proof[i], fr, fr) || !dfd_merkle_node_hash(proof[i], sr, sr))
                return false;
            while (fn != 0 && (fn & 1) == 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            if (!dfd_merkle_node_hash(sr, proof[i], sr))
                return false;
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && hash_equal(fr, old_root) && hash_equal(sr, new_root);
}

/* An empty frontier (size 0). Unused slots are kept zeroed so equal trees give equal structs. */
void
dfd_merkle_frontier_init(dfd_merkle_frontier *f)
{
    if (f != NULL)
        memset(f, 0, sizeof *f);
}

/*
 * Appends a leaf like a binary increment: each trailing set bit of size is a perfect subtree
 * that merges with the carry into one a level up. All new nodes are computed and emitted
 * before the frontier changes, so a failure (hash or emit) leaves it as it was and the append
 * can be retried; emit may then see some nodes twice.
 */
bool
dfd_merkle_frontier_append(dfd_merkle_frontier *f, const dfd_hash leaf_hash,
                           dfd_merkle_emit_fn emit, void *ctx)
{
    dfd_hash completed[MAX_DEPTH]; /* completed[L - 1]: the new perfect subtree at level L */
    dfd_hash carry;
    unsigned level = 0;

    if (f == NULL || leaf_hash == NULL || f->size == UINT64_MAX)
        return false;
    memcpy(carry, leaf_hash, DFD_MERKLE_HASH_LEN);
    /* size < 2^64 - 1 has a clear bit below 64, which ends the loop */
    while (level < MAX_DEPTH && ((f->size >> level) & 1) != 0) {
        if (!dfd_merkle_node_hash(f->nodes[level], carry, carry))
            return false;
        level++;
        memcpy(completed[level - 1], carry, DFD_MERKLE_HASH_LEN);
    }
    if (level >= MAX_DEPTH)
        return false;
    if (emit != NULL) {
        /* the subtree at level L ends with the new leaf (position size), so its index is size >> L
         */
        for (unsigned l = 1; l <= level; l++)
            if (!emit(ctx, l, f->size >> l, completed[l - 1]))
                return false;
    }
    for (unsigned l = 0; l < level; l++)
        memset(f->nodes[l], 0, DFD_MERKLE_HASH_LEN);
    memcpy(f->nodes[level], carry, DFD_MERKLE_HASH_LEN);
    f->size++;
    return true;
}

/* Lets range_root read a frontier: its nodes are exactly the blocks of the range [0, size). */
typedef struct frontier_view {
    const dfd_merkle_frontier *frontier;
} frontier_view;

/* dfd_merkle_node_fn over a frontier; refuses anything but the blocks it holds. */
static bool
frontier_node(void *ctx, unsigned level, uint64_t index, dfd_hash out)
{
    const dfd_merkle_frontier *f = ((const frontier_view *)ctx)->frontier;

    if (level >= MAX_DEPTH || ((f->size >> level) & 1) == 0 || index != (f->size >> level) - 1)
        return false;
    memcpy(out, f->nodes[level], DFD_MERKLE_HASH_LEN);
    return true;
}

/* Root of the frontier's tree: the same right-edge fold as dfd_merkle_root, lowest bit first. */
bool
dfd_merkle_frontier_root(const dfd_merkle_frontier *f, dfd_hash out)
{
    frontier_view view;

    if (f == NULL || out == NULL)
        return false;
    if (f->size == 0)
        return dfd_merkle_empty_root(out);
    view.frontier = f;
    return range_root(frontier_node, &view, 0, f->size, out);
}

size_t
dfd_merkle_frontier_pack(const dfd_merkle_frontier *f, uint8_t *out)
{
    size_t len = 0;

    for (unsigned level = 0; level < MAX_DEPTH; level++)
        if (((f->size >> level) & 1) != 0) {
            memcpy(out + len, f->nodes[level], DFD_MERKLE_HASH_LEN);
            len += DFD_MERKLE_HASH_LEN;
        }
    return len;
}

bool
dfd_merkle_frontier_unpack(uint64_t size, const uint8_t *in, size_t len, dfd_merkle_frontier *out)
{
    size_t pos = 0;

    if (in == NULL || out == NULL ||
        len != (size_t)__builtin_popcountll(size) * DFD_MERKLE_HASH_LEN)
        return false;
    memset(out, 0, sizeof *out);
    out->size = size;
    for (unsigned level = 0; level < MAX_DEPTH; level++)
        if (((size >> level) & 1) != 0) {
            memcpy(out->nodes[level], in + pos, DFD_MERKLE_HASH_LEN);
            pos += DFD_MERKLE_HASH_LEN;
        }
    return true;
}
