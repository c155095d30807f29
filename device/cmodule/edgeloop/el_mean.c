// MEAN over H and W: TFLM reference_ops::QuantizedMeanOrSum, integer path (docs/FORMAT.md).
#include "el_common.h"

int el_mean(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
            int8_t *arena, size_t arena_len) {
    (void)blob;
    (void)blob_len;
    if (nargs != EL_MEAN_NARGS) {
        return EL_E_NARGS;
    }
    const int32_t h = a[EL_MEAN_H], w = a[EL_MEAN_W], c = a[EL_MEAN_C];
    if (!el_dim_ok(h) || !el_dim_ok(w) || !el_dim_ok(c)) {
        return EL_E_DIM;
    }
    const int64_t n = el_mul(h, w);
    const int64_t in_len = el_mul(n, c);
    const int64_t in = a[EL_MEAN_IN_OFF], out = a[EL_MEAN_OUT_OFF];
    if (!el_in_range(in, in_len, arena_len) || !el_in_range(out, c, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in, in_len, out, c)) {
        return EL_E_OVERLAP;
    }
    const int32_t in_zp = a[EL_MEAN_IN_ZP], out_zp = a[EL_MEAN_OUT_ZP];
    if (!el_is_int8(in_zp) || !el_is_int8(out_zp)) {
        return EL_E_ZERO_POINT;
    }
    const int32_t mult = a[EL_MEAN_MULT], shift = a[EL_MEAN_SHIFT];
    if (mult < 0 || shift < -31 || shift > 30) {
        return EL_E_QUANT;
    }
    const int8_t *x = arena + in;
    int8_t *y = arena + out;
    // in_zp * n in int32, wrapped (n < 2^32 here since the input fits the arena)
    const uint32_t zp_n = (uint32_t)in_zp * (uint32_t)n;
    for (int32_t ch = 0; ch < c; ++ch) {
        uint32_t sum = 0;
        const int8_t *p = x + ch;
        for (int64_t i = 0; i < n; ++i) {
            sum += (uint32_t)(int32_t)*p;
            p += c;
        }
        const int32_t v = el_wadd(el_mbqm_i((int32_t)(sum - zp_n), mult, shift), out_zp);
        y[ch] = (int8_t)el_clamp(v, -128, 127);
    }
    return EL_OK;
}
