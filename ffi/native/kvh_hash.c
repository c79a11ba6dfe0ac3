// kvh's batch digest checker, loaded by lib/forensic/_native_digest.ts through Deno.dlopen:
// checks the SHA-256 and HMAC-SHA256 of many log records per call. One FFI call per record
// costs about as much as the hashing itself (~1 µs against ~0.3 µs for a 300-byte record with
// SHA-NI), so records are described in a table and checked in one call per run of lines.
// OpenSSL's libcrypto does the hashing (its SHA-256 picks SHA-NI or AVX2 at run time); the
// low-level SHA256_* API is used because EVP's per-call context set-up costs more than the
// hash of a short record. Without this library kvh hashes through node:crypto.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVH_HASH_ABI_VERSION 5
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

// RFC 2104: the key block (the key hashed first when longer than a block), XOR-ed with the
// pads, starts the inner and outer hashes once for a whole batch.
static void hmac_start(const uint8_t *key, uint32_t key_len, SHA256_CTX *inner, SHA256_CTX *outer) {
  uint8_t block[64] = {0};
  if (key_len > 64) SHA256(key, key_len, block);
  else memcpy(block, key, key_len);
  uint8_t pad[64];
  for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
  SHA256_Init(inner);
  SHA256_Update(inner, pad, 64);
  for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(outer);
  SHA256_Update(outer, pad, 64);
}

// HMAC-SHA256 of a message given in two parts, from the started inner and outer hashes.
static void hmac_two(const SHA256_CTX *inner, const SHA256_CTX *outer, const uint8_t *a,
                     size_t a_len, const uint8_t *b, size_t b_len, uint8_t digest[32]) {
  SHA256_CTX ctx = *inner;
  SHA256_Update(&ctx, a, a_len);
  SHA256_Update(&ctx, b, b_len);
  SHA256_Final(digest, &ctx);
  ctx = *outer;
  SHA256_Update(&ctx, digest, 32);
  SHA256_Final(digest, &ctx);
}

// For each of the n records described in `desc`, sets out[i] bit 0 when the SHA-256 of its
// message (plus suffix) equals the hex at its hash offset, and bit 1 when, with a key, the
// HMAC-SHA256 of the same bytes equals the hex at its MAC offset. A range outside its buffer
// gives 0: the caller's own path then decides what the record is.
EXPORT void kvh_hash_check(const uint8_t *data, uint64_t data_len, const uint32_t *desc,
                           uint32_t n, const uint8_t *key, uint32_t key_len, uint8_t *out) {
  SHA256_CTX inner_base, outer_base;
  if (key_len > 0) hmac_start(key, key_len, &inner_base, &outer_base);
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
      hmac_two(&inner_base, &outer_base, data + msg_at, msg_len, data + suffix_at, suffix_len,
               digest);
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

// SHA-256 of one message into out: the forensic writer seals every record with it. node:crypto
// in Deno makes a hash object per call (~1-4 us with its garbage against ~0.5 us here).
EXPORT void kvh_sha256(const uint8_t *data, uint32_t len, uint8_t out[32]) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data, len);
  SHA256_Final(out, &ctx);
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

// ---------------------------------------------------------------------------------------------
// Whole-line verification for lib/forensic/_line_check.ts: one call checks a run of log lines
// (both formats of DESIGN.md §4), so that verify touches in TypeScript only the lines this code
// is not sure of. A line is *accepted* only when it is certain that the TypeScript check gives
// it a plain passing result (format v2: kvh's exact RFC 8785 line form, as
// lib/forensic/_canonical_scan.ts accepts it; format v1: the Python tool's exact written form,
// as scanV1Line in lib/forensic/format_v1.ts reads it) and its hash (and MAC, with a key)
// matches. Anything else, including every failure, is left to the TypeScript path, which alone
// decides and words what a line is: the two paths cannot report differently by construction.
// Every read stays inside the line it belongs to.

enum {
  LINE_V2 = 1,     // accepted, format v2
  LINE_V1 = 2,     // accepted, format v1
  LINE_LINKED = 4, // accepted and links to the accepted line before it in this call
  LINE_MAC = 8,    // accepted and carries a MAC
};
enum { MAX_NEST = 64, MAX_MEMBERS = 128, V1_SCRATCH = 1 << 16, MAX_TOKEN = 64 };
enum { STYLE_ES, STYLE_PY };

