// CONV_2D: TFLM reference_integer_ops::ConvPerChannel (NHWC, N = 1, filter OHWI).
#include "el_common.h"

// Checks the words shared by CONV_2D and DEPTHWISE_CONV_2D (same positions up to PAD_LEFT).
int el_check_conv_geometry(const int32_t *a) {
    for (int i = EL_CONV_IN_H; i <= EL_CONV_OUT_C; ++i) {
        if (!el_dim_ok(a[i])) {
            return EL_E_DIM;
        }
    }
    if (!el_geom_ok(a[EL_CONV_K_H], 1) || !el_geom_ok(a[EL_CONV_K_W], 1)
        || !el_geom_ok(a[EL_CONV_STRIDE_H], 1) || !el_geom_ok(a[EL_CONV_STRIDE_W], 1)
        || !el_geom_ok(a[EL_CONV_DIL_H], 1) || !el_geom_ok(a[EL_CONV_DIL_W], 1)
        || !el_geom_ok(a[EL_CONV_PAD_TOP], 0) || !el_geom_ok(a[EL_CONV_PAD_LEFT], 0)) {
        return EL_E_GEOMETRY;
    }
    if (!el_extent_ok(a[EL_CONV_OUT_H], a[EL_CONV_STRIDE_H], a[EL_CONV_K_H], a[EL_CONV_DIL_H],
                      a[EL_CONV_PAD_TOP])
        || !el_extent_ok(a[EL_CONV_OUT_W], a[EL_CONV_STRIDE_W], a[EL_CONV_K_W], a[EL_CONV_DIL_W],
                         a[EL_CONV_PAD_LEFT])) {
        return EL_E_GEOMETRY;
    }
    return EL_OK;
}

int el_conv_2d(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
               int8_t *arena, size_t arena_len) {
    if (nargs != EL_CONV_NARGS) {
        return EL_E_NARGS;
    }
    int st = el_check_conv_geometry(a);
    if (st != EL_OK) {
        return st;
    }
    const int32_t in_h = a[EL_CONV_IN_H], in_w = a[EL_CONV_IN_W], in_c = a[EL_CONV_IN_C];
    const int32_t out_h = a[EL_CONV_OUT_H], out_w = a[EL_CONV_OUT_W], out_c = a[EL_CONV_OUT_C];
    const int32_t k_h = a[EL_CONV_K_H], k_w = a[EL_CONV_K_W];
    const int64_t in_len = el_mul(el_mul(in_h, in_w), in_c);
    const int64_t out_len = el_mul(el_mul(out_h, out_w), out_c);
    const int64_t in_off = a[EL_CONV_IN_OFF], out_off = a[EL_CONV_OUT_OFF];
    if (!el_in_range(in_off, in_len, arena_len) || !el_in_range(out_off, out_len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in_off, in_len, out_off, out_len)) {
        return EL_E_OVERLAP;
    }
    if (!el_is_int8(a[EL_CONV_IN_ZP]) || !el_is_int8(a[EL_CONV_OUT_ZP])) {
        return EL_E_ZERO_POINT;
    }
    const int32_t act_min = a[EL_CONV_ACT_MIN], act_max = a[EL_CONV_ACT_MAX];
    if (!el_clamp_ok(act_min, act_max)) {
        return EL_E_CLAMP;
    }
    const int64_t w_off = a[EL_CONV_W_OFF], b_off = a[EL_CONV_BIAS_OFF];
    if (!el_in_range(w_off, el_mul(el_mul(out_c, k_h), el_mul(k_w, in_c)), blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    st = el_check_bias(blob, blob_len, b_off, out_c);
    if (st == EL_OK) {
        st = el_check_quant(blob, blob_len, a[EL_CONV_MULT_OFF], a[EL_CONV_SHIFT_OFF], out_c);
    }
    if (st != EL_OK) {
        return st;
    }

    const int8_t *input = arena + in_off;
    int8_t *output = arena + out_off;
    const int8_t *filter = (const int8_t *)(blob + w_off);
    const int32_t *bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    const int32_t *mult = (const int32_t *)(const void *)(blob + a[EL_CONV_MULT_OFF]);
    const int32_t *shift = (const int32_t *)(const void *)(blob + a[EL_CONV_SHIFT_OFF]);
    const int32_t in_offset = -a[EL_CONV_IN_ZP], out_zp = a[EL_CONV_OUT_ZP];
    const int32_t stride_h = a[EL_CONV_STRIDE_H], stride_w = a[EL_CONV_STRIDE_W];
    const int32_t dil_h = a[EL_CONV_DIL_H], dil_w = a[EL_CONV_DIL_W];
    const int32_t pad_top = a[EL_CONV_PAD_TOP], pad_left = a[EL_CONV_PAD_LEFT];
    const size_t filter_row = (size_t)k_w * (size_t)in_c;
    const size_t filter_size = (size_t)k_h * filter_row;

    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * stride_w - pad_left;
            for (int32_t co = 0; co < out_c; ++co) {
                uint32_t acc = 0;
                for (int32_t ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = iy0 + ky * dil_h;
                    if (iy < 0 || iy >= in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < k_w; ++kx) {
                        const int32_t ix = ix0 + kx * dil_w;
                        if (ix < 0 || ix >= in_w) {
                            continue;
                        }
                        const int8_t *x = input + ((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)in_c;
                        const int8_t *w = filter + (size_t)co * filter_size + (size_t)ky * filter_row
                            + (size_t)kx * (size_t)in_c;
                        for (int32_t ci = 0; ci < in_c; ++ci) {
                            acc += (uint32_t)((x[ci] + in_offset) * w[ci]);
                        }
                    }
                }
                if (bias != NULL) {
                    acc += (uint32_t)bias[co];
                }
                const int32_t v = el_wadd(el_mbqm_i((int32_t)acc, mult[co], shift[co]), out_zp);
                output[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)out_c + (size_t)co] =
                    (int8_t)el_clamp(v, act_min, act_max);
            }
        }
    }
    return EL_OK;
}
