/*
 * fuzz_merkle: RFC 9162 proof verification (dfd_merkle_verify_inclusion,
 * dfd_merkle_verify_consistency) and the stored frontier (dfd_merkle_frontier_unpack): the
 * proofs a bundle carries and the frontier bytes read back from the head row are outside data.
 *
 * The input is read as: index (8 bytes), size (8), leaf (32), root (32), then proof hashes of
 * 32 bytes each (more than DFD_MERKLE_MAX_PROOF is allowed, to test the bound).
 *
 * Invariants: arbitrary proofs never crash and are refused beyond the bound; on a real tree
 * (leaf i = SHA-256 of i, up to 256 leaves, sizes taken from the input) the generated
 * inclusion and consistency proofs verify, the same proof with one bit flipped does not, and
 * an inclusion proof one level short is not accepted against the subtree root it reaches;
 * an accepted frontier packs back to the same bytes.
 */
#include "../extension/core/dfd_core.h"
#include "../extension/core/dfd_merkle.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

#define TREE_LEAVES 256
#define MAX_HASHES (DFD_MERKLE_MAX_PROOF + 8)

/* levels[L][i]: the perfect subtree of 2^L leaves at index i, for the first 256 leaves */
static dfd_hash levels[9][TREE_LEAVES];

static bool
node_fn(void *ctx, unsigned level, uint64_t index, dfd_hash out)
{
    (void)ctx;
    if (level > 8 || index >= (TREE_LEAVES >> level))
        return false;
    memcpy(out, levels[level][index], DFD_MERKLE_HASH_LEN);
    return true;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (uint32_t i = 0; i < TREE_LEAVES; i++) {
        uint8_t be[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        uint8_t h[DFD_SHA256_LEN];

        FUZZ_CHECK(dfd_sha256(be, sizeof be, h), "sha256");
        FUZZ_CHECK(dfd_merkle_leaf_hash(h, sizeof h, levels[0][i]), "leaf hash");
    }
    for (unsigned l = 1; l <= 8; l++)
        for (uint32_t i = 0; i < (TREE_LEAVES >> l); i++)
            FUZZ_CHECK(
                dfd_merkle_node_hash(levels[l - 1][2 * i], levels[l - 1][2 * i + 1], levels[l][i]),
                "node hash");
    return 0;
}

static uint64_t
read_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void
real_tree(uint64_t a, uint64_t b, size_t flip)
{
    uint64_t size = 1 + b % TREE_LEAVES, index = a % size, old_size = 1 + a % size;
    dfd_hash proof[DFD_MERKLE_MAX_PROOF], root, old_root;
    size_t n;

    FUZZ_CHECK(dfd_merkle_root(size, node_fn, NULL, root), "root");
    FUZZ_CHECK(dfd_merkle_inclusion_proof(index, size, node_fn, NULL, proof, &n), "inclusion");
    FUZZ_CHECK(dfd_merkle_verify_inclusion(index, size, levels[0][index], (const dfd_hash *)proof,
                                           n, root),
               "a generated inclusion proof does not verify");
    if (size > 1) {
        /* a proof one level short climbs to the left subtree's root when the leaf is in it:
         * that node must not be accepted as the root of the whole tree */
        unsigned top = 0;

        while ((UINT64_C(2) << top) < size)
            top++;
        if (index < (UINT64_C(1) << top))
            FUZZ_CHECK(!dfd_merkle_verify_inclusion(index, size, levels[0][index],
                                                    (const dfd_hash *)proof, n - 1, levels[top][0]),
                       "a proof one level short verifies against a subtree root");
    }
    if (n > 0) {
        proof[(flip / 256) % n][(flip / 8) % DFD_MERKLE_HASH_LEN] ^= (uint8_t)(1u << (flip % 8));
        FUZZ_CHECK(!dfd_merkle_verify_inclusion(index, size, levels[0][index],
                                                (const dfd_hash *)proof, n, root),
                   "an inclusion proof with a flipped bit verifies");
    }
    FUZZ_CHECK(!dfd_merkle_verify_inclusion(index, size, levels[0][(index + 1) % TREE_LEAVES],
                                            (const dfd_hash *)proof, n, root) ||
                   size == 1,
               "an inclusion proof verifies for another leaf");

    FUZZ_CHECK(dfd_merkle_root(old_size, node_fn, NULL, old_root), "old root");
    FUZZ_CHECK(dfd_merkle_consistency_proof(old_size, size, node_fn, NULL, proof, &n),
               "consistency");
    FUZZ_CHECK(
        dfd_merkle_verify_consistency(old_size, size, old_root, root, (const dfd_hash *)proof, n),
        "a generated consistency proof does not verify");
    if (n > 0) {
        proof[(flip / 256) % n][(flip / 8) % DFD_MERKLE_HASH_LEN] ^= (uint8_t)(1u << (flip % 8));
        FUZZ_CHECK(!dfd_merkle_verify_consistency(old_size, size, old_root, root,
                                                  (const dfd_hash *)proof, n),
                   "a consistency proof with a flipped bit verifies");
    }
}

static void
frontier(uint64_t size, const uint8_t *bytes, size_t len)
{
    static dfd_merkle_frontier f;
    static uint8_t packed[DFD_MERKLE_FRONTIER_MAX];

    if (dfd_merkle_frontier_unpack(size, bytes, len, &f)) {
        FUZZ_CHECK(f.size == size, "unpacked frontier size");
        FUZZ_CHECK(dfd_merkle_frontier_pack(&f, packed) == len && memcmp(packed, bytes, len) == 0,
                   "frontier does not pack back to its bytes");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dfd_hash hashes[MAX_HASHES];
    uint64_t a, b;
    size_t n;

    if (size < 80 || size > 80 + MAX_HASHES * DFD_MERKLE_HASH_LEN)
        return 0;
    a = read_u64(data);
    b = read_u64(data + 8);
    n = (size - 80) / DFD_MERKLE_HASH_LEN;
    memcpy(hashes, data + 80, n * DFD_MERKLE_HASH_LEN);

    /* arbitrary input: only the answer's shape can be checked */
    {
        bool inc =
            dfd_merkle_verify_inclusion(a, b, data + 16, (const dfd_hash *)hashes, n, data + 48);
        bool con =
            dfd_merkle_verify_consistency(a, b, data + 16, data + 48, (const dfd_hash *)hashes, n);

        FUZZ_CHECK(!inc || (a < b && n <= DFD_MERKLE_MAX_PROOF), "inclusion accepted out of range");
        FUZZ_CHECK(!con || (a <= b && n <= DFD_MERKLE_MAX_PROOF),
                   "consistency accepted out of range");
    }
    frontier(b, data + 16, size - 16);
    real_tree(a, b, (size_t)read_u64(data + 16));
    return 0;
}
