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

#define KVH_HASH_ABI_VERSION 1
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
