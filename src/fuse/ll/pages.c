/*
 * pages.c — page buffers for the page cache from 2 MiB-aligned slabs backed by huge pages
 * (issue 16, session 11).
 *
 * Why: on this kind of VM a page fault is expensive (the paravirtual interrupt-enable on each
 * one), and a cold S3 read with the disk cache on touches ~170–200 MiB of fresh page buffers
 * (the readahead window plus the pages pinned for their disk-cache write): ~45–54k faults, 10%
 * of the mount's CPU samples (perf, base 4adab8a). A slab is mmapped 2 MiB-aligned and marked
 * MADV_HUGEPAGE (THP is `madvise` on Debian and here), so the kernel backs it with one 2 MiB
 * page: one fault instead of 512, and one page to pin when the kernel copies a FUSE reply from
 * it. Where THP is off, the slab is still aligned memory and behaves like malloc's.
 *
 * The buffers are 4096-aligned, which is also what O_DIRECT needs: the disk cache writes them
 * to its files without going through the kernel's page cache (src/blob/disk-cache.ts).
 *
 * allocPage(size) → Buffer: carves `size` bytes (a multiple of 4096) from the current slab, a
 * new slab when it has no room (sizes over 2 MiB get a slab of their own). A slab is unmapped
 * when the last buffer carved from it is collected (finalizer, on the JS thread) and it is no
 * longer the current one; a buffer collected before its slab's others gives its memory back at
 * once (MADV_DONTNEED), so a half-used slab holds no more memory than malloc's buffers would. V8 is told of the bytes (napi_adjust_external_memory) so that dropped
 * buffers are collected as promptly as Buffer.allocUnsafeSlow's.
 *
 * aligned(buf, n) → whether buf's address and length are multiples of n.
 *
 * mallocInfo() → glibc's malloc counters over all arenas (mallinfo2): { arena: bytes malloc has
 * from the system in its heaps, mmapped: in chunks mmapped on their own, inUse, free }, so the
 * mount's memory can be accounted for (issue 16, session 12). mallocTrim() → malloc_trim(0):
 * gives the free pages inside every arena back to the system (glibc madvises them away, not only
 * the top of the heap); returns whether anything was released.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <stdbool.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SLAB (2u * 1024 * 1024)

typedef struct {
  uint8_t *base;
  size_t size;
  size_t used;
  size_t refs; /* buffers alive, plus one while it is the current slab */
} slab_t;

static slab_t *current;

static void slab_unref(slab_t *s) {
  if (--s->refs > 0) return;
  munmap(s->base, s->size);
  free(s);
}

/* size bytes (a multiple of SLAB), SLAB-aligned, asked to be backed by huge pages. */
static slab_t *slab_new(size_t size) {
  size_t span = size + SLAB;
  uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uintptr_t a = ((uintptr_t)raw + SLAB - 1) & ~(uintptr_t)(SLAB - 1);
  uint8_t *base = (uint8_t *)a;
  if (base > raw) munmap(raw, (size_t)(base - raw));
  size_t tail = (size_t)((raw + span) - (base + size));
  if (tail > 0) munmap(base + size, tail);
  (void)madvise(base, size, MADV_HUGEPAGE); /* EINVAL without THP: plain pages, still aligned */
  slab_t *s = malloc(sizeof *s);
  if (!s) {
    munmap(base, size);
    return NULL;
  }
  s->base = base;
  s->size = size;
  s->used = 0;
  s->refs = 1;
  return s;
}

typedef struct {
  slab_t *slab;
  size_t size;
} page_hint_t;

static void finalize_page(napi_env env, void *data, void *hint) {
  page_hint_t *h = hint;
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)h->size, &ignored);
  /* Its slab lives on (another page of it is still used): give this page's memory back now
     (splits the huge page), so a half-used slab holds no more than malloc would. */
  if (h->slab->refs > 1) (void)madvise(data, h->size, MADV_DONTNEED);
  slab_unref(h->slab);
  free(h);
}

napi_value smhfs_js_alloc_page(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double want = 0;
  if (argc < 1 || napi_get_value_double(env, argv[0], &want) != napi_ok || !(want > 0) || want > (double)(1u << 30) ||
      (double)(uint64_t)want != want || (uint64_t)want % 4096 != 0) {
    napi_throw_range_error(env, NULL, "allocPage: a size in bytes, a positive multiple of 4096 up to 1 GiB");
    return NULL;
  }
  size_t size = (size_t)want;
  slab_t *s;
  uint8_t *p;
  if (size > SLAB) {
    s = slab_new((size + SLAB - 1) & ~(size_t)(SLAB - 1));
    if (!s) goto oom;
    s->refs = 0; /* never current: lives as long as its one buffer */
    p = s->base;
  } else {
    if (!current || current->size - current->used < size) {
      slab_t *fresh = slab_new(SLAB);
      if (!fresh) goto oom;
      if (current) slab_unref(current); /* no longer current: goes with its last buffer */
      current = fresh;
    }
    s = current;
    p = s->base + s->used;
    s->used += size;
  }
  page_hint_t *h = malloc(sizeof *h);
  s->refs++;
  if (h) {
    h->slab = s;
    h->size = size;
  }
  napi_value buf;
  if (!h || napi_create_external_buffer(env, size, p, finalize_page, h, &buf) != napi_ok) {
    free(h);
    slab_unref(s);
    goto oom;
  }
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)size, &ignored);
  return buf;
oom:
  napi_throw_error(env, "ENOMEM", "allocPage: out of memory");
  return NULL;
}

napi_value smhfs_js_aligned(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_ta = false, ok = false;
  uint32_t n = 4096;
  if (argc > 1) napi_get_value_uint32(env, argv[1], &n);
  if (argc > 0) napi_is_typedarray(env, argv[0], &is_ta);
  if (is_ta && n > 0) {
    napi_typedarray_type type;
    size_t len, off;
    void *data;
    napi_value ab;
    napi_get_typedarray_info(env, argv[0], &type, &len, &data, &ab, &off);
    ok = type == napi_uint8_array && data != NULL && (uintptr_t)data % n == 0 && len % n == 0;
  }
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

napi_value smhfs_js_malloc_info(napi_env env, napi_callback_info info) {
  napi_value o, v;
  napi_create_object(env, &o);
#ifdef __GLIBC__
  struct mallinfo2 m = mallinfo2();
#define PUT(name, x)                               \
  napi_create_double(env, (double)(x), &v);        \
  napi_set_named_property(env, o, name, v);
  PUT("arena", m.arena);
  PUT("mmapped", m.hblkhd);
  PUT("inUse", m.uordblks);
  PUT("free", m.fordblks);
#undef PUT
#endif
  return o;
}

napi_value smhfs_js_malloc_trim(napi_env env, napi_callback_info info) {
  int released = 0;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  napi_value out;
  napi_get_boolean(env, released != 0, &out);
  return out;
}
