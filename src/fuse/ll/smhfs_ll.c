/*
 * smhfs_ll — a libfuse 3 low-level binding for Node that answers on the JS thread.
 *
 * Design (native-notes/binding.md has the long version):
 *
 * - mount() creates a low-level session (fuse_session_new + fuse_session_mount), makes the
 *   /dev/fuse descriptor non-blocking and watches it with a uv_poll_t on Node's own loop. When it
 *   is readable, a bounded batch of requests is received (fuse_session_receive_buf) and processed
 *   (fuse_session_process_buf) on this thread: every ll_* op calls its JS handler synchronously
 *   and replies before returning — no thread hop, no semaphore.
 * - A handler that cannot answer at once returns `undefined`; the request then moves to a pending
 *   slot (whose number the handler was told beforehand in the io array) and JS answers later with
 *   reply(session, slot, id, result). Interrupts of pending requests are reported to JS by id.
 * - Numbers cross in a shared Float64Array ("io"): the caller's context goes in before each call,
 *   attributes / open flags / statfs come back in it. Only variable data (names, buffers,
 *   directory listings) crosses as JS values.
 * - The receive buffer is a JS-owned Buffer (never external memory): write and setxattr data are
 *   passed to JS as offsets into it; a handler that keeps them past its synchronous return asks
 *   for a fresh receive buffer (swapRecv) so the old one stays its own.
 * - Kernel cache notifications (inval_entry / inval_inode / delete) are written by a helper
 *   thread from a queue, never on this thread: the kernel may wait, inside such a write, for a
 *   request that only this thread can answer. Completions come back through a threadsafe
 *   function, in batches. `notifyBatch` queues many (a cascade's) with one call from JS.
 * - Every request gets exactly one answer: a JS exception or an unusable result answers EIO (and
 *   is reported to JS's onError); pending requests are answered EIO at teardown, and late replies
 *   to them are ignored.
 *
 * Over 600 lines because it is one N-API module over one libfuse session: the ~40 op callbacks,
 * the pending-reply slots, the notifier thread and the reply writers all share the session's
 * state and the io layout above. Split into files, they would need a header of internals that
 * exists only for this module; the CRC-32 (crc32.c) and the page allocator (pages.c), which share
 * nothing, are apart.
 */
#define FUSE_USE_VERSION 34
#define _GNU_SOURCE
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ───────────────────────────── shared layout (mirrored in binding.ts) ───────────────────────────── */

enum {
  OP_INIT, OP_DESTROY, OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD,
  OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE,
  OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS,
  OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE, OP_FALLOCATE,
  OP_READDIRPLUS, OP_COPY_FILE_RANGE, OP_LSEEK, OP_COUNT
};

static const char *const OP_NAMES[OP_COUNT] = {
  "init", "destroy", "lookup", "forget", "getattr", "setattr", "readlink", "mknod",
  "mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open", "read", "write",
  "flush", "release", "fsync", "opendir", "readdir", "releasedir", "fsyncdir", "statfs",
  "setxattr", "getxattr", "listxattr", "removexattr", "access", "create", "fallocate",
  "readdirplus", "copy_file_range", "lseek",
};

/* io: in (C → JS) before each handler call */
#define IO_REQ 0   /* request id (unique per session) */
#define IO_UID 1
#define IO_GID 2
#define IO_PID 3
#define IO_UMASK 4
#define IO_SLOT 5  /* the slot this request takes if its handler returns undefined */
/* io: setattr values (in) */
#define IO_SA_MODE 6
#define IO_SA_UID 7
#define IO_SA_GID 8
#define IO_SA_SIZE 9
#define IO_SA_ATIME 10
#define IO_SA_ATIMENS 11
#define IO_SA_MTIME 12
#define IO_SA_MTIMENS 13
#define IO_SA_CTIME 14
#define IO_SA_CTIMENS 15
/* io: attributes (out); the same 18-number block is the stride of a readdirplus listing */
#define IO_ATTR 16
#define A_INO 0
#define A_MODE 1
#define A_NLINK 2
#define A_UID 3
#define A_GID 4
#define A_RDEV 5
#define A_SIZE 6
#define A_BLOCKS 7
#define A_BLKSIZE 8
#define A_ATIME 9
#define A_ATIMENS 10
#define A_MTIME 11
#define A_MTIMENS 12
#define A_CTIME 13
#define A_CTIMENS 14
#define A_GEN 15
#define A_ATTR_TIMEOUT 16
#define A_ENTRY_TIMEOUT 17
#define ATTR_STRIDE 18
/* listings: readdir entries are [ino, mode, next offset]; readdirplus entries the attribute
 * block + next offset (NaN: the entry's index + 1) */
#define DIR_STRIDE 3
#define DIRPLUS_STRIDE (ATTR_STRIDE + 1)
/* a readdirplus entry whose attribute timeout is -1 is a name only: sent with nodeid 0, which the
 * kernel emits (ino, d_type) without making an inode or taking a reference (binding.ts putName) */
#define NAME_ONLY(a) ((a)[A_ATTR_TIMEOUT] == -1)
/* io: open reply (out) */
#define IO_FH 34
#define IO_OPEN_FLAGS 35
#define OPEN_DIRECT_IO 1
#define OPEN_KEEP_CACHE 2
#define OPEN_NONSEEKABLE 4
#define OPEN_CACHE_READDIR 8
#define OPEN_NOFLUSH 16
/* io: statfs (out) */
#define IO_STATFS 40 /* bsize frsize blocks bfree bavail files ffree favail fsid flag namemax */
#define IO_LEN 64

#define BATCH 64          /* requests per poll wake-up before the loop gets a turn */
#define NAME_BUF 1025     /* FUSE_NAME_MAX (1024) + NUL */
#define LINK_BUF 4097     /* PATH_MAX + NUL */
#define LOG_KEEP 4096

/* ───────────────────────────── libfuse log capture ───────────────────────────── */

/* libfuse reports mount failures (bad option, busy mountpoint …) only through its log; keep the
 * recent lines so mount() can put them in the error it throws, and still print them. */
static char g_log[LOG_KEEP];
static size_t g_log_len;
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_func(enum fuse_log_level level, const char *fmt, va_list ap) {
  char line[1024];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  pthread_mutex_lock(&g_log_mu);
  if (g_log_len + (size_t)n >= LOG_KEEP) g_log_len = 0;
  memcpy(g_log + g_log_len, line, (size_t)n);
  g_log_len += (size_t)n;
  g_log[g_log_len] = 0;
  pthread_mutex_unlock(&g_log_mu);
  if (level <= FUSE_LOG_ERR) fputs(line, stderr);
}

/* ───────────────────────────── session ───────────────────────────── */

typedef struct {
  fuse_req_t req;
  double id;
  int op;
  int in_use;
  size_t size;
  off_t off;
  uint64_t ino; /* open/opendir: to release a handle whose reply nobody took */
} pending_t;

typedef struct notify_item {
  struct notify_item *next;
  int kind; /* 1 inval_inode, 2 inval_entry, 3 delete, 4 a batch (notifyBatch) */
  uint64_t a, b;
  int64_t off, len;
  char *name;     /* kind 4: every entry's name, each ended by a NUL, in order */
  size_t namelen;
  double *nums;   /* kind 4: n × [kind, a, b, off, len] */
  size_t n;
  double id;
  int rc;         /* kind 4: how many dropped something (≥ 0), or the first error */
} notify_item;

typedef struct session {
  napi_env env;
  struct fuse_session *se;
  int fd;
  uv_poll_t poll;
  int mounted;     /* fuse_session_mount succeeded */
  int torn_down;   /* teardown ran (session unusable) */
  int poll_closed; /* uv_close callback ran */
  int refs;           /* the JS external, the poll handle, the threadsafe function */
  int no_js;          /* ended from a GC finalizer: JS must not be called */
  int in_batch;       /* inside fuse_session_process_buf: teardown must wait */
  int close_requested;
  uint64_t cur_ino;   /* ino of the open/opendir being dispatched */
  napi_ref handlers[OP_COUNT];
  napi_ref io_ref;
  double *io;
  napi_ref recv_ref;
  char *recv;
  size_t recv_size;
  napi_ref callbacks_ref; /* { onInterrupt, onUnmounted, onError, onNotified } */
  napi_ref resource_ref;
  napi_async_context actx;
  struct fuse_buf fbuf;
  double next_id;
  /* pending (async) requests */
  pending_t *slots;
  int nslots;
  int *free_stack;
  int nfree;
  int npending;
  /* config */
  double entry_timeout, attr_timeout, negative_timeout;
  unsigned max_read, max_write, max_readahead, max_background, congestion_threshold;
  unsigned want_set, want_clear;
  /* what init negotiated */
  unsigned proto_major, proto_minor, capable, want, neg_max_write, neg_max_read, neg_max_readahead;
  int initialized;
  /* readdir scratch */
  char *dirbuf;
  size_t dirbuf_size;
  /* ids of pending requests interrupted during the current process_buf */
  double *intr;
  int nintr, intr_cap;
  /* notifications */
  pthread_t thr;
  int thr_started, thr_stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  notify_item *q_head, *q_tail, *done_head, *done_tail;
  napi_threadsafe_function tsfn;
  double next_notify_id;
  char *mountpoint;
  /* counters */
  double requests, deferred, exceptions;
} session_t;

