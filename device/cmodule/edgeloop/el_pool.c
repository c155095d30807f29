// AVERAGE_POOL_2D / MAX_POOL_2D: TFLM reference_integer_ops::AveragePool / MaxPool (NHWC, N = 1).
#include "el_common.h"

#define EL_POOL_MAX_AREA (INT32_C(1) << 23)  // |sum of a window| < 2^30: no int32 overflow

static int el_pool_check(const int32_t *a, size_t nargs, size_t arena_len, int average) {
    if (nargs != EL_POOL_NARGS) {
        return EL_E_NARGS;
    }
    for (int i = EL_POOL_IN_H; i <= EL_POOL_OUT_W; ++i) {
        if (!el_dim_ok(a[i])) {
            return EL_E_DIM;
        }
    }
    const int32_t in_h = a[EL_POOL_IN_H], in_w = a[EL_POOL_IN_W];
    const int32_t out_h = a[EL_POOL_OUT_H], out_w = a[EL_POOL_OUT_W];
    const int32_t stride_h = a[EL_POOL_STRIDE_H], stride_w = a[EL_POOL_STRIDE_W];
    const int32_t f_h = a[EL_POOL_F_H], f_w = a[EL_POOL_F_W];
    const int32_t pad_top = a[EL_POOL_PAD_TOP], pad_left = a[EL_POOL_PAD_LEFT];
    if (!el_geom_ok(stride_h, 1) || !el_geom_ok(stride_w, 1) || !el_geom_ok(f_h, 1)
        || !el_geom_ok(f_w, 1) || !el_geom_ok(pad_top, 0) || !el_geom_ok(pad_left, 0)
        || !el_extent_ok(out_h, stride_h, f_h, 1, pad_top)
        || !el_extent_ok(out_w, stride_w, f_w, 1, pad_left)) {
        return EL_E_GEOMETRY;
    }
    if (average) {
        // Every window must hold a tap: the first starts before the input ends its filter, the
        // last starts inside the input (window origins grow with the output index).
        if (el_mul(f_h, f_w) > EL_POOL_MAX_AREA || pad_top >= f_h || pad_left >= f_w
            || (int64_t)(out_h - 1) * stride_h - pad_top >= in_h
            || (int64_t)(out_w - 1) * stride_w - pad_left >= in_w) {
            return EL_E_GEOMETRY;
        }
    }
    const int64_t c = a[EL_POOL_C];
    const int64_t in_len = el_mul(el_mul(in_h, in_w), c);
    const int64_t out_len = el_mul(el_mul(out_h, out_w), c);
    const int64_t in_off = a[EL_POOL_IN_OFF], out_off = a[EL_POOL_OUT_OFF];
    if (!el_in_range(in_off, in_len, arena_len) || !el_in_range(out_off, out_len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in_off, in_len, out_off, out_len)) {
        return EL_E_OVERLAP;
    }
    if (!el_clamp_ok(a[EL_POOL_ACT_MIN], a[EL_POOL_ACT_MAX])) {
        return EL_E_CLAMP;
    }
    return EL_OK;
}

static int el_pool(const int32_t *a, size_t nargs, int8_t *arena, size_t arena_len, int average) {
    const int st = el_pool_check(a, nargs, arena_len, average);
    if (st != EL_OK) {
        return st;
    }
    const int32_t in_h = a[EL_POOL_IN_H], in_w = a[EL_POOL_IN_W], depth = a[EL_POOL_C];
    const int32_t out_h = a[EL_POOL_OUT_H], out_w = a[EL_POOL_OUT_W];
    const int32_t stride_h = a[EL_POOL_STRIDE_H], stride_w = a[EL_POOL_STRIDE_W];
    const int32_t f_h = a[EL_POOL_F_H], f_w = a[EL_POOL_F_W];
    const int32_t pad_top = a[EL_POOL_PAD_TOP], pad_left = a[EL_POOL_PAD_LEFT];
    const int32_t act_min = a[EL_POOL_ACT_MIN], act_max = a[EL_POOL_ACT_MAX];
    const int8_t *input = arena + a[EL_POOL_IN_OFF];
    int8_t *y = arena + a[EL_POOL_OUT_OFF];
    const size_t row = (size_t)in_w * (size_t)depth;

    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
        const int32_t fy1 = f_h < in_h - iy0 ? f_h : in_h - iy0;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * stride_w - pad_left;
            const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t fx1 = f_w < in_w - ix0 ? f_w : in_w - ix0;
            for (int32_t ch = 0; ch < depth; ++ch) {
                const int8_t *x = input + (size_t)ch;
                int32_t v;
                if (average) {
                    int32_t acc = 0;
                    int32_t count = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *r = x + (size_t)(iy0 + fy) * row;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            acc += r[(size_t)(ix0 + fx) * (size_t)depth];
                            count++;
                        }
                    }
                    // Round to nearest, half away from zero (count >= 1: checked above).
                    v = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                } else {
                    v = -128;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *r = x + (size_t)(iy0 + fy) * row;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            const int32_t t = r[(size_t)(ix0 + fx) * (size_t)depth];
                            v = t > v ? t : v;
                        }
                    }
                }
                *y++ = (int8_t)el_clamp(v, act_min, act_max);
            }
        }
    }
    return EL_OK;
}

int el_average_pool_2d(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                       int8_t *arena, size_t arena_len) {
    (void)blob;
    (void)blob_len;
    return el_pool(args, nargs, arena, arena_len, 1);
}

int el_max_pool_2d(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                   int8_t *arena, size_t arena_len) {
    (void)blob;
    (void)blob_len;
    return el_pool(args, nargs, arena, arena_len, 0);
}