// Length of the well-formed UTF-8 sequence at p[i] (a byte >= 0x80) before `end`, or 0. The
// same sequences the WHATWG fatal decoder accepts: no overlongs, surrogates or code points
// beyond U+10FFFF.
static size_t utf8_sequence(const uint8_t *p, size_t i, size_t end) {
  const uint8_t c = p[i];
  if (c >= 0xc2 && c <= 0xdf) return i + 1 < end && (p[i + 1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (i + 2 >= end) return 0;
    const uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    return p[i + 1] >= lo && p[i + 1] <= hi && (p[i + 2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (i + 3 >= end) return 0;
    const uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    return p[i + 1] >= lo && p[i + 1] <= hi && (p[i + 2] & 0xc0) == 0x80 &&
                   (p[i + 3] & 0xc0) == 0x80
               ? 4
               : 0;
  }
  return 0;
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

// Whether the 8 bytes at q are all printable ASCII other than a quote and a backslash: a run
// both string scanners pass over whole (a word at a time, bit tricks of "Bit Twiddling Hacks").
static int plain8(const uint8_t *q) {
  uint64_t x;
  memcpy(&x, q, 8);
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  const uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
  const uint64_t hits = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
                        ((x - ones * 0x20) & ~x) | x;
  return (hits & highs) == 0;
}

static int is_lower_hex(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(p[i]) && !(p[i] >= 'a' && p[i] <= 'f')) return 0;
  }
  return 1;
}

// Whether the decimal `digits` (no leading or trailing zero, n <= 17) times 10^exp10 for the
// leading digit is the shortest round-trip spelling of the double it reads as, the one both
// ECMAScript's Number#toString and Python's float repr print. Only normal doubles are decided;
// a power of two (whose rounding interval is lopsided) with 16 or more digits is left undecided.
static int shortest_digits(const char *digits, int n, int exp10) {
  if (exp10 < -307 || exp10 > 307) return 0;
  // Up to 15 significant digits (DBL_DIG) survive decimal -> double -> decimal, so two such
  // spellings never read as the same double: one without trailing zeros is the shortest.
  if (n <= 15) return 1;
  if (n > 17) return 0;
  char text[40];
  snprintf(text, sizeof text, "%c.%.*se%d", digits[0], n - 1, digits + 1, exp10);
  const double x = strtod(text, NULL);
  int binary_exp;
  if (!isnormal(x) || frexp(x, &binary_exp) == 0.5) return 0;
  // Not a power of two: the doubles' rounding interval is symmetric, so when any spelling of p
  // digits reads back as x, the correctly rounded one (glibc's printf, ties to even as both
  // shortest algorithms) does.
  for (int p = 15; p < n; p++) {
    snprintf(text, sizeof text, "%.*e", p - 1, x);
    if (strtod(text, NULL) == x) return 0;
  }
  snprintf(text, sizeof text, "%.*e", n - 1, x);
  int at = 0;
  for (int i = 0; text[i] != 0 && text[i] != 'e'; i++) {
    if (is_digit((uint8_t)text[i])) {
      if (at >= n || text[i] != digits[at]) return 0;
      at++;
    }
  }
  const char *e = strchr(text, 'e');
  return at == n && e != NULL && atoi(e + 1) == exp10;
}

// Whether the number token t[0, len) is spelled exactly as `style` prints the double it reads
// as: ECMAScript's Number#toString (format v2's RFC 8785 form) or Python's float repr (v1).
static int canonical_number(const uint8_t *t, size_t len, int style) {
  if (len == 0 || len > MAX_TOKEN) return 0;
  size_t i = 0;
  const int negative = t[0] == '-';
  if (negative) i++;
  char all[MAX_TOKEN];
  int count = 0, int_digits = 0;
  while (i < len && is_digit(t[i])) all[count++] = (char)t[i++], int_digits++;
  if (int_digits == 0) return 0;
  if (i < len && t[i] == '.') {
    i++;
    const int before = count;
    while (i < len && is_digit(t[i])) all[count++] = (char)t[i++];
    if (count == before) return 0;
  }
  long exponent = 0;
  if (i < len && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    const int minus = i < len && t[i] == '-';
    if (i < len && (t[i] == '+' || t[i] == '-')) i++;
    const size_t start = i;
    while (i < len && is_digit(t[i]) && i - start < 6) exponent = exponent * 10 + (t[i++] - '0');
    if (i == start) return 0;
    if (minus) exponent = -exponent;
  }
  if (i != len) return 0;
  int first = 0;
  while (first < count && all[first] == '0') first++;
  char expected[MAX_TOKEN + 8];
  int out = 0;
  if (first == count) {
    // Zero: "0" in ECMAScript (also for -0), "0.0" or "-0.0" in Python.
    const char *zero = style == STYLE_ES ? "0" : negative ? "-0.0" : "0.0";
    return len == strlen(zero) && memcmp(t, zero, len) == 0;
  }
  int last = count;
  while (all[last - 1] == '0') last--;
  const char *d = all + first;
  const int n = last - first;
  const long exp10 = (long)(int_digits - 1 - first) + exponent;
  if (exp10 < -400 || exp10 > 400) return 0;
  if (negative) expected[out++] = '-';
// Appends c while there is room for the terminating comparison (the token is at most MAX_TOKEN).
#define PUT(c)                                                                                    \
  do {                                                                                            \
    if (out >= MAX_TOKEN + 1) return 0;                                                           \
    expected[out++] = (char)(c);                                                                  \
  } while (0)
  if (style == STYLE_PY && exp10 >= -4 && exp10 < 16) {
    if (exp10 >= 0) {
      for (long k = 0; k <= exp10; k++) PUT(k < n ? d[k] : '0');
      PUT('.');
      if (n > exp10 + 1) {
        for (long k = exp10 + 1; k < n; k++) PUT(d[k]);
      } else {
        PUT('0');
      }
    } else {
      PUT('0');
      PUT('.');
      for (long k = 0; k < -exp10 - 1; k++) PUT('0');
      for (int k = 0; k < n; k++) PUT(d[k]);
    }
  } else if (style == STYLE_ES && exp10 + 1 >= n && exp10 + 1 <= 21) {
    for (long k = 0; k <= exp10; k++) PUT(k < n ? d[k] : '0');
  } else if (style == STYLE_ES && exp10 >= 0 && exp10 + 1 <= 21) {
    for (long k = 0; k <= exp10; k++) PUT(d[k]);
    PUT('.');
    for (long k = exp10 + 1; k < n; k++) PUT(d[k]);
  } else if (style == STYLE_ES && exp10 + 1 > -6 && exp10 < 0) {
    PUT('0');
    PUT('.');
    for (long k = 0; k < -exp10 - 1; k++) PUT('0');
    for (int k = 0; k < n; k++) PUT(d[k]);
  } else {
    PUT(d[0]);
    if (n > 1) {
      PUT('.');
      for (int k = 1; k < n; k++) PUT(d[k]);
    }
    PUT('e');
    PUT(exp10 < 0 ? '-' : '+');
    const long magnitude = exp10 < 0 ? -exp10 : exp10;
    if (style == STYLE_PY && magnitude < 10) PUT('0');
    if (magnitude >= 100) PUT('0' + magnitude / 100);
    if (magnitude >= 10) PUT('0' + magnitude / 10 % 10);
    PUT('0' + magnitude % 10);
  }
#undef PUT
  if ((size_t)out != len || memcmp(expected, t, len) != 0) return 0;
  return shortest_digits(d, n, (int)exp10);
}

// ---- Format v2: the canonical body, as lib/forensic/_canonical_scan.ts scans it -------------

typedef struct {
  const uint8_t *p;
  size_t end; // nothing at or past it is read
  size_t pos;
} cursor_t;

// A string at pos (its opening quote) in JSON.stringify's escaping; sets *escaped when it
// holds an escape.
static int v2_string(cursor_t *s, int *escaped) {
  const uint8_t *p = s->p;
  const size_t end = s->end;
  size_t i = s->pos + 1;
  *escaped = 0;
  for (;;) {
    while (i + 8 <= end && plain8(p + i)) i += 8;
    if (i >= end) return 0;
    const uint8_t c = p[i];
    if (c == '"') break;
    if (c == '\\') {
      *escaped = 1;
      if (i + 1 >= end) return 0;
      const uint8_t e = p[i + 1];
      if (e == 'u') {
        // JSON.stringify writes \u00xx (lowercase) only for controls without a short escape.
        if (i + 5 >= end || p[i + 2] != '0' || p[i + 3] != '0') return 0;
        const uint8_t hi = p[i + 4], lo = p[i + 5];
        if (hi != '0' && hi != '1') return 0;
        const int low = is_digit(lo) ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
        if (low < 0) return 0;
        const int code = (hi - '0') * 16 + low;
        if (code == 8 || code == 9 || code == 10 || code == 12 || code == 13) return 0;
        i += 6;
      } else if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                 e == 't') {
        i += 2;
      } else {
        return 0;
      }
      continue;
    }
    if (c < 0x20) return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    const size_t k = utf8_sequence(p, i, end);
    if (k == 0) return 0;
    i += k;
  }
  s->pos = i + 1;
  return 1;
}

// Whether key [a0, a1) sorts strictly before key [b0, b1) by UTF-16 code units (keys without
// escapes). UTF-8 bytes sort by code point, which differs from UTF-16 order only between
// astral characters and U+E000..U+FFFF: such a comparison is left undecided (-1).
static int v2_ascending(const uint8_t *p, size_t a0, size_t a1, size_t b0, size_t b1) {
  const size_t la = a1 - a0, lb = b1 - b0, n = la < lb ? la : lb;
  for (size_t i = 0; i < n; i++) {
    const uint8_t x = p[a0 + i], y = p[b0 + i];
    if (x != y) {
      if (x >= 0xee && y >= 0xee && (x >= 0xf0) != (y >= 0xf0)) return -1;
      return x < y;
    }
  }
  return la < lb;
}

static int v2_value(cursor_t *s, int depth);

static int v2_literal(cursor_t *s, const char *word) {
  const size_t n = strlen(word);
  if (s->end - s->pos < n || memcmp(s->p + s->pos, word, n) != 0) return 0;
  s->pos += n;
  return 1;
}

static int v2_number(cursor_t *s) {
  const size_t start = s->pos;
  size_t i = start;
  while (i < s->end) {
    const uint8_t c = s->p[i];
    if (!is_digit(c) && c != '-' && c != '+' && c != '.' && c != 'e') break;
    i++;
  }
  const size_t len = i - start;
  const uint8_t *t = s->p + start;
  // Up to 15 digits without a leading zero: a safe integer in canonical form.
  int plain = len > 0 && len <= 15 && (t[0] != '0' || len == 1);
  for (size_t k = 0; plain && k < len; k++) plain = is_digit(t[k]);
  if (!plain && !canonical_number(t, len, STYLE_ES)) return 0;
  s->pos = i;
  return 1;
}

// Members of an object at pos (its opening brace), keys strictly ascending. At the top level
// (`top`), the object ends at s->end instead of a closing brace, and the offsets of the members
// the verifier reads are noted in `found` (value start and end for v, seq, prev, event, ts).
static int v2_object(cursor_t *s, int depth, size_t found[5][2]) {
  if (depth > MAX_NEST) return 0;
  const uint8_t *p = s->p;
  s->pos++;
  if (found == NULL) {
    if (s->pos < s->end && p[s->pos] == '}') {
      s->pos++;
      return 1;
    }
  } else if (s->pos == s->end) {
    return 1;
  }
  size_t last0 = 0, last1 = 0;
  int have_last = 0;
  for (;;) {
    if (s->pos >= s->end || p[s->pos] != '"') return 0;
    const size_t key0 = s->pos + 1;
    int escaped;
    if (!v2_string(s, &escaped) || escaped) return 0;
    const size_t key1 = s->pos - 1;
    if (have_last && v2_ascending(p, last0, last1, key0, key1) != 1) return 0;
    last0 = key0;
    last1 = key1;
    have_last = 1;
    if (s->pos >= s->end || p[s->pos] != ':') return 0;
    s->pos++;
    const size_t value0 = s->pos;
    if (!v2_value(s, depth)) return 0;
    if (found != NULL) {
      // The members the verifier reads; `hash` and `mac` are spliced after the body, and a
      // forward-secure record's `epoch` (epoch_key.ts readEpochFields) takes the TypeScript path.
      const uint8_t *key = p + key0;
      int k = -1;
      switch (key1 - key0) {
      case 1:
        if (key[0] == 'v') k = 0;
        break;
      case 2:
        if (memcmp(key, "ts", 2) == 0) k = 4;
        break;
      case 3:
        if (memcmp(key, "seq", 3) == 0) k = 1;
        else if (memcmp(key, "mac", 3) == 0) return 0;
        break;
      case 4:
        if (memcmp(key, "prev", 4) == 0) k = 2;
        else if (memcmp(key, "hash", 4) == 0) return 0;
        break;
      case 5:
        if (memcmp(key, "event", 5) == 0) k = 3;
        else if (memcmp(key, "epoch", 5) == 0) return 0;
        break;
      }
      if (k >= 0) {
        found[k][0] = value0;
        found[k][1] = s->pos;
      }
      if (s->pos == s->end) return 1;
      if (p[s->pos] != ',') return 0;
      s->pos++;
    } else {
      if (s->pos >= s->end) return 0;
      const uint8_t c = p[s->pos++];
      if (c == '}') return 1;
      if (c != ',') return 0;
    }
  }
}

static int v2_array(cursor_t *s, int depth) {
  if (depth > MAX_NEST) return 0;
  s->pos++;
  if (s->pos < s->end && s->p[s->pos] == ']') {
    s->pos++;
    return 1;
  }
  for (;;) {
    if (!v2_value(s, depth)) return 0;
    if (s->pos >= s->end) return 0;
    const uint8_t c = s->p[s->pos++];
    if (c == ']') return 1;
    if (c != ',') return 0;
  }
}

static int v2_value(cursor_t *s, int depth) {
  if (s->pos >= s->end) return 0;
  const uint8_t c = s->p[s->pos];
  int escaped;
  if (c == '"') return v2_string(s, &escaped);
  if (c == '{') return v2_object(s, depth + 1, NULL);
  if (c == '[') return v2_array(s, depth + 1);
  if (c == 't') return v2_literal(s, "true");
  if (c == 'f') return v2_literal(s, "false");
  if (c == 'n') return v2_literal(s, "null");
  return v2_number(s);
}

enum { HASH_MEMBER = 9 + 64 + 1, MAC_MEMBER = 8 + 64 + 1 };

typedef struct {
  SHA256_CTX inner, outer; // HMAC starts, with a key
  int keyed;
} keys_t;

typedef struct {
  uint8_t status;
  double seq;
  size_t prev_at, prev_len, hash_at; // offsets in the line
} line_t;

// A v2 line in the spliced form (format_v2.ts splicedBodyEnd, checkCanonicalLine): accepted
// when plain (no epoch; not rotate, recovery or prune) and its hash, and with a key its MAC,
// match.
static int v2_line(const uint8_t *p, size_t n, const keys_t *keys, line_t *out) {
  if (n < HASH_MEMBER + 2 || p[n - 1] != '}') return 0;
  size_t end = n - 1, mac_at = 0;
  int has_mac = 0;
  if (end >= MAC_MEMBER && p[end - 1] == '"' && memcmp(p + end - MAC_MEMBER, ",\"mac\":\"", 8) == 0) {
    end -= MAC_MEMBER;
    mac_at = end + 8;
    has_mac = 1;
  }
  if (end < HASH_MEMBER + 1 || p[end - 1] != '"' ||
      memcmp(p + end - HASH_MEMBER, ",\"hash\":\"", 9) != 0) {
    return 0;
  }
  end -= HASH_MEMBER;
  // The hash digits are checked by the comparison with the digest (lowercase hex: ASCII, so
  // these byte offsets are the TypeScript path's character offsets from the end); a MAC that is
  // not checked must still be a digest.
  const size_t hash_at = end + 9;
  if (has_mac && !is_lower_hex(p + mac_at, 64)) return 0;
  if (keys->keyed && !has_mac) return 0;
  if (end < 1 || p[0] != '{') return 0;
  cursor_t s = {p, end, 0};
  size_t found[5][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
  if (!v2_object(&s, 1, found)) return 0;
  for (int k = 0; k < 5; k++) {
    if (found[k][1] == 0) return 0;
  }
  const size_t *v = found[0], *seq = found[1], *prev = found[2], *event = found[3], *ts = found[4];
  if (v[1] - v[0] != 1 || p[v[0]] != '2') return 0;
  if (p[ts[0]] != '"' || p[event[0]] != '"') return 0;
  // seq: a safe non-negative integer the scanner accepted, so at most 15 digits in plain form.
  const size_t seq_len = seq[1] - seq[0];
  if (seq_len == 0 || seq_len > 15) return 0;
  double seq_value = 0;
  for (size_t k = seq[0]; k < seq[1]; k++) {
    if (!is_digit(p[k])) return 0;
    seq_value = seq_value * 10 + (p[k] - '0');
  }
  if (prev[1] - prev[0] != 66 || !is_lower_hex(p + prev[0] + 1, 64)) return 0;
  const uint8_t *ev = p + event[0] + 1;
  const size_t ev_len = event[1] - event[0] - 2;
  if (memchr(ev, '\\', ev_len) != NULL) return 0;
  if ((ev_len == 6 && memcmp(ev, "rotate", 6) == 0) || (ev_len == 5 && memcmp(ev, "prune", 5) == 0) ||
      (ev_len == 8 && memcmp(ev, "recovery", 8) == 0)) {
    return 0;
  }
  static const uint8_t close = '}';
  uint8_t digest[32];
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, p, end);
  SHA256_Update(&ctx, &close, 1);
  SHA256_Final(digest, &ctx);
  if (!hex_equals(digest, p + hash_at)) return 0;
  if (keys->keyed) {
    hmac_two(&keys->inner, &keys->outer, p, end, &close, 1, digest);
    if (!hex_equals(digest, p + mac_at)) return 0;
  }
  out->status = LINE_V2 | (has_mac ? LINE_MAC : 0);
  out->seq = seq_value;
  out->prev_at = prev[0] + 1;
  out->prev_len = 64;
  out->hash_at = hash_at;
  return 1;
}

// ---- Format v1: the Python tool's written form, as scanV1Line in format_v1.ts reads it -------

// A string the Python tool writes as it is: no quote, backslash or control character.
static int v1_string(cursor_t *s) {
  const uint8_t *p = s->p;
  size_t i = s->pos + 1;
  for (;;) {
    while (i + 8 <= s->end && plain8(p + i)) i += 8;
    if (i >= s->end) return 0;
    const uint8_t c = p[i];
    if (c == '"') break;
    if (c == '\\' || c < 0x20) return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    const size_t k = utf8_sequence(p, i, s->end);
    if (k == 0) return 0;
    i += k;
  }
  s->pos = i + 1;
  return 1;
}

static size_t digits_from(const cursor_t *s, size_t i) {
  const size_t start = i;
  while (i < s->end && is_digit(s->p[i])) i++;
  return i - start;
}

// A number in the form Python writes (integers as they are, except -0; floats as repr prints
// them), so that its canonical text is the token itself.
static int v1_number(cursor_t *s) {
  const uint8_t *p = s->p;
  const size_t start = s->pos;
  size_t i = start;
  if (p[i] == '-') i++;
  const size_t whole = digits_from(s, i);
  if (whole == 0 || (p[i] == '0' && whole > 1)) return 0;
  i += whole;
  int integer = 1;
  if (i < s->end && p[i] == '.') {
    const size_t fraction = digits_from(s, i + 1);
    if (fraction == 0) return 0;
    i += 1 + fraction;
    integer = 0;
  }
  if (i < s->end && (p[i] == 'e' || p[i] == 'E')) {
    size_t j = i + 1;
    if (j < s->end && (p[j] == '+' || p[j] == '-')) j++;
    const size_t exponent = digits_from(s, j);
    if (exponent == 0) return 0;
    i = j + exponent;
    integer = 0;
  }
  s->pos = i;
  if (integer) return !(i - start == 2 && p[start] == '-' && p[start + 1] == '0');
  return canonical_number(p + start, i - start, STYLE_PY);
}

static int v1_value(cursor_t *s, int depth, int *array) {
  if (s->pos >= s->end) return 0;
  const uint8_t c = s->p[s->pos];
  if (c == '"') return v1_string(s);
  if (c == '-' || is_digit(c)) return v1_number(s);
  if (c == '[') {
    if (depth >= MAX_NEST) return 0;
    *array = 1;
    s->pos++;
    if (s->pos < s->end && s->p[s->pos] == ']') {
      s->pos++;
      return 1;
    }
    for (;;) {
      if (!v1_value(s, depth + 1, array)) return 0;
      if (s->pos >= s->end) return 0;
      if (s->p[s->pos] == ']') {
        s->pos++;
        return 1;
      }
      if (s->end - s->pos < 2 || s->p[s->pos] != ',' || s->p[s->pos + 1] != ' ') return 0;
      s->pos += 2;
    }
  }
  if (c == 't') return v2_literal(s, "true");
  if (c == 'f') return v2_literal(s, "false");
  if (c == 'n') return v2_literal(s, "null");
  return 0;
}

typedef struct {
  size_t key0, key_len, value0, value_len;
  int array;
} member_t;

// The sorted order of the last line's keys: a log repeats a few key sequences.
typedef struct {
  const uint8_t *keys[MAX_MEMBERS];
  size_t lens[MAX_MEMBERS];
  uint8_t order[MAX_MEMBERS];
  int count;
} shape_t;

// Python sorts keys by code point, which is the order of their UTF-8 bytes.
static int key_compare(const uint8_t *a, size_t la, const uint8_t *b, size_t lb) {
  const int c = memcmp(a, b, la < lb ? la : lb);
  return c != 0 ? c : la < lb ? -1 : la > lb;
}

static int same_equal(const uint8_t *p, size_t at, size_t len, const char *word) {
  return len == strlen(word) && memcmp(p + at, word, len) == 0;
}

// A v1 line: accepted when scanV1Line reads it, its prev_hash is a string, and curr_hash (and
// with a key hmac) matches prev_hash + the canonical text rebuilt from slices of the line.
static int v1_line(const uint8_t *p, size_t n, const keys_t *keys, uint8_t *scratch,
                   shape_t *shape, line_t *out) {
  // The message is prev_hash (part of the line) + a canonical text no longer than the line.
  if (n < 2 || p[0] != '{' || 2 * n + 2 > V1_SCRATCH) return 0;
  member_t members[MAX_MEMBERS];
  int count = 0;
  size_t curr = 0, prev = 0, prev_len = 0, mac = 0;
  int has_curr = 0, has_prev = 0, has_mac = 0;
  cursor_t s = {p, n, 1};
  for (;;) {
    if (count == MAX_MEMBERS || s.pos >= n || p[s.pos] != '"') return 0;
    member_t *m = &members[count++];
    m->key0 = s.pos + 1;
    if (!v1_string(&s)) return 0;
    m->key_len = s.pos - 1 - m->key0;
    if (n - s.pos < 2 || p[s.pos] != ':' || p[s.pos + 1] != ' ') return 0;
    s.pos += 2;
    m->value0 = s.pos;
    m->array = 0;
    if (!v1_value(&s, 0, &m->array)) return 0;
    m->value_len = s.pos - m->value0;
    const int string = p[m->value0] == '"';
    const size_t content = m->value0 + 1, content_len = m->value_len - 2;
    if (same_equal(p, m->key0, m->key_len, "curr_hash")) {
      if (!string) return 0;
      curr = content;
      has_curr = content_len == 64;
      if (!has_curr) return 0;
    } else if (same_equal(p, m->key0, m->key_len, "hmac")) {
      if (!string) return 0;
      mac = content;
      has_mac = 1;
      if (keys->keyed && content_len != 64) return 0;
    } else if (same_equal(p, m->key0, m->key_len, "prev_hash")) {
      if (!string) return 0;
      prev = content;
      prev_len = content_len;
      has_prev = 1;
    } else if (same_equal(p, m->key0, m->key_len, "event_type")) {
      if (!string || same_equal(p, content, content_len, "rotate") ||
          same_equal(p, content, content_len, "prune")) {
        return 0;
      }
    } else if (same_equal(p, m->key0, m->key_len, "v")) {
      return 0;
    }
    if (s.pos >= n) return 0;
    if (p[s.pos] == '}' && s.pos == n - 1) break;
    if (n - s.pos < 2 || p[s.pos] != ',' || p[s.pos + 1] != ' ') return 0;
    s.pos += 2;
  }
  if (!has_curr || !has_prev || (keys->keyed && !has_mac)) return 0;
  int cached = shape->count == count;
  for (int i = 0; cached && i < count; i++) {
    cached = shape->lens[i] == members[i].key_len &&
             memcmp(shape->keys[i], p + members[i].key0, members[i].key_len) == 0;
  }
  if (!cached) {
    for (int i = 0; i < count; i++) {
      int j = i;
      while (j > 0) {
        const member_t *a = &members[shape->order[j - 1]], *b = &members[i];
        const int c = key_compare(p + a->key0, a->key_len, p + b->key0, b->key_len);
        // Duplicate keys are malformed_json, which only the TypeScript path reports.
        if (c == 0) {
          shape->count = 0;
          return 0;
        }
        if (c < 0) break;
        shape->order[j] = shape->order[j - 1];
        j--;
      }
      shape->order[j] = (uint8_t)i;
      shape->keys[i] = p + members[i].key0;
      shape->lens[i] = members[i].key_len;
    }
    shape->count = count;
  }
  // The message: prev_hash + json.dumps(record, sort_keys=True, separators=(",", ":")).
  size_t at = 0;
  memcpy(scratch, p + prev, prev_len);
  at += prev_len;
  scratch[at++] = '{';
  int first = 1;
  for (int i = 0; i < count; i++) {
    const member_t *m = &members[shape->order[i]];
    if (same_equal(p, m->key0, m->key_len, "curr_hash") ||
        same_equal(p, m->key0, m->key_len, "hmac")) {
      continue;
    }
    if (!first) scratch[at++] = ',';
    first = 0;
    // Each member shrinks by at least its ": " separator, so the line's length bounds the total.
    scratch[at++] = '"';
    memcpy(scratch + at, p + m->key0, m->key_len);
    at += m->key_len;
    scratch[at++] = '"';
    scratch[at++] = ':';
    if (!m->array) {
      memcpy(scratch + at, p + m->value0, m->value_len);
      at += m->value_len;
    } else {
      // Arrays lose the space after each comma; strings in them hold no quote to confuse this.
      int quoted = 0;
      for (size_t k = m->value0; k < m->value0 + m->value_len; k++) {
        const uint8_t c = p[k];
        if (c == '"') quoted = !quoted;
        if (!quoted && c == ' ' && p[k - 1] == ',') continue;
        scratch[at++] = c;
      }
    }
  }
  scratch[at++] = '}';
  // SHA256_Init/Update/Final, not the one-shot SHA256(): in OpenSSL 3 that fetches the digest
  // under a lock per call, a fifth of the time of a short message.
  uint8_t digest[32];
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, scratch, at);
  SHA256_Final(digest, &ctx);
  if (!hex_equals(digest, p + curr)) return 0;
  if (keys->keyed) {
    hmac_two(&keys->inner, &keys->outer, scratch, at, scratch, 0, digest);
    if (!hex_equals(digest, p + mac)) return 0;
  }
  out->status = LINE_V1 | (has_mac ? LINE_MAC : 0);
  out->seq = 0;
  out->prev_at = prev;
  out->prev_len = prev_len;
  out->hash_at = curr;
  return 1;
}