static void teardown(session_t *s, int forced);

/* ───────────────────────────── small N-API helpers ───────────────────────────── */

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      throw_last(env, #call);                                            \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

static void throw_last(napi_env env, const char *what) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  char msg[512];
  snprintf(msg, sizeof msg, "smhfs_ll: %s failed: %s", what, info && info->error_message ? info->error_message : "unknown");
  napi_throw_error(env, NULL, msg);
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static napi_value undef(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* Strict UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF): a name JS cannot represent exactly is
 * refused rather than altered (SPEC D5: names are never altered). */
static int valid_utf8(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) {
      if (i + 1 >= n || (p[i + 1] & 0xC0) != 0x80) return 0;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (i + 2 >= n || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80) return 0;
      if (c == 0xE0 && p[i + 1] < 0xA0) return 0;  /* overlong */
      if (c == 0xED && p[i + 1] >= 0xA0) return 0; /* surrogate */
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (i + 3 >= n || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80 || (p[i + 3] & 0xC0) != 0x80) return 0;
      if (c == 0xF0 && p[i + 1] < 0x90) return 0; /* overlong */
      if (c == 0xF4 && p[i + 1] >= 0x90) return 0; /* > U+10FFFF */
      i += 4;
    } else {
      return 0;
    }
  }
  return 1;
}

/* A JS string for a kernel-supplied name, or NULL when it is not valid UTF-8. */
static napi_value name_str(napi_env env, const char *name) {
  size_t n = strlen(name);
  if (!valid_utf8((const unsigned char *)name, n)) return NULL;
  napi_value v;
  if (napi_create_string_utf8(env, name, n, &v) != napi_ok) return NULL;
  return v;
}

static napi_value get_ref(napi_env env, napi_ref r) {
  napi_value v = NULL;
  if (r) napi_get_reference_value(env, r, &v);
  return v;
}

/* Call callbacks[name](args…); exceptions are cleared and printed (they must not escape into
 * libfuse's stack). */
static void call_cb(session_t *s, const char *name, size_t argc, napi_value *argv) {
  if (s->no_js) return;
  napi_env env = s->env;
  napi_value cbs = get_ref(env, s->callbacks_ref), fn, ret;
  if (!cbs || napi_get_named_property(env, cbs, name, &fn) != napi_ok) return;
  napi_valuetype t;
  napi_typeof(env, fn, &t);
  if (t != napi_function) return;
  if (napi_call_function(env, undef(env), fn, argc, argv, &ret) != napi_ok) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
      fprintf(stderr, "smhfs_ll: callback %s threw\n", name);
    }
  }
}

/* A handler threw: clear the exception and hand it to JS's onError with the op name (logged
 * there); the request gets EIO. */
static void report_exception(session_t *s, int op) {
  napi_env env = s->env;
  napi_value exc;
  s->exceptions++;
  if (napi_get_and_clear_last_exception(env, &exc) != napi_ok) return;
  napi_value opname;
  napi_create_string_utf8(env, OP_NAMES[op], NAPI_AUTO_LENGTH, &opname);
  napi_value argv[2] = {exc, opname};
  call_cb(s, "onError", 2, argv);
}

/* A handler returned something this op cannot use: EIO, and say so. */
static void report_bad_result(session_t *s, int op, const char *what) {
  napi_env env = s->env;
  char msg[256];
  snprintf(msg, sizeof msg, "smhfs_ll: the %s handler returned %s", OP_NAMES[op], what);
  napi_value err, m, opname;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &err);
  napi_create_string_utf8(env, OP_NAMES[op], NAPI_AUTO_LENGTH, &opname);
  napi_value argv[2] = {err, opname};
  call_cb(s, "onError", 2, argv);
}

/* ───────────────────────────── pending slots ───────────────────────────── */

static int reserve_slot(session_t *s) {
  if (s->nfree == 0) {
    int n = s->nslots ? s->nslots * 2 : 64;
    pending_t *ns = realloc(s->slots, sizeof(pending_t) * (size_t)n);
    int *nf = realloc(s->free_stack, sizeof(int) * (size_t)n);
    if (!ns || !nf) {
      if (ns) s->slots = ns;
      if (nf) s->free_stack = nf;
      return -1;
    }
    s->slots = ns;
    s->free_stack = nf;
    for (int i = n - 1; i >= s->nslots; i--) {
      memset(&s->slots[i], 0, sizeof(pending_t));
      s->free_stack[s->nfree++] = i;
    }
    s->nslots = n;
  }
  return s->free_stack[s->nfree - 1];
}

/* Take `slot` off the free stack (normally its top: dispatch reserved it). */
static void take_slot(session_t *s, int slot) {
  for (int i = s->nfree - 1; i >= 0; i--) {
    if (s->free_stack[i] == slot) {
      s->free_stack[i] = s->free_stack[s->nfree - 1];
      s->nfree--;
      return;
    }
  }
}

static void release_slot(session_t *s, int slot) {
  s->slots[slot].in_use = 0;
  s->slots[slot].req = NULL;
  s->free_stack[s->nfree++] = slot;
  s->npending--;
}

/* libfuse calls this on our thread while it processes an INTERRUPT (with the request's lock
 * held): only record it; JS hears of it once process_buf returns. */
static void on_interrupt(fuse_req_t req, void *data) {
  session_t *s = fuse_req_userdata(req);
  int slot = (int)(intptr_t)data - 1;
  if (slot < 0 || slot >= s->nslots || !s->slots[slot].in_use || s->slots[slot].req != req) return;
  if (s->nintr == s->intr_cap) {
    int n = s->intr_cap ? s->intr_cap * 2 : 16;
    double *ni = realloc(s->intr, sizeof(double) * (size_t)n);
    if (!ni) return;
    s->intr = ni;
    s->intr_cap = n;
  }
  s->intr[s->nintr++] = s->slots[slot].id;
}

static void drain_interrupts(session_t *s) {
  while (s->nintr > 0) {
    double id = s->intr[--s->nintr];
    napi_value argv[1] = {num(s->env, id)};
    call_cb(s, "onInterrupt", 1, argv);
  }
}

/* ───────────────────────────── replies ───────────────────────────── */

static double dflt(double v, double d) { return isnan(v) || v < 0 ? d : v; }

static void fill_stat(const double *a, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)a[A_INO];
  st->st_mode = (mode_t)a[A_MODE];
  st->st_nlink = (nlink_t)a[A_NLINK];
  st->st_uid = (uid_t)a[A_UID];
  st->st_gid = (gid_t)a[A_GID];
  st->st_rdev = (dev_t)a[A_RDEV];
  st->st_size = (off_t)a[A_SIZE];
  st->st_blocks = (blkcnt_t)a[A_BLOCKS];
  st->st_blksize = isnan(a[A_BLKSIZE]) || a[A_BLKSIZE] <= 0 ? 4096 : (blksize_t)a[A_BLKSIZE];
  st->st_atim.tv_sec = (time_t)a[A_ATIME];
  st->st_atim.tv_nsec = (long)a[A_ATIMENS];
  st->st_mtim.tv_sec = (time_t)a[A_MTIME];
  st->st_mtim.tv_nsec = (long)a[A_MTIMENS];
  st->st_ctim.tv_sec = (time_t)a[A_CTIME];
  st->st_ctim.tv_nsec = (long)a[A_CTIMENS];
}

static void fill_entry(session_t *s, const double *a, struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  fill_stat(a, &e->attr);
  e->ino = e->attr.st_ino;
  e->generation = isnan(a[A_GEN]) ? 0 : (uint64_t)a[A_GEN];
  e->attr_timeout = dflt(a[A_ATTR_TIMEOUT], s->attr_timeout);
  e->entry_timeout = dflt(a[A_ENTRY_TIMEOUT], s->entry_timeout);
}

static void fill_open(session_t *s, struct fuse_file_info *fi) {
  memset(fi, 0, sizeof *fi);
  fi->fh = (uint64_t)s->io[IO_FH];
  unsigned f = isnan(s->io[IO_OPEN_FLAGS]) ? 0 : (unsigned)s->io[IO_OPEN_FLAGS];
  fi->direct_io = !!(f & OPEN_DIRECT_IO);
  fi->keep_cache = !!(f & OPEN_KEEP_CACHE);
  fi->nonseekable = !!(f & OPEN_NONSEEKABLE);
  fi->cache_readdir = !!(f & OPEN_CACHE_READDIR);
  fi->noflush = !!(f & OPEN_NOFLUSH);
}

/* Hand an unsent lookup reference back to JS as if the kernel had forgotten it. */
static void js_forget(session_t *s, uint64_t ino, uint64_t n) {
  if (!s->handlers[OP_FORGET] || ino == 0 || s->no_js) return;
  napi_env env = s->env;
  napi_value fn = get_ref(env, s->handlers[OP_FORGET]), ret;
  napi_value argv[2] = {num(env, (double)ino), num(env, (double)n)};
  if (napi_call_function(env, undef(env), fn, 2, argv, &ret) != napi_ok) report_exception(s, OP_FORGET);
}

