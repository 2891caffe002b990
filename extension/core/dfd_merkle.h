/*
 * dfd_merkle.h: RFC 9162 section 2.1 Merkle trees (the per-organization tree over receipt
 * hashes): hashing, roots, inclusion and consistency proofs and their verification, and the
 * compact frontier that appends maintain. Postgres-free.
 *
 * Addressing: the perfect subtree at (level L, index i) covers leaves [i * 2^L, (i+1) * 2^L);
 * level 0 is the leaf hashes themselves. Every node an RFC 9162 proof needs is either such a
 * perfect subtree or the root of a right-edge range made of them, so a generator needs nothing
 * but a source of perfect subtree roots (dfd_merkle_node_fn).
 */
#ifndef DFD_MERKLE_H
#define DFD_MERKLE_H

#include "dfd_core.h"

#define DFD_MERKLE_HASH_LEN 32
/* Proofs have at most 64 (inclusion) or 65 (consistency) hashes; 128 leaves headroom */
#define DFD_MERKLE_MAX_PROOF 128

typedef uint8_t dfd_hash[DFD_MERKLE_HASH_LEN];

/* leaf = SHA-256(0x00 || data) */
bool dfd_merkle_leaf_hash(const uint8_t *data, size_t len, dfd_hash out);
/* node = SHA-256(0x01 || left || right) */
bool dfd_merkle_node_hash(const dfd_hash left, const dfd_hash right, dfd_hash out);
/* root of the empty tree = SHA-256("") */
bool dfd_merkle_empty_root(dfd_hash out);

/*
 * Source of perfect subtree roots. Returns false when it cannot produce the node (missing
 * data); the caller then fails too.
 */
typedef bool (*dfd_merkle_node_fn)(void *ctx, unsigned level, uint64_t index, dfd_hash out);

/* Root of the tree of the first `size` leaves (size 0: the empty root). */
bool dfd_merkle_root(uint64_t size, dfd_merkle_node_fn fn, void *ctx, dfd_hash out);

/*
 * Inclusion proof of leaf `index` in the tree of `size` leaves (index < size), in the order of
 * RFC 9162 section 2.1.3.1 (from the leaf's sibling upward). *n receives the number of hashes.
 */
bool dfd_merkle_inclusion_proof(uint64_t index, uint64_t size, dfd_merkle_node_fn fn, void *ctx,
                                dfd_hash proof[DFD_MERKLE_MAX_PROOF], size_t *n);

/* Consistency proof between tree sizes 0 < old_size <= new_size, RFC 9162 section 2.1.4.1. */
bool dfd_merkle_consistency_proof(uint64_t old_size, uint64_t new_size, dfd_merkle_node_fn fn,
                                  void *ctx, dfd_hash proof[DFD_MERKLE_MAX_PROOF], size_t *n);

/*
 * Verification, RFC 9162 sections 2.1.3.2 and 2.1.4.2, independent of the generators above.
 * leaf_hash is the already hashed leaf (dfd_merkle_leaf_hash of the receipt hash).
 */
bool dfd_merkle_verify_inclusion(uint64_t index, uint64_t size, const dfd_hash leaf_hash,
                                 const dfd_hash *proof, size_t n, const dfd_hash root);
bool dfd_merkle_verify_consistency(uint64_t old_size, uint64_t new_size, const dfd_hash old_root,
                                   const dfd_hash new_root, const dfd_hash *proof, size_t n);

/*
 * The right edge of a tree: for each set bit k of size, nodes[k] is the root of the perfect
 * subtree of 2^k leaves in that position. Enough to append and to compute the root.
 */
typedef struct dfd_merkle_frontier {
    uint64_t size;
    dfd_hash nodes[64];
} dfd_merkle_frontier;

/* Called for each perfect subtree an append completes (level >= 1), bottom-up. */
typedef bool (*dfd_merkle_emit_fn)(void *ctx, unsigned level, uint64_t index, const dfd_hash h);

void dfd_merkle_frontier_init(dfd_merkle_frontier *f);
/* Appends one leaf hash; emit may be NULL. */
bool dfd_merkle_frontier_append(dfd_merkle_frontier *f, const dfd_hash leaf_hash,
                                dfd_merkle_emit_fn emit, void *ctx);
bool dfd_merkle_frontier_root(const dfd_merkle_frontier *f, dfd_hash out);

/*
 * A frontier as bytes, for storing it beside the head: the node of each set bit of its size,
 * lowest level first (32 bytes each, so popcount(size) * 32 bytes; the size is stored apart).
 * pack returns the length written into out (DFD_MERKLE_FRONTIER_MAX bytes at most); unpack
 * refuses a length that does not fit the size.
 */
#define DFD_MERKLE_FRONTIER_MAX (64 * DFD_MERKLE_HASH_LEN)
size_t dfd_merkle_frontier_pack(const dfd_merkle_frontier *f, uint8_t *out);
bool dfd_merkle_frontier_unpack(uint64_t size, const uint8_t *in, size_t len,
                                dfd_merkle_frontier *out);

#endif /* DFD_MERKLE_H */