// What one thread checks: the lines of data[from, to), described from index 0 of the outputs.
typedef struct {
  const uint8_t *data;
  size_t from, to;
  uint32_t max_line, capacity;
  const keys_t *keys;
  uint8_t *status;
  uint32_t *ends;
  double *seqs;
  uint32_t *hash_at;
  uint32_t count; // lines described
} range_t;

static void *verify_range(void *arg) {
  range_t *r = arg;
  const uint8_t *data = r->data;
  uint8_t *scratch = NULL;
  shape_t shape;
  shape.count = 0;
  line_t last = {0, 0, 0, 0, 0};
  const uint8_t *last_line = NULL;
  uint32_t count = 0;
  size_t start = r->from;
  for (;;) {
    const uint8_t *nl = memchr(data + start, '\n', r->to - start);
    const size_t end = nl == NULL ? r->to : (size_t)(nl - data);
    const uint8_t *p = data + start;
    const size_t n = end - start;
    line_t line = {0, 0, 0, 0, 0};
    if (n > 0 && n <= r->max_line) {
      if (p[n - 1] == '}' && n >= HASH_MEMBER + 2 && p[n - 2] == '"' && p[n - 67] == '"' &&
          p[n - 68] == ':') {
        // The spliced form ends `"hash":"<hex>"}` or `"mac":"<hex>"}`; a v1 line `": "<hex>"}`.
        v2_line(p, n, r->keys, &line);
      } else if (p[0] == '{') {
        if (scratch == NULL) scratch = malloc(V1_SCRATCH);
        if (scratch != NULL) v1_line(p, n, r->keys, scratch, &shape, &line);
      }
    }
    if (line.status != 0 && last.status != 0 &&
        (line.status & (LINE_V1 | LINE_V2 | LINE_MAC)) ==
            (last.status & (LINE_V1 | LINE_V2 | LINE_MAC)) &&
        line.prev_len == 64 && memcmp(p + line.prev_at, last_line + last.hash_at, 64) == 0 &&
        ((line.status & LINE_V1) || line.seq == last.seq + 1)) {
      line.status |= LINE_LINKED;
    }
    r->status[count] = line.status;
    r->ends[count] = (uint32_t)end;
    r->seqs[count] = line.seq;
    r->hash_at[count] = (uint32_t)(start + line.hash_at);
    count++;
    last = line;
    last_line = p;
    if (end == r->to || count == r->capacity) break;
    start = end + 1;
  }
  free(scratch);
  r->count = count;
  return NULL;
}