static void js_release(session_t *s, int op, uint64_t ino, uint64_t fh) {
  if (!s->handlers[op] || s->no_js) return;
  napi_env env = s->env;
  napi_value fn = get_ref(env, s->handlers[op]), ret;
  napi_value argv[3] = {num(env, (double)ino), num(env, (double)fh), num(env, 0)};
  if (napi_call_function(env, undef(env), fn, 3, argv, &ret) != napi_ok) report_exception(s, op);
}

/* The number a handler returned, or a report + 1 when it is not a number. */
static int get_result(session_t *s, int op, napi_value v, double *out) {
  if (napi_get_value_double(s->env, v, out) != napi_ok || isnan(*out)) {
    report_bad_result(s, op, "something other than a number");
    return 1;
  }
  return 0;
}

/* -errno → errno, clamped to a sane range (anything odd becomes EIO). */
static int errno_of(double r) {
  double e = -r;
  if (!(e >= 1 && e <= 4095)) return EIO;
  return (int)e;
}

/* Bytes of a Buffer / typed array / ArrayBuffer result. */
static int bytes_of(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n, off;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &t, &n, data, &ab, &off) != napi_ok) return 0;
    size_t el = (t == napi_int8_array || t == napi_uint8_array || t == napi_uint8_clamped_array) ? 1
              : (t == napi_int16_array || t == napi_uint16_array) ? 2
              : (t == napi_float64_array || t == napi_bigint64_array || t == napi_biguint64_array) ? 8 : 4;
    *len = n * el;
    return 1;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
  }
  return 0;
}

/* A read answered with an array of Buffers (the cached pieces of a range, in order): one
 * fuse_reply_iov, so the pieces go to the kernel from their own memory and JS never joins them
 * into a fresh buffer (per read: garbage the size of the read, and the malloc heap fragmented
 * between long-lived cache buffers; issue 16). Returns 0 — nothing answered — when the array is
 * not of that form (e.g. [fd, position]); the total is capped at the request's size. */
#define READ_PARTS_MAX 64
static int reply_parts(session_t *s, fuse_req_t req, napi_value arr, size_t size) {
  napi_env env = s->env;
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok || n == 0 || n > READ_PARTS_MAX) return 0;
  struct iovec iov[READ_PARTS_MAX];
  size_t total = 0;
  int count = 0;
  for (uint32_t i = 0; i < n && total < size; i++) {
    napi_value el;
    void *data;
    size_t len;
    if (napi_get_element(env, arr, i, &el) != napi_ok || !bytes_of(env, el, &data, &len)) return 0;
    if (len > size - total) len = size - total;
    iov[count].iov_base = data;
    iov[count].iov_len = len;
    total += len;
    count++;
  }
  fuse_reply_iov(req, iov, count);
  return 1;
}

static void reply_readdir(session_t *s, fuse_req_t req, int op, size_t size, off_t off0, napi_value ret) {
  napi_env env = s->env;
  int plus = op == OP_READDIRPLUS;
  bool is_arr = false;
  napi_value names = NULL, nums = NULL;
  uint32_t n = 0;
  double *v = NULL;
  size_t vbytes = 0;
  if (napi_is_array(env, ret, &is_arr) != napi_ok || !is_arr ||
      napi_get_element(env, ret, 0, &names) != napi_ok || napi_get_element(env, ret, 1, &nums) != napi_ok ||
      napi_is_array(env, names, &is_arr) != napi_ok || !is_arr || napi_get_array_length(env, names, &n) != napi_ok ||
      !bytes_of(env, nums, (void **)&v, &vbytes) || vbytes < (size_t)n * (plus ? DIRPLUS_STRIDE : DIR_STRIDE) * sizeof(double)) {
    report_bad_result(s, op, "a listing that is not [names, Float64Array]");
    fuse_reply_err(req, EIO);
    return;
  }
  if (s->dirbuf_size < size) {
    char *nb = realloc(s->dirbuf, size);
    if (!nb) { fuse_reply_err(req, ENOMEM); return; }
    s->dirbuf = nb;
    s->dirbuf_size = size;
  }
  size_t used = 0;
  uint32_t i = 0;
  char name[NAME_BUF];
  for (; i < n; i++) {
    napi_value nv;
    size_t nlen = 0;
    if (napi_get_element(env, names, i, &nv) != napi_ok ||
        napi_get_value_string_utf8(env, nv, name, sizeof name, &nlen) != napi_ok || nlen == 0 || nlen >= sizeof name - 1) {
      report_bad_result(s, op, "an entry whose name is not a string of 1…1023 bytes");
      break;
    }
    size_t need;
    if (plus) {
      const double *a = v + (size_t)i * DIRPLUS_STRIDE;
      struct fuse_entry_param e;
      fill_entry(s, a, &e);
      if (NAME_ONLY(a)) e.ino = 0, e.attr_timeout = 0, e.entry_timeout = 0; /* the dirent keeps attr.st_ino and the type */
      off_t next = isnan(a[ATTR_STRIDE]) ? off0 + i + 1 : (off_t)a[ATTR_STRIDE];
      need = fuse_add_direntry_plus(req, s->dirbuf + used, size - used, name, &e, next);
    } else {
      const double *a = v + (size_t)i * DIR_STRIDE;
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = (ino_t)a[0];
      st.st_mode = (mode_t)a[1];
      off_t next = isnan(a[2]) ? off0 + i + 1 : (off_t)a[2];
      need = fuse_add_direntry(req, s->dirbuf + used, size - used, name, &st, next);
    }
    if (need > size - used) break;
    used += need;
  }
  uint32_t sent = i;
  int rc = fuse_reply_buf(req, s->dirbuf, used);
  if (plus) {
    /* Each entry of a readdirplus reply is a lookup reference (not . and ..): those that did
     * not fit — or all of them, if the kernel did not take the reply — go back through forget. */
    for (uint32_t j = rc == 0 ? sent : 0; j < n; j++) {
      napi_value nv;
      size_t nlen = 0;
      if (napi_get_element(env, names, j, &nv) != napi_ok ||
          napi_get_value_string_utf8(env, nv, name, sizeof name, &nlen) != napi_ok) continue;
      if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
      if (NAME_ONLY(v + (size_t)j * DIRPLUS_STRIDE)) continue; /* no reference was counted */
      js_forget(s, (uint64_t)v[(size_t)j * DIRPLUS_STRIDE + A_INO], 1);
    }
  }
}

/*
 * Answer `req` (op `op`) from the handler's result `ret` and, for numbers, from io. Always
 * replies exactly once.
 */
