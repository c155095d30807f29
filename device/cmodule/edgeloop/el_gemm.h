// Shared core of FULLY_CONNECTED and CONV_2D (internal): out[p][r] = requant(bias[r] + sum_k x'[p][k] * w[r][k])
// for `npix` activation vectors x' (x - input zero point, built on demand by a fill callback: a batch row
// for FC, an im2col patch for conv) against `rows` int8 weight rows of length k.
//
// TFLM accumulates in int32 with wrap-around; integer addition is associative modulo 2^32, so any
// order of the products gives TFLM's exact sum. The kernels use that freedom: register tiles of
// R rows x P pixels, k-chunks, and on Cortex-M3 two weight rows packed in one SMLAL operand.
#ifndef EL_GEMM_H
#define EL_GEMM_H

#include "el_common.h"

// Fills dst[i * stride] = x'[pix][k0 + i] for i < n (int32; padding taps of a conv are 0), or with
// `fold` the raw inputs x (padding taps = the input zero point). The callback may keep state in *ctx
// (pixels are mostly asked for in order).
typedef void (*el_fill_fn)(void *ctx, int32_t pix, int32_t k0, int32_t n, int32_t *dst, int stride);

typedef struct {
    const int8_t *w;            // weights [rows][k]
    int32_t rows, k;
    const int32_t *bias;        // [rows] or NULL
    const int32_t *mult, *shift;
    int per_channel;            // mult/shift have `rows` entries (else 1)
    int32_t out_zp, act_min, act_max;
    int8_t *out;                // out[pix * rows + r]
    int32_t npix;
    el_fill_fn fill;
    void *ctx;
    // fold: the panel holds raw x and the gemm adds in_offset * sum_k w[r][k] to each bias instead
    // (exact modulo 2^32: padding taps filled with the zero point contribute w * (zp + in_offset) = 0).
    // Worth it when each weight row meets many pixels (CONV_2D); costs one pass over the weights.
    int fold;
    int32_t in_offset;
} el_gemm_t;

void el_gemm_run(const el_gemm_t *g);

// ---- requantization: TFLM MultiplyByQuantizedMultiplier as one 64-bit add and shift ----
// With x = acc << left and e = right shift (shift = left - e, at most one non-zero):
//   MBQM(acc) = floor((x*m + K - [e > 0 and x < 0] * 2^31) / 2^(31 + e)),  K = 2^30 + (e ? 2^(30+e) : 0).
// (SaturatingRoundingDoublingHighMul is floor((x*m + 2^30) / 2^31) for m >= 0; RoundingDivideByPOT(y, e)
// is floor((y + 2^(e-1) - [y < 0]) / 2^e); nested floor divisions merge, and y < 0 iff x*m + 2^30 < 0,
// which for e > 0 may be replaced by x < 0 because y = 0 gives 0 either way.)
// For e >= 1 the shift by 31 + e is the high word shifted right by e - 1.
// One table entry per output channel (the layout the armv7m assembly reads with one LDM):
typedef struct {
    int32_t bias;      // added to the accumulator first (0 without bias)
    int32_t mult;      // >= 0
    uint32_t k_lo;     // K, low and high word
    int32_t k_hi;
    int32_t sh;        // e - 1 (e >= 1); -1 when e == 0: then `left` = shift, applied before the multiply
} el_rqe_t;

EL_INLINE void el_rqe_prepare(el_rqe_t *q, int32_t bias, int32_t mult, int32_t shift) {
    // K = 2^30 + 2^(30+e) for e >= 1 (no 64-bit shifts); e == 0 entries keep the left shift in k_lo
    const int32_t e = -shift;
    q->bias = bias;
    q->mult = mult;
    q->k_lo = e >= 2 ? UINT32_C(0x40000000) : e == 1 ? UINT32_C(0xC0000000) : (uint32_t)shift;
    q->k_hi = e >= 2 ? (int32_t)(UINT32_C(1) << (e - 2)) : 0;
    q->sh = e >= 1 ? e - 1 : -1;
}

// MultiplyByQuantizedMultiplier(acc + bias) from a table entry.
EL_INLINE int32_t el_rqe_apply(int32_t acc, const el_rqe_t *q) {
    const int32_t x = el_wadd(acc, q->bias);
    if (q->sh >= 0) {
        const int64_t k = (int64_t)(((uint64_t)(uint32_t)q->k_hi << 32) | q->k_lo);
        // x*m + K - [x < 0] * 2^31: the correction is (x >> 31) * 2^31
        const int64_t z = (int64_t)x * q->mult + k + (int64_t)((uint64_t)(int64_t)(x >> 31) << 31);
        return (int32_t)(z >> 32) >> q->sh;
    }
    return (int32_t)(((int64_t)el_wshl(x, (int)q->k_lo) * q->mult + (INT64_C(1) << 30)) >> 31);
}

#endif // EL_GEMM_H
