/* C side of src/kernels/zstd.ts: one compression and one decompression
 * context per instance, reused across calls, and the buffer allocator the
 * binding uses for inputs and outputs. Everything lives in this module's
 * linear memory; sizes and results are u32 (wasm32 size_t). A result above
 * zs_error_min() is a zstd error code (name: zs_error_name). */
#include <stddef.h>
#include <stdlib.h>

#define ZSTD_STATIC_LINKING_ONLY
#include "zstd.h"

#define EXPORT(name) __attribute__((export_name(#name)))

static ZSTD_CCtx *cctx;
static ZSTD_DCtx *dctx;

/* Returned when a context cannot be allocated (zstd's memory_allocation). */
static size_t no_memory(void) { return (size_t)-ZSTD_error_memory_allocation; }

EXPORT(zs_malloc) void *zs_malloc(size_t n) { return malloc(n); }
EXPORT(zs_free) void zs_free(void *p) { free(p); }

/* One frame: content size declared, no checksum, no dictionary ID. */
EXPORT(zs_compress)
size_t zs_compress(int level, const void *src, size_t src_len, void *dst, size_t dst_cap) {
  if (cctx == NULL && (cctx = ZSTD_createCCtx()) == NULL) return no_memory();
  return ZSTD_compressCCtx(cctx, dst, dst_cap, src, src_len, level);
}

EXPORT(zs_decompress)
size_t zs_decompress(const void *src, size_t src_len, void *dst, size_t dst_cap) {
  if (dctx == NULL && (dctx = ZSTD_createDCtx()) == NULL) return no_memory();
  return ZSTD_decompressDCtx(dctx, dst, dst_cap, src, src_len);
}

EXPORT(zs_compress_bound) size_t zs_compress_bound(size_t n) { return ZSTD_compressBound(n); }
EXPORT(zs_is_error) int zs_is_error(size_t code) { return ZSTD_isError(code); }
EXPORT(zs_error_name) const char *zs_error_name(size_t code) { return ZSTD_getErrorName(code); }
EXPORT(zs_version) unsigned zs_version(void) { return ZSTD_versionNumber(); }

/* Bytes held by the contexts (tests and diagnostics). */
EXPORT(zs_contexts_size)
size_t zs_contexts_size(void) { return ZSTD_sizeof_CCtx(cctx) + ZSTD_sizeof_DCtx(dctx); }

/* Drops both contexts (frees their tables; the next call recreates them). */
EXPORT(zs_reset)
void zs_reset(void) {
  ZSTD_freeCCtx(cctx);
  ZSTD_freeDCtx(dctx);
  cctx = NULL;
  dctx = NULL;
}