static void finish(session_t *s, fuse_req_t req, int op, size_t size, off_t off, uint64_t ino, napi_value ret) {
  napi_env env = s->env;
  double r = 0;
  switch (op) {
    case OP_LOOKUP:
    case OP_MKNOD:
    case OP_MKDIR:
    case OP_SYMLINK:
    case OP_LINK: {
      if (get_result(s, op, ret, &r)) break;
      if (r < 0) {
        int e = errno_of(r);
        if (e == ENOENT && op == OP_LOOKUP && s->negative_timeout > 0) {
          struct fuse_entry_param ne;
          memset(&ne, 0, sizeof ne);
          ne.entry_timeout = s->negative_timeout;
          fuse_reply_entry(req, &ne);
        } else {
          fuse_reply_err(req, e);
        }
        return;
      }
      struct fuse_entry_param e;
      fill_entry(s, s->io + IO_ATTR, &e);
      if (fuse_reply_entry(req, &e) != 0 && e.ino != 0) js_forget(s, e.ino, 1);
      return;
    }
    case OP_CREATE: {
      if (get_result(s, op, ret, &r)) break;
      if (r < 0) { fuse_reply_err(req, errno_of(r)); return; }
      struct fuse_entry_param e;
      struct fuse_file_info fi;
      fill_entry(s, s->io + IO_ATTR, &e);
      fill_open(s, &fi);
      if (fuse_reply_create(req, &e, &fi) != 0) {
        js_release(s, OP_RELEASE, e.ino, fi.fh);
        js_forget(s, e.ino, 1);
      }
      return;
    }
    case OP_GETATTR:
    case OP_SETATTR: {
      if (get_result(s, op, ret, &r)) break;
      if (r < 0) { fuse_reply_err(req, errno_of(r)); return; }
      struct stat st;
      fill_stat(s->io + IO_ATTR, &st);
      fuse_reply_attr(req, &st, dflt(s->io[IO_ATTR + A_ATTR_TIMEOUT], s->attr_timeout));
      return;
    }
    case OP_OPEN:
    case OP_OPENDIR: {
      if (get_result(s, op, ret, &r)) break;
      if (r < 0) { fuse_reply_err(req, errno_of(r)); return; }
      struct fuse_file_info fi;
      fill_open(s, &fi);
      if (fuse_reply_open(req, &fi) != 0) {
        /* not taken (the opener is gone): the kernel will not release it, so we do */
        js_release(s, op == OP_OPEN ? OP_RELEASE : OP_RELEASEDIR, ino, fi.fh);
      }
      return;
    }
    case OP_READLINK: {
      napi_valuetype t;
      napi_typeof(env, ret, &t);
      if (t == napi_number) {
        napi_get_value_double(env, ret, &r);
        fuse_reply_err(req, r < 0 ? errno_of(r) : EIO);
        return;
      }
      char buf[LINK_BUF];
      size_t len = 0;
      if (t == napi_string) {
        if (napi_get_value_string_utf8(env, ret, buf, sizeof buf, &len) != napi_ok) break;
        if (len >= sizeof buf - 1) { fuse_reply_err(req, ENAMETOOLONG); return; }
      } else {
        void *data;
        if (!bytes_of(env, ret, &data, &len)) { report_bad_result(s, op, "neither a string nor a Buffer"); break; }
        if (len >= sizeof buf) { fuse_reply_err(req, ENAMETOOLONG); return; }
        memcpy(buf, data, len);
        buf[len] = 0;
      }
      fuse_reply_readlink(req, buf);
      return;
    }
    case OP_READ: {
      napi_valuetype t;
      napi_typeof(env, ret, &t);
      if (t == napi_number) {
        napi_get_value_double(env, ret, &r);
        if (r < 0) fuse_reply_err(req, errno_of(r));
        else fuse_reply_buf(req, NULL, 0);
        return;
      }
      bool is_arr = false;
      napi_is_array(env, ret, &is_arr);
      if (is_arr && reply_parts(s, req, ret, size)) return;
      if (is_arr) {
        /* [fd, position]: the kernel gets `size` bytes of that file (fewer at its end) — by
         * splice when FUSE_CAP_SPLICE_WRITE is on, else through a buffer libfuse allocates */
        napi_value a, b;
        double fd = -1, pos = -1;
        napi_get_element(env, ret, 0, &a);
        napi_get_element(env, ret, 1, &b);
        if (napi_get_value_double(env, a, &fd) != napi_ok || napi_get_value_double(env, b, &pos) != napi_ok || fd < 0 || pos < 0) {
          report_bad_result(s, op, "an [fd, position] pair that is not two non-negative numbers");
          break;
        }
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
        bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        bv.buf[0].fd = (int)fd;
        bv.buf[0].pos = (off_t)pos;
        int rc = fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
        (void)rc; /* a failed data reply is answered by libfuse itself */
        return;
      }
      void *data;
      size_t len;
      if (!bytes_of(env, ret, &data, &len)) { report_bad_result(s, op, "neither a Buffer, [fd, position] nor a number"); break; }
      fuse_reply_buf(req, data, len < size ? len : size);
      return;
    }
    case OP_WRITE:
    case OP_COPY_FILE_RANGE: {
      if (get_result(s, op, ret, &r)) break;
      if (r < 0) fuse_reply_err(req, errno_of(r));
      else fuse_reply_write(req, (size_t)r);
      return;
    }
    case OP_LSEEK: {
      if (get_result(s, op, ret, &r)) break;
      if (r < 0) fuse_reply_err(req, errno_of(r));
      else fuse_reply_lseek(req, (off_t)r);
      return;
    }
    case OP_STATFS: {
      if (get_result(s, op, ret, &r)) break;
      if (r < 0) { fuse_reply_err(req, errno_of(r)); return; }
      const double *a = s->io + IO_STATFS;
      struct statvfs sv;
      memset(&sv, 0, sizeof sv);
      sv.f_bsize = (unsigned long)a[0];
      sv.f_frsize = (unsigned long)a[1];
      sv.f_blocks = (fsblkcnt_t)a[2];
      sv.f_bfree = (fsblkcnt_t)a[3];
      sv.f_bavail = (fsblkcnt_t)a[4];
      sv.f_files = (fsfilcnt_t)a[5];
      sv.f_ffree = (fsfilcnt_t)a[6];
      sv.f_favail = (fsfilcnt_t)a[7];
      sv.f_fsid = (unsigned long)a[8];
      sv.f_flag = (unsigned long)a[9];
      sv.f_namemax = (unsigned long)a[10];
      fuse_reply_statfs(req, &sv);
      return;
    }
    case OP_GETXATTR:
    case OP_LISTXATTR: {
      napi_valuetype t;
      napi_typeof(env, ret, &t);
      if (t == napi_number) {
        napi_get_value_double(env, ret, &r);
        fuse_reply_err(req, r < 0 ? errno_of(r) : EIO);
        return;
      }
      void *data;
      size_t len;
      if (!bytes_of(env, ret, &data, &len)) { report_bad_result(s, op, "neither a Buffer nor a number"); break; }
      /* size 0 is the size probe; a value that does not fit is ERANGE, never truncated */
      if (size == 0) fuse_reply_xattr(req, len);
      else if (len > size) fuse_reply_err(req, ERANGE);
      else fuse_reply_buf(req, data, len);
      return;
    }
    case OP_READDIR:
    case OP_READDIRPLUS: {
      napi_valuetype t;
      napi_typeof(env, ret, &t);
      if (t == napi_number) {
        napi_get_value_double(env, ret, &r);
        fuse_reply_err(req, r < 0 ? errno_of(r) : EIO);
        return;
      }
      reply_readdir(s, req, op, size, off, ret);
      return;
    }
    default: {
      /* ops answered with an error code only: unlink rmdir rename flush release fsync
       * releasedir fsyncdir setxattr removexattr access fallocate */
      if (get_result(s, op, ret, &r)) break;
      fuse_reply_err(req, r < 0 ? errno_of(r) : 0);
      return;
    }
  }
  fuse_reply_err(req, EIO);
}

/* ───────────────────────────── dispatch ───────────────────────────── */

static void put_ctx(session_t *s, fuse_req_t req, int slot) {
  const struct fuse_ctx *c = fuse_req_ctx(req);
  double *io = s->io;
  io[IO_REQ] = ++s->next_id;
  io[IO_UID] = c->uid;
  io[IO_GID] = c->gid;
  io[IO_PID] = c->pid;
  io[IO_UMASK] = c->umask;
  io[IO_SLOT] = slot;
}

/*
 * Call the op's handler with argv and answer: at once from its result, or — when it returned
 * undefined — later through reply(). `size`/`off` are kept for the answer (read, xattr and
 * readdir sizes, readdir offsets).
 */
static void dispatch(session_t *s, fuse_req_t req, int op, size_t argc, napi_value *argv, size_t size, off_t off) {
  napi_env env = s->env;
  int slot = reserve_slot(s);
  if (slot < 0) { fuse_reply_err(req, ENOMEM); return; }
  s->requests++;
  put_ctx(s, req, slot);
  napi_value fn = get_ref(env, s->handlers[op]), ret;
  if (napi_call_function(env, undef(env), fn, argc, argv, &ret) != napi_ok) {
    report_exception(s, op);
    fuse_reply_err(req, EIO);
    return;
  }
  napi_valuetype t;
  napi_typeof(env, ret, &t);
  if (t == napi_undefined) {
    pending_t *p = &s->slots[slot];
    take_slot(s, slot);
    p->req = req;
    p->ino = s->cur_ino;
    p->id = s->io[IO_REQ];
    p->op = op;
    p->in_use = 1;
    p->size = size;
    p->off = off;
    s->npending++;
    s->deferred++;
    fuse_req_interrupt_func(req, on_interrupt, (void *)(intptr_t)(slot + 1));
    return;
  }
  finish(s, req, op, size, off, s->cur_ino, ret);
}

#define S_OF(req) ((session_t *)fuse_req_userdata(req))
#define SCOPE_OPEN(s)                       \
  napi_env env = (s)->env;                  \
  napi_handle_scope hs;                     \
  napi_open_handle_scope(env, &hs)
#define SCOPE_CLOSE() napi_close_handle_scope(env, hs)
#define NAME_OR_EILSEQ(var, name)      \
  napi_value var = name_str(env, name); \
  if (!var) {                           \
    fuse_reply_err(req, EILSEQ);        \
    SCOPE_CLOSE();                      \
    return;                             \
  }
#define FH(fi) ((fi) ? num(env, (double)(fi)->fh) : undef(env))

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session_t *s = userdata;
  if (s->max_write && s->max_write < conn->max_write) conn->max_write = s->max_write;
  conn->max_read = s->max_read; /* must equal -o max_read (libfuse 3.14 checks) */
  if (s->max_readahead && s->max_readahead < conn->max_readahead) conn->max_readahead = s->max_readahead;
  if (s->max_background) conn->max_background = s->max_background;
  if (s->congestion_threshold) conn->congestion_threshold = s->congestion_threshold;
  conn->want |= s->want_set & conn->capable;
  conn->want &= ~s->want_clear;
  conn->want &= ~FUSE_CAP_SPLICE_READ; /* request data must land in our JS buffer */
  conn->time_gran = 1;
  s->proto_major = conn->proto_major;
  s->proto_minor = conn->proto_minor;
  s->capable = conn->capable;
  s->want = conn->want;
  s->neg_max_write = conn->max_write;
  s->neg_max_read = conn->max_read;
  s->neg_max_readahead = conn->max_readahead;
  s->initialized = 1;
  if (!s->handlers[OP_INIT]) return;
  SCOPE_OPEN(s);
  napi_value fn = get_ref(env, s->handlers[OP_INIT]), ret;
  if (napi_call_function(env, undef(env), fn, 0, NULL, &ret) != napi_ok) report_exception(s, OP_INIT);
  SCOPE_CLOSE();
}