// Below this many bytes per thread, another thread costs more than it saves.
enum { SPLIT_MIN_BYTES = 1 << 18, MAX_THREADS = 8 };

// Checks the lines of data[0, len): complete lines with `\n` between them, the last one's left
// out (a `lines` run of lib/forensic/reader.ts). For each line i, in order, up to `capacity`:
// ends[i] is the offset of its end (its `\n`, or len), status[i] its LINE_* bits (0: not
// accepted), and for an accepted line hash_at[i] the offset of its hash's hex digits (v1:
// curr_hash) and seqs[i] its seq (v2). A line longer than max_line is not accepted. With a key
// (key_len > 0) only lines whose MAC matches are accepted. With `threads` above 1 a large run is
// cut at line ends into up to that many parts (at most 8, each of 256 KiB or more) checked at
// once; the first line of each part is then not marked linked.
// Returns the number of lines described; fewer than all when capacity runs out (call again
// after ends[count - 1]).
EXPORT uint32_t kvh_verify_lines(const uint8_t *data, uint64_t len, uint32_t max_line,
                                 const uint8_t *key, uint32_t key_len, uint32_t threads,
                                 uint32_t capacity, uint8_t *status, uint32_t *ends,
                                 double *seqs, uint32_t *hash_at) {
  if (len > UINT32_MAX || capacity == 0) return 0;
  if (len == 0) {
    // One blank line (data may then be a null pointer).
    status[0] = 0;
    ends[0] = 0;
    seqs[0] = 0;
    hash_at[0] = 0;
    return 1;
  }
  keys_t keys;
  keys.keyed = key_len > 0;
  if (keys.keyed) hmac_start(key, key_len, &keys.inner, &keys.outer);
  uint32_t parts = threads < MAX_THREADS ? threads : MAX_THREADS;
  if (parts > len / SPLIT_MIN_BYTES) parts = (uint32_t)(len / SPLIT_MIN_BYTES);
  if (parts > capacity / 2) parts = capacity / 2;
  if (parts < 1) parts = 1;
  // Each part writes from its share of the outputs; after all are done, each is moved down
  // after the lines of the parts before it, as long as those fitted in their shares.
  const uint32_t share = capacity / parts;
  range_t ranges[MAX_THREADS];
  uint32_t count = 0;
  size_t from = 0;
  for (uint32_t k = 0; k < parts && from <= len; k++) {
    size_t to = len;
    if (k + 1 < parts) {
      const size_t target = len / parts * (k + 1);
      const uint8_t *nl = target > from ? memchr(data + target, '\n', len - target) : NULL;
      if (nl != NULL) to = (size_t)(nl - data);
    }
    ranges[count++] = (range_t){
        .data = data,
        .from = from,
        .to = to,
        .max_line = max_line,
        .capacity = k + 1 < parts && to < len ? share : capacity - share * k,
        .keys = &keys,
        .status = status + share * k,
        .ends = ends + share * k,
        .seqs = seqs + share * k,
        .hash_at = hash_at + share * k,
    };
    if (to == len) break;
    from = to + 1;
  }
  pthread_t workers[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (uint32_t k = 1; k < count; k++) {
    started[k] = pthread_create(&workers[k], NULL, verify_range, &ranges[k]) == 0;
  }
  verify_range(&ranges[0]);
  for (uint32_t k = 1; k < count; k++) {
    if (started[k]) pthread_join(workers[k], NULL);
    else verify_range(&ranges[k]);
  }
  uint32_t total = ranges[0].count;
  for (uint32_t k = 1; k < count; k++) {
    const range_t *before = &ranges[k - 1], *r = &ranges[k];
    if (before->count == 0 || before->ends[before->count - 1] != before->to) break;
    memmove(status + total, r->status, r->count);
    memmove(ends + total, r->ends, r->count * sizeof *ends);
    memmove(seqs + total, r->seqs, r->count * sizeof *seqs);
    memmove(hash_at + total, r->hash_at, r->count * sizeof *hash_at);
    total += r->count;
  }
  return total;
}
