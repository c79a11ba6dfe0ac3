// kvh's batch digest checker, loaded by lib/forensic/_native_digest.ts through Deno.dlopen:
// checks the SHA-256 and HMAC-SHA256 of many log records per call. One FFI call per record
// costs about as much as the hashing itself (~1 µs against ~0.3 µs for a 300-byte record with
// SHA-NI), so records are described in a table and checked in one call per run of lines.
// OpenSSL's libcrypto does the hashing (its SHA-256 picks SHA-NI or AVX2 at run time); the
// low-level SHA256_* API is used because EVP's per-call context set-up costs more than the
// hash of a short record. Without this library kvh hashes through node:crypto.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#define KVH_HASH_ABI_VERSION 2
#define EXPORT __attribute__((visibility("default")))

EXPORT uint32_t kvh_hash_abi_version(void) { return KVH_HASH_ABI_VERSION; }

// Words per record in the description table, all offsets into `data`: message offset and
// length, suffix offset and length (hashed after the message; length 0 for none), offset of the
// expected hash hex, offset of the expected MAC hex (UINT32_MAX for none).
enum { DESC_WORDS = 6, HEX_LEN = 64 };

static int in_range(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

// Compares the lowercase hex of `digest` with `expected` without branching on the bytes (the
// MAC comparison must not leak how many leading digits matched).
static int hex_equals(const uint8_t digest[32], const uint8_t *expected) {
  static const char digits[] = "0123456789abcdef";
  unsigned diff = 0;
  for (int i = 0; i < 32; i++) {
    diff |= (unsigned)(digits[digest[i] >> 4] ^ expected[2 * i]);
    diff |= (unsigned)(digits[digest[i] & 15] ^ expected[2 * i + 1]);
  }
  return diff == 0;
}

// For each of the n records described in `desc`, sets out[i] bit 0 when the SHA-256 of its
// message (plus suffix) equals the hex at its hash offset, and bit 1 when, with a key, the
// HMAC-SHA256 of the same bytes equals the hex at its MAC offset. A range outside its buffer
// gives 0: the caller's own path then decides what the record is.
EXPORT void kvh_hash_check(const uint8_t *data, uint64_t data_len, const uint32_t *desc,
                           uint32_t n, const uint8_t *key, uint32_t key_len, uint8_t *out) {
  SHA256_CTX inner_base, outer_base;
  if (key_len > 0) {
    // RFC 2104: the key block (the key hashed first when longer than a block), XOR-ed with
    // the pads, starts the inner and outer hashes once for the whole batch.
    uint8_t block[64] = {0};
    if (key_len > 64) SHA256(key, key_len, block);
    else memcpy(block, key, key_len);
    uint8_t pad[64];
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&inner_base);
    SHA256_Update(&inner_base, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&outer_base);
    SHA256_Update(&outer_base, pad, 64);
  }
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t *d = desc + (uint64_t)i * DESC_WORDS;
    const uint32_t msg_at = d[0], msg_len = d[1], suffix_at = d[2], suffix_len = d[3];
    const uint32_t hash_at = d[4], mac_at = d[5];
    out[i] = 0;
    if (!in_range(msg_at, msg_len, data_len) || !in_range(suffix_at, suffix_len, data_len) ||
        !in_range(hash_at, HEX_LEN, data_len)) {
      continue;
    }
    uint8_t digest[32];
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data + msg_at, msg_len);
    SHA256_Update(&ctx, data + suffix_at, suffix_len);
    SHA256_Final(digest, &ctx);
    uint8_t verdict = (uint8_t)hex_equals(digest, data + hash_at);
    if (key_len > 0 && mac_at != UINT32_MAX && in_range(mac_at, HEX_LEN, data_len)) {
      ctx = inner_base;
      SHA256_Update(&ctx, data + msg_at, msg_len);
      SHA256_Update(&ctx, data + suffix_at, suffix_len);
      SHA256_Final(digest, &ctx);
      ctx = outer_base;
      SHA256_Update(&ctx, digest, 32);
      SHA256_Final(digest, &ctx);
      verdict |= (uint8_t)(hex_equals(digest, data + mac_at) << 1);
    }
    out[i] = verdict;
  }
}

// RFC 6962 Merkle hashing for lib/transparency: node:crypto costs ~5 µs per hash in Deno, two
// hashes per record (a leaf and, on average, one node), which made checkpoints and proofs over a
// large log CPU-bound. Hashes are 32 bytes, packed.

static void leaf_hash(const uint8_t *msg, uint32_t len, uint8_t out[32]) {
  static const uint8_t prefix = 0x00;
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, msg, len);
  SHA256_Final(out, &ctx);
}

// Not the one-shot SHA256(): in OpenSSL 3 it fetches the algorithm on every call, ~370 ns
// against ~100 ns here for the 65 bytes of a node, and a proof over a 1M-record log hashes 1M
// nodes.
static void node_hash(const uint8_t *left, const uint8_t *right, uint8_t out[32]) {
  static const uint8_t prefix = 0x01;
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, left, 32);
  SHA256_Update(&ctx, right, 32);
  SHA256_Final(out, &ctx);
}

// Writes SHA-256(0x00 || message i) to out + 32i for each of the n (offset, length) pairs in
// desc. Returns how many were hashed: it stops at the first range outside `data`.
EXPORT uint32_t kvh_leaf_hashes(const uint8_t *data, uint64_t data_len, const uint32_t *desc,
                                uint32_t n, uint8_t *out) {
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t at = desc[2 * (uint64_t)i], len = desc[2 * (uint64_t)i + 1];
    if (!in_range(at, len, data_len)) return i;
    leaf_hash(data + at, len, out + 32 * (uint64_t)i);
  }
  return n;
}

// Appends n packed leaf hashes to a compact range of `size` leaves held by level: levels + 32k
// is the root of the perfect subtree of 2^k leaves when bit k of size is set (64 levels).
EXPORT void kvh_range_append(uint8_t *levels, uint64_t size, const uint8_t *leaves, uint64_t n) {
  for (uint64_t i = 0; i < n; i++, size++) {
    uint8_t hash[32];
    memcpy(hash, leaves + 32 * i, 32);
    int level = 0;
    for (uint64_t s = size; s & 1; s >>= 1, level++) node_hash(levels + 32 * level, hash, hash);
    memcpy(levels + 32 * level, hash, 32);
  }
}

// MTH of n >= 1 packed leaf hashes (RFC 9162 2.1.1): their compact range folded from the
// smallest subtree, which is the same tree.
EXPORT void kvh_subtree_root(const uint8_t *leaves, uint64_t n, uint8_t out[32]) {
  uint8_t levels[64 * 32];
  kvh_range_append(levels, 0, leaves, n);
  int level = 0;
  while (!((n >> level) & 1)) level++;
  memcpy(out, levels + 32 * level, 32);
  for (level++; level < 64; level++) {
    if ((n >> level) & 1) node_hash(levels + 32 * level, out, out);
  }
}