static void ll_destroy(void *userdata) {
  session_t *s = userdata;
  if (!s->handlers[OP_DESTROY] || s->no_js) return;
  SCOPE_OPEN(s);
  napi_value fn = get_ref(env, s->handlers[OP_DESTROY]), ret;
  if (napi_call_function(env, undef(env), fn, 0, NULL, &ret) != napi_ok) report_exception(s, OP_DESTROY);
  SCOPE_CLOSE();
}

/* ops whose arguments are (ino, name): lookup unlink rmdir removexattr */
static void ino_name_op(fuse_req_t req, int op, fuse_ino_t ino, const char *name) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, name);
  napi_value a[2] = {num(env, (double)ino), n};
  dispatch(s, req, op, 2, a, 0, 0);
  SCOPE_CLOSE();
}

/* ops whose arguments are (ino, fh, a number): release releasedir (flags), fsync fsyncdir (datasync) */
static void ino_fh_num_op(fuse_req_t req, int op, fuse_ino_t ino, struct fuse_file_info *fi, int n) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[3] = {num(env, (double)ino), num(env, (double)fi->fh), num(env, n)};
  dispatch(s, req, op, 3, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  ino_name_op(req, OP_LOOKUP, parent, name);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  js_forget(s, ino, nlookup);
  fuse_reply_none(req);
  SCOPE_CLOSE();
}

/* A batch of forgets (drop_caches sends thousands) in one call into JS: the handler gets a
 * Float64Array of (ino, nlookup) pairs and their count, instead of one napi call per inode. */
