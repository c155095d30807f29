// Validation helpers shared by the kernels (internal; not part of the API in el_kernels.h).
// Every size is computed in 64 bits from words already checked to be small, so no product overflows.
#ifndef EL_COMMON_H
#define EL_COMMON_H

#include "el_kernels.h"
#include "el_fixedpoint.h"

// Files with inner loops build at -O2 even where the rest is built for size (the natmods use -Os).
#if defined(__GNUC__) && !defined(__clang__)
#define EL_HOT _Pragma("GCC optimize(\"O2\")")
#else
#define EL_HOT
#endif

#define EL_MAX_DIM 0x1000000    // 16 M elements along one axis is beyond any microcontroller
#define EL_MAX_GEOM 0xFFFF      // strides, dilations, paddings, filter sizes (tensor dims are u16)
#define EL_MAX_EXTENT 0x40000000  // bound on any input coordinate a 2-D op computes (fits int32)

// Sizes: products of validated non-negative words, saturating at EL_SIZE_CAP (far beyond any buffer,
// so a saturated size always fails the range checks) and never overflowing int64.
#define EL_SIZE_CAP (INT64_C(1) << 40)
EL_INLINE int64_t el_mul(int64_t a, int64_t b) {  // no 64-bit division (libgcc on 32-bit cores)
    if (a <= 0 || b <= 0) {
        return 0;
    }
    a = a > EL_SIZE_CAP ? EL_SIZE_CAP : a;
    b = b > EL_SIZE_CAP ? EL_SIZE_CAP : b;
    if ((a >> 20) != 0 && (b >> 20) != 0) {  // both >= 2^20: the product is >= 2^40
        return EL_SIZE_CAP;
    }
    const int64_t p = a * b;                 // < 2^20 * 2^40: no overflow
    return p > EL_SIZE_CAP ? EL_SIZE_CAP : p;
}

EL_INLINE int el_in_range(int64_t off, int64_t len, size_t limit) {
    return off >= 0 && len >= 0 && off + len <= (int64_t)limit;
}

EL_INLINE int el_aligned4(const uint8_t *base, int64_t off) {
    return (((uintptr_t)base + (uintptr_t)off) & 3u) == 0;
}

EL_INLINE int el_is_int8(int32_t v) {
    return v >= -128 && v <= 127;
}

EL_INLINE int el_dim_ok(int32_t d) {
    return d >= 1 && d <= EL_MAX_DIM;
}

EL_INLINE int el_geom_ok(int32_t v, int32_t lo) {
    return v >= lo && v <= EL_MAX_GEOM;
}

// Two arena spans [a, a+na) and [b, b+nb) share a byte.
EL_INLINE int el_overlap(int64_t a, int64_t na, int64_t b, int64_t nb) {
    return a < b + nb && b < a + na;
}

EL_INLINE int el_clamp_ok(int32_t lo, int32_t hi) {
    return el_is_int8(lo) && el_is_int8(hi) && lo <= hi;
}

// The largest coordinate a window op touches along one axis stays far inside int32:
// (out - 1) * stride + (k - 1) * dilation + pad.
EL_INLINE int el_extent_ok(int32_t out, int32_t stride, int32_t k, int32_t dilation, int32_t pad) {
    return (int64_t)(out - 1) * stride + (int64_t)(k - 1) * dilation + pad <= EL_MAX_EXTENT;
}

// Per-channel multiplier / shift arrays: `n` int32 each, in the blob, 4-aligned, multiplier >= 0 and
// shift in [-31, 30] (TFLite's QuantizeMultiplier range). In el_kernels.c.
int el_check_quant(const uint8_t *blob, size_t blob_len, int64_t m_off, int64_t s_off, int64_t n);

// Optional int32 bias of `n` values (-1: none).
EL_INLINE int el_check_bias(const uint8_t *blob, size_t blob_len, int64_t b_off, int64_t n) {
    if (b_off == -1) {
        return EL_OK;
    }
    if (!el_in_range(b_off, 4 * n, blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    return el_aligned4(blob, b_off) ? EL_OK : EL_E_ALIGN;
}

EL_INLINE int32_t el_clamp(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

// CONV_2D / DEPTHWISE_CONV_2D: dims, strides, dilations, paddings (words IN_H .. PAD_LEFT, which
// sit at the same positions in both layouts). In el_conv.c.
int el_check_conv_geometry(const int32_t *args);

#endif // EL_COMMON_H
