// libFuzzer harness for every edgeloop kernel entry point (build and run: tests/fuzz/fuzz.py).
//
// Input layout (little-endian):
//   byte 0      kernel index (mod the number of kernels, order of KERNELS below)
//   byte 1      number of argument words (0..63)
//   bytes 2-3   blob length (capped at EL_FUZZ_MAX_BUF)
//   bytes 4-5   arena length (capped at EL_FUZZ_MAX_BUF)
//   byte 6      blob misalignment 0..3 (bits 0-1)
//   byte 7      reserved
//   then the argument words (4 bytes each), then the blob bytes, then the arena bytes; whatever the
//   input does not cover is zero.
// Blob and arena are separate heap blocks of exactly their length, so AddressSanitizer flags any
// access outside them. Properties checked beyond "no crash, no UB": the status is a known code, and
// a rejected call (every error but the data-dependent EL_E_RANGE) leaves the arena untouched.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "el_kernels.h"

#define EL_FUZZ_MAX_BUF 16384

typedef int (*el_kernel_fn)(const int32_t *, size_t, const uint8_t *, size_t, int8_t *, size_t);

static const el_kernel_fn KERNELS[] = {
    el_fully_connected, el_conv_2d, el_depthwise_conv_2d, el_average_pool_2d, el_max_pool_2d,
    el_add, el_softmax, el_logistic, el_mean, el_fully_connected_sparse,
};
#define N_KERNELS (sizeof(KERNELS) / sizeof(KERNELS[0]))

static size_t take(const uint8_t **d, size_t *n, uint8_t *dst, size_t want) {
    size_t k = want < *n ? want : *n;
    memcpy(dst, *d, k);
    memset(dst + k, 0, want - k);
    *d += k;
    *n -= k;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 8) {
        return 0;
    }
    const el_kernel_fn kernel = KERNELS[data[0] % N_KERNELS];
    const size_t nargs = data[1] % 64;
    size_t blob_len = (size_t)data[2] | (size_t)data[3] << 8;
    size_t arena_len = (size_t)data[4] | (size_t)data[5] << 8;
    blob_len = blob_len > EL_FUZZ_MAX_BUF ? EL_FUZZ_MAX_BUF : blob_len;
    arena_len = arena_len > EL_FUZZ_MAX_BUF ? EL_FUZZ_MAX_BUF : arena_len;
    const size_t align = data[6] & 3;
    data += 8;
    size -= 8;

    int32_t *args = (int32_t *)malloc(nargs * 4 + 4);
    uint8_t *words = (uint8_t *)malloc(nargs * 4 + 4);
    take(&data, &size, words, nargs * 4);
    for (size_t i = 0; i < nargs; ++i) {
        const uint8_t *w = words + 4 * i;
        args[i] = (int32_t)((uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 | (uint32_t)w[3] << 24);
    }
    uint8_t *blob_block = (uint8_t *)malloc(blob_len + align + 1);
    uint8_t *blob = blob_block + align;
    take(&data, &size, blob, blob_len);
    int8_t *arena = (int8_t *)malloc(arena_len + 1);
    int8_t *before = (int8_t *)malloc(arena_len + 1);
    take(&data, &size, (uint8_t *)arena, arena_len);
    memcpy(before, arena, arena_len);

    // nargs == 0 passes a pointer to a 4-byte block: kernels must check nargs before reading words.
    const int status = kernel(args, nargs, blob, blob_len, arena, arena_len);
    if (status < 0 || status >= EL_E_COUNT_) {
        abort();
    }
    if (status != EL_OK && status != EL_E_RANGE && memcmp(before, arena, arena_len) != 0) {
        abort();  // a rejected call wrote to the arena
    }
    free(args);
    free(words);
    free(blob_block);
    free(arena);
    free(before);
    return 0;
}