static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value ab, arr, ret;
  void *data = NULL;
  if (count > 1 && s->handlers[OP_FORGET] && !s->no_js &&
      napi_create_arraybuffer(env, count * 2 * sizeof(double), &data, &ab) == napi_ok &&
      napi_create_typedarray(env, napi_float64_array, count * 2, ab, 0, &arr) == napi_ok) {
    double *d = data;
    for (size_t i = 0; i < count; i++) {
      d[2 * i] = (double)forgets[i].ino;
      d[2 * i + 1] = (double)forgets[i].nlookup;
    }
    napi_value argv[2] = {arr, num(env, (double)count)};
    if (napi_call_function(env, undef(env), get_ref(env, s->handlers[OP_FORGET]), 2, argv, &ret) != napi_ok) report_exception(s, OP_FORGET);
  } else {
    for (size_t i = 0; i < count; i++) js_forget(s, forgets[i].ino, forgets[i].nlookup);
  }
  fuse_reply_none(req);
  SCOPE_CLOSE();
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[2] = {num(env, (double)ino), FH(fi)};
  dispatch(s, req, OP_GETATTR, 2, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  double *io = s->io;
  io[IO_SA_MODE] = attr->st_mode;
  io[IO_SA_UID] = attr->st_uid;
  io[IO_SA_GID] = attr->st_gid;
  io[IO_SA_SIZE] = (double)attr->st_size;
  io[IO_SA_ATIME] = (double)attr->st_atim.tv_sec;
  io[IO_SA_ATIMENS] = (double)attr->st_atim.tv_nsec;
  io[IO_SA_MTIME] = (double)attr->st_mtim.tv_sec;
  io[IO_SA_MTIMENS] = (double)attr->st_mtim.tv_nsec;
  io[IO_SA_CTIME] = (double)attr->st_ctim.tv_sec;
  io[IO_SA_CTIMENS] = (double)attr->st_ctim.tv_nsec;
  napi_value a[3] = {num(env, (double)ino), num(env, to_set), FH(fi)};
  dispatch(s, req, OP_SETATTR, 3, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[1] = {num(env, (double)ino)};
  dispatch(s, req, OP_READLINK, 1, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, name);
  napi_value a[4] = {num(env, (double)parent), n, num(env, mode), num(env, (double)rdev)};
  dispatch(s, req, OP_MKNOD, 4, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, name);
  napi_value a[3] = {num(env, (double)parent), n, num(env, mode)};
  dispatch(s, req, OP_MKDIR, 3, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  ino_name_op(req, OP_UNLINK, parent, name);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  ino_name_op(req, OP_RMDIR, parent, name);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(t, link);
  NAME_OR_EILSEQ(n, name);
  napi_value a[3] = {t, num(env, (double)parent), n};
  dispatch(s, req, OP_SYMLINK, 3, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, name);
  NAME_OR_EILSEQ(nn, newname);
  napi_value a[5] = {num(env, (double)parent), n, num(env, (double)newparent), nn, num(env, flags)};
  dispatch(s, req, OP_RENAME, 5, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, newname);
  napi_value a[3] = {num(env, (double)ino), num(env, (double)newparent), n};
  dispatch(s, req, OP_LINK, 3, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  s->cur_ino = ino; /* for the release of an open reply nobody took */
  napi_value a[2] = {num(env, (double)ino), num(env, fi->flags)};
  dispatch(s, req, OP_OPEN, 2, a, 0, 0);
  s->cur_ino = 0;
  SCOPE_CLOSE();
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  s->cur_ino = ino;
  napi_value a[2] = {num(env, (double)ino), num(env, fi->flags)};
  dispatch(s, req, OP_OPENDIR, 2, a, 0, 0);
  s->cur_ino = 0;
  SCOPE_CLOSE();
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, name);
  napi_value a[4] = {num(env, (double)parent), n, num(env, mode), num(env, fi->flags)};
  dispatch(s, req, OP_CREATE, 4, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[4] = {num(env, (double)ino), num(env, (double)fi->fh), num(env, (double)size), num(env, (double)off)};
  dispatch(s, req, OP_READ, 4, a, size, off);
  SCOPE_CLOSE();
}

/* Offset of `p` in the receive buffer, or -1 (then the data is copied into a new Buffer). */
static napi_value recv_view_offset(session_t *s, const char *p, size_t size, napi_value *copy) {
  napi_env env = s->env;
  *copy = undef(env);
  if (p >= s->recv && p + size <= s->recv + s->recv_size) return num(env, (double)(p - s->recv));
  void *data;
  napi_create_buffer_copy(env, size, p, &data, copy);
  return num(env, -1);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value copy;
  napi_value where = recv_view_offset(s, buf, size, &copy);
  napi_value a[7] = {num(env, (double)ino), num(env, (double)fi->fh), where, num(env, (double)size), num(env, (double)off), num(env, fi->flags), copy};
  dispatch(s, req, OP_WRITE, 7, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[2] = {num(env, (double)ino), num(env, (double)fi->fh)};
  dispatch(s, req, OP_FLUSH, 2, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ino_fh_num_op(req, OP_RELEASE, ino, fi, fi->flags);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  ino_fh_num_op(req, OP_FSYNC, ino, fi, datasync);
}

static void ll_readdir_common(fuse_req_t req, int op, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[4] = {num(env, (double)ino), num(env, (double)fi->fh), num(env, (double)off), num(env, (double)size)};
  dispatch(s, req, op, 4, a, size, off);
  SCOPE_CLOSE();
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_readdir_common(req, OP_READDIR, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_readdir_common(req, OP_READDIRPLUS, ino, size, off, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ino_fh_num_op(req, OP_RELEASEDIR, ino, fi, fi->flags);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  ino_fh_num_op(req, OP_FSYNCDIR, ino, fi, datasync);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[1] = {num(env, (double)ino)};
  dispatch(s, req, OP_STATFS, 1, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, name);
  napi_value copy;
  napi_value where = recv_view_offset(s, value, size, &copy);
  napi_value a[6] = {num(env, (double)ino), n, where, num(env, (double)size), num(env, flags), copy};
  dispatch(s, req, OP_SETXATTR, 6, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  NAME_OR_EILSEQ(n, name);
  napi_value a[3] = {num(env, (double)ino), n, num(env, (double)size)};
  dispatch(s, req, OP_GETXATTR, 3, a, size, 0);
  SCOPE_CLOSE();
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[2] = {num(env, (double)ino), num(env, (double)size)};
  dispatch(s, req, OP_LISTXATTR, 2, a, size, 0);
  SCOPE_CLOSE();
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  ino_name_op(req, OP_REMOVEXATTR, ino, name);
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[2] = {num(env, (double)ino), num(env, mask)};
  dispatch(s, req, OP_ACCESS, 2, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[5] = {num(env, (double)ino), num(env, (double)fi->fh), num(env, mode), num(env, (double)offset), num(env, (double)length)};
  dispatch(s, req, OP_FALLOCATE, 5, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in, fuse_ino_t ino_out,
                               off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[8] = {num(env, (double)ino_in),  num(env, (double)fi_in->fh),  num(env, (double)off_in),
                     num(env, (double)ino_out), num(env, (double)fi_out->fh), num(env, (double)off_out),
                     num(env, (double)len),     num(env, flags)};
  dispatch(s, req, OP_COPY_FILE_RANGE, 8, a, 0, 0);
  SCOPE_CLOSE();
}

static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  session_t *s = S_OF(req);
  SCOPE_OPEN(s);
  napi_value a[4] = {num(env, (double)ino), num(env, (double)fi->fh), num(env, (double)off), num(env, whence)};
  dispatch(s, req, OP_LSEEK, 4, a, 0, 0);
  SCOPE_CLOSE();
}

/* ───────────────────────────── the request loop ───────────────────────────── */

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  session_t *s = h->data;
  if (s->torn_down) return;
  napi_env env = s->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value resource = get_ref(env, s->resource_ref);
  napi_callback_scope cs;
  /* ticks and microtasks (promise continuations, i.e. async replies) run when this closes */
  napi_open_callback_scope(env, resource, s->actx, &cs);
  int gone = 0;
  s->in_batch = 1;
  for (int i = 0; i < BATCH; i++) {
    int res = fuse_session_receive_buf(s->se, &s->fbuf);
    if (res == -EINTR) continue;
    if (res == -EAGAIN) break;
    if (res <= 0) { gone = 1; break; } /* 0: ENODEV, the file system was unmounted */
    fuse_session_process_buf(s->se, &s->fbuf);
    if (s->nintr) drain_interrupts(s);
    if (fuse_session_exited(s->se) || s->close_requested) { gone = 1; break; }
  }
  s->in_batch = 0;
  if (!gone && status < 0) gone = 1; /* POLLERR: the connection is gone */
  if (gone) teardown(s, s->close_requested);
  napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
}

/* ───────────────────────────── notifications (helper thread) ───────────────────────────── */

/* One notification; `name` is NUL-ended (namelen bytes before it). */
static int notify_one(session_t *s, int kind, uint64_t a, uint64_t b, int64_t off, int64_t len, const char *name, size_t namelen) {
  switch (kind) {
    case 1: return fuse_lowlevel_notify_inval_inode(s->se, a, off, len);
    case 2: return name ? fuse_lowlevel_notify_inval_entry(s->se, a, name, namelen) : -EINVAL;
    case 3: return name ? fuse_lowlevel_notify_delete(s->se, a, b, name, namelen) : -EINVAL;
    default: return -EINVAL;
  }
}

/* A batch, in order: the count of notifications that dropped something, or the first error
 * other than "nothing cached" (-ENOENT); a gone connection (-ENODEV) ends it. */
static int notify_batch(session_t *s, notify_item *it) {
  int hits = 0, err = 0;
  const char *nm = it->name, *end = it->name ? it->name + it->namelen : NULL;
  for (size_t i = 0; i < it->n; i++) {
    const double *v = it->nums + i * 5;
    int kind = (int)v[0];
    const char *name = NULL;
    size_t l = 0;
    if (kind == 2 || kind == 3) {
      if (!nm || nm >= end) { if (!err) err = -EINVAL; continue; }
      name = nm;
      l = strlen(nm);
      nm += l + 1;
    }
    int rc = notify_one(s, kind, (uint64_t)v[1], (uint64_t)v[2], (int64_t)v[3], (int64_t)v[4], name, l);
    if (rc == 0) hits++;
    else if (rc != -ENOENT && !err) err = rc;
    if (rc == -ENODEV) break;
  }
  return err ? err : hits;
}

static void *notify_main(void *arg) {
  session_t *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->q_head && !s->thr_stop) pthread_cond_wait(&s->cv, &s->mu);
    if (s->thr_stop) break;
    notify_item *batch = s->q_head;
    s->q_head = s->q_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    notify_item *it = batch, *last = NULL;
    for (; it; last = it, it = it->next) {
      it->rc = it->kind == 4 ? notify_batch(s, it) : notify_one(s, it->kind, it->a, it->b, it->off, it->len, it->name, it->namelen);
    }
    pthread_mutex_lock(&s->mu);
    if (s->done_tail) s->done_tail->next = batch;
    else s->done_head = batch;
    s->done_tail = last;
    pthread_mutex_unlock(&s->mu);
    napi_call_threadsafe_function(s->tsfn, NULL, napi_tsfn_nonblocking);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Hand completed notifications to JS: onNotified(Float64Array [id, rc, id, rc, …]). */
static void deliver_done(session_t *s) {
  napi_env env = s->env;
  pthread_mutex_lock(&s->mu);
  notify_item *list = s->done_head;
  s->done_head = s->done_tail = NULL;
  pthread_mutex_unlock(&s->mu);
  if (!list) return;
  size_t n = 0;
  for (notify_item *it = list; it; it = it->next) n++;
  napi_value ab, arr;
  void *data;
  if (napi_create_arraybuffer(env, n * 2 * sizeof(double), &data, &ab) == napi_ok &&
      napi_create_typedarray(env, napi_float64_array, n * 2, ab, 0, &arr) == napi_ok) {
    double *d = data;
    size_t i = 0;
    for (notify_item *it = list; it; it = it->next) {
      d[i++] = it->id;
      d[i++] = it->rc;
    }
    napi_value argv[1] = {arr};
    call_cb(s, "onNotified", 1, argv);
  }
  while (list) {
    notify_item *nx = list->next;
    free(list->name);
    free(list->nums);
    free(list);
    list = nx;
  }
}

static void tsfn_call(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)data;
  if (!env) return;
  session_t *s = context;
  if (s->no_js) return;
  deliver_done(s);
}

/* Stop the notification thread; 0 when it could not be joined within `wait_ms` (a write the
 * kernel holds back on a live connection). */
static int stop_notifier(session_t *s, int wait_ms) {
  if (s->thr_started) {
    pthread_mutex_lock(&s->mu);
    s->thr_stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (wait_ms < 0) {
      pthread_join(s->thr, NULL);
    } else {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += wait_ms / 1000;
      until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
      if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
      if (pthread_timedjoin_np(s->thr, NULL, &until) != 0) return 0;
    }
    s->thr_started = 0;
  }
  /* what was still queued is answered ENODEV: the connection is gone */
  pthread_mutex_lock(&s->mu);
  notify_item *q = s->q_head;
  s->q_head = s->q_tail = NULL;
  for (notify_item *it = q; it; it = it->next) it->rc = -ENODEV;
  if (q) {
    notify_item *last = q;
    while (last->next) last = last->next;
    if (s->done_tail) s->done_tail->next = q;
    else s->done_head = q;
    s->done_tail = last;
  }
  pthread_mutex_unlock(&s->mu);
  deliver_done(s);
  return 1;
}

/* ───────────────────────────── teardown ───────────────────────────── */

static void free_session(session_t *s) {
  for (int i = 0; i < OP_COUNT; i++)
    if (s->handlers[i]) napi_delete_reference(s->env, s->handlers[i]);
  if (s->io_ref) napi_delete_reference(s->env, s->io_ref);
  if (s->recv_ref) napi_delete_reference(s->env, s->recv_ref);
  if (s->callbacks_ref) napi_delete_reference(s->env, s->callbacks_ref);
  if (s->resource_ref) napi_delete_reference(s->env, s->resource_ref);
  if (s->actx) napi_async_destroy(s->env, s->actx);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->slots);
  free(s->free_stack);
  free(s->dirbuf);
  free(s->intr);
  free(s->mountpoint);
  free(s);
}

static void unref_session(session_t *s) {
  if (--s->refs == 0) free_session(s);
}

static void on_tsfn_finalized(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  unref_session(data);
}

static void on_poll_closed(uv_handle_t *h) {
  session_t *s = h->data;
  s->poll_closed = 1;
  napi_env env = s->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  call_cb(s, "onUnmounted", 0, NULL);
  napi_close_handle_scope(env, hs);
  if (s->tsfn) {
    /* calls already queued still run (deliver_done) before the finalizer drops its reference */
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
    s->tsfn = NULL;
  }
  unref_session(s);
}

/*
 * End the session: stop polling, answer every pending request (EIO), stop the notifier, close
 * the device and destroy the session (libfuse calls our destroy op). JS hears onUnmounted once
 * the poll handle is closed.
 *
 * After an unmount (ENODEV) the connection is already gone. A forced end (close(), process exit)
 * finds it alive: a notification may then be blocked in the kernel behind a request we will no
 * longer read, so the connection is aborted first — umount2(MNT_FORCE) does that for root — and
 * the mountpoint lazily detached. Without root the thread gets 2 s; if it is still stuck, the
 * session is left behind (leaked) rather than freed under it.
 */
static void teardown(session_t *s, int forced) {
  if (s->torn_down) return;
  if (s->in_batch) {
    /* libfuse is on the stack (a handler asked to close): finish the request first */
    s->close_requested = 1;
    return;
  }
  s->torn_down = 1;
  if (s->mounted) uv_close((uv_handle_t *)&s->poll, on_poll_closed);
  for (int i = 0; i < s->nslots; i++) {
    if (s->slots[i].in_use) {
      fuse_reply_err(s->slots[i].req, EIO);
      release_slot(s, i);
    }
  }
  if (forced && s->mounted && s->mountpoint && geteuid() == 0) {
    if (umount2(s->mountpoint, MNT_FORCE) != 0 && errno != EINVAL && errno != ENOENT) umount2(s->mountpoint, MNT_DETACH);
  }
  if (!stop_notifier(s, forced ? 2000 : -1)) {
    fprintf(stderr, "smhfs_ll: a cache invalidation is stuck in the kernel; leaving the session of %s behind\n", s->mountpoint);
    if (s->se && s->mounted) fuse_session_unmount(s->se);
    s->se = NULL;
    s->refs += 1000; /* never freed: the thread may still use it */
    return;
  }
  if (s->se) {
    if (s->mounted) fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    s->se = NULL;
  }
}

static void finalize_external(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  session_t *s = data;
  if (!s->torn_down) {
    /* the JS side dropped a live session: end it (lazy unmount) rather than leak the mount */
    s->no_js = 1;
    teardown(s, 1);
  }
  unref_session(s);
}

/* ───────────────────────────── exported functions ───────────────────────────── */

static session_t *session_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "smhfs_ll: not a session");
    return NULL;
  }
  return p;
}

static int get_num_prop(napi_env env, napi_value obj, const char *name, double *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_double(env, v, out) == napi_ok;
}

static void build_ops(session_t *s, napi_env env, napi_value handlers, struct fuse_lowlevel_ops *ops) {
  memset(ops, 0, sizeof *ops);
  for (int i = 0; i < OP_COUNT; i++) {
    napi_value fn;
    napi_valuetype t = napi_undefined;
    if (napi_get_named_property(env, handlers, OP_NAMES[i], &fn) == napi_ok) napi_typeof(env, fn, &t);
    if (t == napi_function) napi_create_reference(env, fn, 1, &s->handlers[i]);
  }
  ops->init = ll_init;
  ops->destroy = ll_destroy;
#define SET(OPC, field, fn) if (s->handlers[OPC]) ops->field = fn
  SET(OP_LOOKUP, lookup, ll_lookup);
  SET(OP_FORGET, forget, ll_forget);
  SET(OP_FORGET, forget_multi, ll_forget_multi);
  SET(OP_GETATTR, getattr, ll_getattr);
  SET(OP_SETATTR, setattr, ll_setattr);
  SET(OP_READLINK, readlink, ll_readlink);
  SET(OP_MKNOD, mknod, ll_mknod);
  SET(OP_MKDIR, mkdir, ll_mkdir);
  SET(OP_UNLINK, unlink, ll_unlink);
  SET(OP_RMDIR, rmdir, ll_rmdir);
  SET(OP_SYMLINK, symlink, ll_symlink);
  SET(OP_RENAME, rename, ll_rename);
  SET(OP_LINK, link, ll_link);
  SET(OP_OPEN, open, ll_open);
  SET(OP_READ, read, ll_read);
  SET(OP_WRITE, write, ll_write);
  SET(OP_FLUSH, flush, ll_flush);
  SET(OP_RELEASE, release, ll_release);
  SET(OP_FSYNC, fsync, ll_fsync);
  SET(OP_OPENDIR, opendir, ll_opendir);
  SET(OP_READDIR, readdir, ll_readdir);
  SET(OP_RELEASEDIR, releasedir, ll_releasedir);
  SET(OP_FSYNCDIR, fsyncdir, ll_fsyncdir);
  SET(OP_STATFS, statfs, ll_statfs);
  SET(OP_SETXATTR, setxattr, ll_setxattr);
  SET(OP_GETXATTR, getxattr, ll_getxattr);
  SET(OP_LISTXATTR, listxattr, ll_listxattr);
  SET(OP_REMOVEXATTR, removexattr, ll_removexattr);
  SET(OP_ACCESS, access, ll_access);
  SET(OP_CREATE, create, ll_create);
  SET(OP_FALLOCATE, fallocate, ll_fallocate);
  SET(OP_READDIRPLUS, readdirplus, ll_readdirplus);
  SET(OP_COPY_FILE_RANGE, copy_file_range, ll_copy_file_range);
  SET(OP_LSEEK, lseek, ll_lseek);
#undef SET
}

static napi_value new_recv_buffer(napi_env env, session_t *s) {
  napi_value buf;
  void *data;
  if (napi_create_buffer(env, s->recv_size, &data, &buf) != napi_ok) return NULL;
  if (s->recv_ref) napi_delete_reference(env, s->recv_ref);
  napi_create_reference(env, buf, 1, &s->recv_ref);
  s->recv = data;
  s->fbuf.mem = data;
  s->fbuf.size = s->recv_size;
  s->fbuf.flags = 0;
  return buf;
}

/*
 * mount(mountpoint, args: string[], config, handlers, io: Float64Array, callbacks)
 *   → { session, recv: Buffer, fd }
 * args are fuse_session_new's argv (["smhfs", "-o", "fsname=…,…"]); config holds numbers:
 * entryTimeout attrTimeout negativeTimeout maxRead maxWrite maxReadahead maxBackground
 * congestionThreshold wantSet wantClear.
 */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "smhfs_ll.mount: expected 6 arguments");
    return NULL;
  }
  char mp[4096];
  size_t mplen;
  if (napi_get_value_string_utf8(env, argv[0], mp, sizeof mp, &mplen) != napi_ok || mplen == 0 || mplen >= sizeof mp - 1) {
    napi_throw_type_error(env, NULL, "smhfs_ll.mount: bad mountpoint");
    return NULL;
  }
  uint32_t nargs = 0;
  CHECK(napi_get_array_length(env, argv[1], &nargs));
  char **fargv = calloc(nargs + 1, sizeof(char *));
  for (uint32_t i = 0; i < nargs; i++) {
    napi_value e;
    size_t l;
    napi_get_element(env, argv[1], i, &e);
    napi_get_value_string_utf8(env, e, NULL, 0, &l);
    fargv[i] = malloc(l + 1);
    napi_get_value_string_utf8(env, e, fargv[i], l + 1, &l);
  }

  session_t *s = calloc(1, sizeof *s);
  s->env = env;
  s->fd = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  double d;
  napi_value cfg = argv[2];
  s->entry_timeout = get_num_prop(env, cfg, "entryTimeout", &d) ? d : 1.0;
  s->attr_timeout = get_num_prop(env, cfg, "attrTimeout", &d) ? d : 1.0;
  s->negative_timeout = get_num_prop(env, cfg, "negativeTimeout", &d) ? d : 0.0;
  s->max_read = get_num_prop(env, cfg, "maxRead", &d) ? (unsigned)d : 0;
  s->max_write = get_num_prop(env, cfg, "maxWrite", &d) ? (unsigned)d : 0;
  s->max_readahead = get_num_prop(env, cfg, "maxReadahead", &d) ? (unsigned)d : 0;
  s->max_background = get_num_prop(env, cfg, "maxBackground", &d) ? (unsigned)d : 0;
  s->congestion_threshold = get_num_prop(env, cfg, "congestionThreshold", &d) ? (unsigned)d : 0;
  s->want_set = get_num_prop(env, cfg, "wantSet", &d) ? (unsigned)d : 0;
  s->want_clear = get_num_prop(env, cfg, "wantClear", &d) ? (unsigned)d : 0;

  /* io */
  void *iodata;
  size_t iolen;
  if (!bytes_of(env, argv[4], &iodata, &iolen) || iolen < IO_LEN * sizeof(double)) {
    napi_throw_type_error(env, NULL, "smhfs_ll.mount: io must be a Float64Array of 64");
    goto fail_free;
  }
  s->io = iodata;
  napi_create_reference(env, argv[4], 1, &s->io_ref);
  napi_create_reference(env, argv[5], 1, &s->callbacks_ref);

  struct fuse_lowlevel_ops ops;
  build_ops(s, env, argv[3], &ops);

  struct fuse_args args = FUSE_ARGS_INIT((int)nargs, fargv);
  pthread_mutex_lock(&g_log_mu);
  g_log_len = 0;
  g_log[0] = 0;
  pthread_mutex_unlock(&g_log_mu);
  s->se = fuse_session_new(&args, &ops, sizeof ops, s);
  fuse_opt_free_args(&args);
  if (!s->se) goto fail_libfuse;
  if (fuse_session_mount(s->se, mp) != 0) goto fail_libfuse;
  s->mounted = 1;
  s->mountpoint = strdup(mp);
  s->fd = fuse_session_fd(s->se);
  fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK); /* read → EAGAIN, never blocks the loop */

  /* libfuse reads up to its bufsize into the buffer: FUSE_MAX_MAX_PAGES pages + one header page */
  long page = sysconf(_SC_PAGESIZE);
  s->recv_size = (size_t)(256 * page + 4096);
  napi_value recv = new_recv_buffer(env, s);
  if (!recv) goto fail_mounted;

  napi_value resource, rname;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &s->resource_ref);
  napi_create_string_utf8(env, "smhfs_ll", NAPI_AUTO_LENGTH, &rname);
  napi_async_init(env, resource, rname, &s->actx);

  napi_value tsname;
  napi_create_string_utf8(env, "smhfs_ll.notify", NAPI_AUTO_LENGTH, &tsname);
  if (napi_create_threadsafe_function(env, NULL, NULL, tsname, 0, 1, s, on_tsfn_finalized, s, tsfn_call, &s->tsfn) != napi_ok) goto fail_mounted;
  napi_unref_threadsafe_function(env, s->tsfn);

  uv_loop_t *loop;
  napi_get_uv_event_loop(env, (struct uv_loop_s **)&loop);
  uv_poll_init(loop, &s->poll, s->fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->refs = 3; /* external, poll, threadsafe function */

  for (uint32_t i = 0; i < nargs; i++) free(fargv[i]);
  free(fargv);

  napi_value result, ext, fdv;
  napi_create_object(env, &result);
  napi_create_external(env, s, finalize_external, NULL, &ext);
  napi_set_named_property(env, result, "session", ext);
  napi_set_named_property(env, result, "recv", recv);
  napi_create_int32(env, s->fd, &fdv);
  napi_set_named_property(env, result, "fd", fdv);
  return result;

fail_mounted:
  fuse_session_unmount(s->se);
fail_libfuse : {
  char msg[LOG_KEEP + 256];
  pthread_mutex_lock(&g_log_mu);
  snprintf(msg, sizeof msg, "libfuse could not mount %s%s%s", mp, g_log_len ? ": " : "", g_log);
  pthread_mutex_unlock(&g_log_mu);
  size_t l = strlen(msg);
  while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' ')) msg[--l] = 0;
  napi_throw_error(env, "ELLMOUNT", msg);
}
  if (s->se) fuse_session_destroy(s->se);
  s->se = NULL;
