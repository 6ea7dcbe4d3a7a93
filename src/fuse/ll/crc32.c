/*
 * CRC-32 (zlib's: reflected polynomial 0xEDB88320, same results as zlib's crc32()) with
 * carry-less multiplication (PCLMULQDQ) on x86-64, for the on-disk cache's unit checks
 * (src/blob/disk-cache.ts). Node's bundled zlib runs its table-driven path here: ~1.2–2.5 GB/s
 * under load, the largest single cost of writing a cold S3 read to the disk cache (issue 16).
 * Folding 64 bytes at a time with PCLMUL is several times faster. The algorithm and constants are
 * those of Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction"
 * (as in Chromium's zlib, crc32_simd.c); anything shorter than 64 bytes, the tail, and machines
 * without PCLMUL use a byte-wise table. Results are checked against zlib in
 * test/blob-disk-cache.test.ts, so a wrong constant cannot go unnoticed.
 */
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

static uint32_t table[256];
static int table_ready = 0;

static void make_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  table_ready = 1;
}

/* crc: the running register (already inverted) */
static uint32_t crc_bytes(uint32_t crc, const unsigned char *p, size_t n) {
  while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_CLMUL 1

/* len ≥ 64 and a multiple of 16; crc is the inverted register; returns the inverted register */
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_clmul(const unsigned char *buf, size_t len, uint32_t crc) {
  static const uint64_t __attribute__((aligned(16))) k1k2[] = {0x0154442bd4, 0x01c6e41596};
  static const uint64_t __attribute__((aligned(16))) k3k4[] = {0x01751997d0, 0x00ccaa009e};
  static const uint64_t __attribute__((aligned(16))) k5k0[] = {0x0163cd6124, 0x0000000000};
  static const uint64_t __attribute__((aligned(16))) poly[] = {0x01db710641, 0x01f7011641};
  __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
  x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
  x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
  x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
  x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
  x0 = _mm_load_si128((const __m128i *)k1k2);
  buf += 64;
  len -= 64;
  while (len >= 64) {
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
    x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
    x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
    x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
    x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
    y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
    y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
    y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
    y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
    x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
    x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
    x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
    buf += 64;
    len -= 64;
  }
  /* fold the four lanes into one */
  x0 = _mm_load_si128((const __m128i *)k3k4);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
  while (len >= 16) {
    x2 = _mm_loadu_si128((const __m128i *)buf);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    buf += 16;
    len -= 16;
  }
  /* 128 → 64 bits */
  x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
  x3 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_srli_si128(x1, 8);
  x1 = _mm_xor_si128(x1, x2);
  x0 = _mm_loadl_epi64((const __m128i *)k5k0);
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_and_si128(x1, x3);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  /* Barrett reduction to 32 bits */
  x0 = _mm_load_si128((const __m128i *)poly);
  x2 = _mm_and_si128(x1, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
  x2 = _mm_and_si128(x2, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int have_clmul = -1;
#endif

/* zlib's crc32(crc, p, n) */
uint32_t smhfs_crc32(uint32_t crc, const unsigned char *p, size_t n) {
  if (!table_ready) make_table();
  uint32_t c = ~crc;
#ifdef HAVE_CLMUL
  if (have_clmul < 0) {
    __builtin_cpu_init();
    have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  }
  if (have_clmul && n >= 64) {
    size_t bulk = n & ~(size_t)15;
    c = crc_clmul(p, bulk, c);
    p += bulk;
    n -= bulk;
  }
#endif
  return ~crc_bytes(c, p, n);
}

/* crc32(data: ArrayBufferView, seed: number) → number: zlib's crc32(seed, data) */
napi_value smhfs_js_crc32(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  size_t len = 0;
  bool is_buf = false;
  napi_is_typedarray(env, argv[0], &is_buf);
  if (is_buf) {
    napi_typedarray_type type;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, argv[0], &type, &len, &data, &ab, &off);
    if (type != napi_uint8_array) {
      napi_throw_type_error(env, NULL, "crc32: a Uint8Array");
      return NULL;
    }
  } else {
    napi_throw_type_error(env, NULL, "crc32: a Uint8Array");
    return NULL;
  }
  uint32_t seed = 0;
  if (argc > 1) napi_get_value_uint32(env, argv[1], &seed);
  napi_value out;
  napi_create_uint32(env, smhfs_crc32(seed, (const unsigned char *)data, len), &out);
  return out;
}