fail_free:
  for (uint32_t i = 0; i < nargs; i++) free(fargv[i]);
  free(fargv);
  s->torn_down = 1;
  free_session(s);
  return NULL;
}

/* reply(session, slot, id, result): answer a pending request; false if it is no longer pending
 * (answered at teardown, or a stale id). */
static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  double slotd, id;
  napi_get_value_double(env, argv[1], &slotd);
  napi_get_value_double(env, argv[2], &id);
  int slot = (int)slotd;
  napi_value res;
  if (s->torn_down || slot < 0 || slot >= s->nslots || !s->slots[slot].in_use || s->slots[slot].id != id) {
    napi_get_boolean(env, false, &res);
    return res;
  }
  pending_t p = s->slots[slot];
  release_slot(s, slot);
  finish(s, p.req, p.op, p.size, p.off, p.ino, argv[3]);
  napi_get_boolean(env, true, &res);
  return res;
}

/* swapRecv(session) → Buffer: the current receive buffer is left to the JS views of the request
 * in progress; libfuse reads the next requests into a new one. */
static napi_value js_swap_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  if (s->torn_down) return undef(env);
  napi_value buf = new_recv_buffer(env, s);
  if (!buf) {
    throw_last(env, "napi_create_buffer");
    return NULL;
  }
  return buf;
}

/* The item's name from a JS string (anything else: no name). */
static void copy_optional_string(napi_env env, napi_value v, notify_item *it) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) return;
  size_t l;
  napi_get_value_string_utf8(env, v, NULL, 0, &l);
  it->name = malloc(l + 1);
  napi_get_value_string_utf8(env, v, it->name, l + 1, &it->namelen);
}

/* Queue `it` for the helper thread (started on first use) and return its id; on failure the item
 * is freed and a JS error thrown. */
static napi_value enqueue_notify(napi_env env, session_t *s, notify_item *it) {
  it->id = ++s->next_notify_id;
  pthread_mutex_lock(&s->mu);
  if (!s->thr_started) {
    if (pthread_create(&s->thr, NULL, notify_main, s) != 0) {
      pthread_mutex_unlock(&s->mu);
      free(it->name);
      free(it->nums);
      free(it);
      napi_throw_error(env, NULL, "smhfs_ll: could not start the notification thread");
      return NULL;
    }
    s->thr_started = 1;
  }
  if (s->q_tail) s->q_tail->next = it;
  else s->q_head = it;
  s->q_tail = it;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return num(env, it->id);
}

/* notify(session, kind, a, b, name|null, off, len) → id. kind 1: inval_inode(a, off, len);
 * 2: inval_entry(a, name); 3: delete(a, b, name). Completion: onNotified([id, rc, …]). */
static napi_value js_notify(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  if (s->torn_down) {
    napi_throw_error(env, "ENODEV", "smhfs_ll: the session has ended");
    return NULL;
  }
  double kind, a, b, off, len;
  napi_get_value_double(env, argv[1], &kind);
  napi_get_value_double(env, argv[2], &a);
  napi_get_value_double(env, argv[3], &b);
  napi_get_value_double(env, argv[5], &off);
  napi_get_value_double(env, argv[6], &len);
  notify_item *it = calloc(1, sizeof *it);
  it->kind = (int)kind;
  it->a = (uint64_t)a;
  it->b = (uint64_t)b;
  it->off = (int64_t)off;
  it->len = (int64_t)len;
  copy_optional_string(env, argv[4], it);
  return enqueue_notify(env, s, it);
}

/* notifyBatch(session, nums: Float64Array n × [kind, a, b, off, len], names: string) → id. The
 * names of the entry notifications (kinds 2 and 3), in order, each followed by "\0" (a file name
 * holds no NUL). One call and one completion for a whole batch (a cascade of 2,000 links is 4,000
 * notifications: issue 15); the helper thread sends them in order. Completion:
 * onNotified([id, rc]) with rc the count that dropped something, or the first error. */
static napi_value js_notify_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  if (s->torn_down) {
    napi_throw_error(env, "ENODEV", "smhfs_ll: the session has ended");
    return NULL;
  }
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  napi_typedarray_type tt;
  size_t count = 0;
  void *data = NULL;
  if (!is_ta || napi_get_typedarray_info(env, argv[1], &tt, &count, &data, NULL, NULL) != napi_ok || tt != napi_float64_array || count % 5 != 0) {
    napi_throw_type_error(env, NULL, "smhfs_ll: notifyBatch needs a Float64Array of [kind, a, b, off, len] items");
    return NULL;
  }
  notify_item *it = calloc(1, sizeof *it);
  it->kind = 4;
  it->n = count / 5;
  it->nums = malloc((count ? count : 1) * sizeof(double));
  if (count) memcpy(it->nums, data, count * sizeof(double));
  copy_optional_string(env, argv[2], it);
  return enqueue_notify(env, s, it);
}

/* close(session): end the session now (answers pending requests EIO, closes the device, lazily
 * unmounts if still mounted). For process exit and forced teardown; a clean unmount goes through
 * the kernel (umount), after which the loop ends the session by itself. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  teardown(s, 1);
  return undef(env);
}

/* info(session) → what init negotiated, and counters. */
static napi_value js_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_of(env, argv[0]);
  if (!s) return NULL;
  napi_value o;
  napi_create_object(env, &o);
#define PUT(k, v) napi_set_named_property(env, o, k, num(env, (double)(v)))
  PUT("initialized", s->initialized);
  PUT("protoMajor", s->proto_major);
  PUT("protoMinor", s->proto_minor);
  PUT("capable", s->capable);
  PUT("want", s->want);
  PUT("maxWrite", s->neg_max_write);
  PUT("maxRead", s->neg_max_read);
  PUT("maxReadahead", s->neg_max_readahead);
  PUT("recvSize", s->recv_size);
  PUT("requests", s->requests);
  PUT("deferred", s->deferred);
  PUT("pending", s->npending);
  PUT("exceptions", s->exceptions);
  PUT("ended", s->torn_down);
#undef PUT
  return o;
}

/* crc32.c: zlib's CRC-32 with PCLMUL, for the disk cache (issue 16) */
napi_value smhfs_js_crc32(napi_env env, napi_callback_info info);
/* pages.c: page buffers from huge-page slabs, O_DIRECT-aligned (issue 16) */
napi_value smhfs_js_alloc_page(napi_env env, napi_callback_info info);
napi_value smhfs_js_aligned(napi_env env, napi_callback_info info);
napi_value smhfs_js_malloc_info(napi_env env, napi_callback_info info);
napi_value smhfs_js_malloc_trim(napi_env env, napi_callback_info info);

static napi_value init_module(napi_env env, napi_value exports) {
  fuse_set_log_func(log_func);
  napi_property_descriptor props[] = {
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
    {"reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL},
    {"swapRecv", NULL, js_swap_recv, NULL, NULL, NULL, napi_default, NULL},
    {"notify", NULL, js_notify, NULL, NULL, NULL, napi_default, NULL},
    {"notifyBatch", NULL, js_notify_batch, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
    {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
    {"crc32", NULL, smhfs_js_crc32, NULL, NULL, NULL, napi_default, NULL},
    {"allocPage", NULL, smhfs_js_alloc_page, NULL, NULL, NULL, napi_default, NULL},
    {"aligned", NULL, smhfs_js_aligned, NULL, NULL, NULL, napi_default, NULL},
    {"mallocInfo", NULL, smhfs_js_malloc_info, NULL, NULL, NULL, napi_default, NULL},
    {"mallocTrim", NULL, smhfs_js_malloc_trim, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value v;
  napi_create_string_utf8(env, fuse_pkgversion(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, exports, "libfuseVersion", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
