// DEPTHWISE_CONV_2D: TFLM reference_integer_ops::DepthwiseConvPerChannel (NHWC, N = 1,
// filter [1, k_h, k_w, out_c], out_c = in_c * depth_multiplier).
#include "el_common.h"
EL_HOT

int el_depthwise_conv_2d(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
                         int8_t *arena, size_t arena_len) {
    if (nargs != EL_DW_NARGS) {
        return EL_E_NARGS;
    }
    int st = el_check_conv_geometry(a);
    if (st != EL_OK) {
        return st;
    }
    const int32_t in_h = a[EL_DW_IN_H], in_w = a[EL_DW_IN_W], in_c = a[EL_DW_IN_C];
    const int32_t out_h = a[EL_DW_OUT_H], out_w = a[EL_DW_OUT_W], out_c = a[EL_DW_OUT_C];
    const int32_t k_h = a[EL_DW_K_H], k_w = a[EL_DW_K_W];
    const int32_t depth_mult = a[EL_DW_DEPTH_MULT];
    if (!el_dim_ok(depth_mult) || el_mul(in_c, depth_mult) != out_c) {
        return EL_E_DIM;
    }
    const int64_t in_len = el_mul(el_mul(in_h, in_w), in_c);
    const int64_t out_len = el_mul(el_mul(out_h, out_w), out_c);
    const int64_t in_off = a[EL_DW_IN_OFF], out_off = a[EL_DW_OUT_OFF];
    if (!el_in_range(in_off, in_len, arena_len) || !el_in_range(out_off, out_len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in_off, in_len, out_off, out_len)) {
        return EL_E_OVERLAP;
    }
    if (!el_is_int8(a[EL_DW_IN_ZP]) || !el_is_int8(a[EL_DW_OUT_ZP])) {
        return EL_E_ZERO_POINT;
    }
    const int32_t act_min = a[EL_DW_ACT_MIN], act_max = a[EL_DW_ACT_MAX];
    if (!el_clamp_ok(act_min, act_max)) {
        return EL_E_CLAMP;
    }
    const int64_t w_off = a[EL_DW_W_OFF], b_off = a[EL_DW_BIAS_OFF];
    if (!el_in_range(w_off, el_mul(el_mul(k_h, k_w), out_c), blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    st = el_check_bias(blob, blob_len, b_off, out_c);
    if (st == EL_OK) {
        st = el_check_quant(blob, blob_len, a[EL_DW_MULT_OFF], a[EL_DW_SHIFT_OFF], out_c);
    }
    if (st != EL_OK) {
        return st;
    }

    const int8_t *input = arena + in_off;
    int8_t *output = arena + out_off;
    const int8_t *filter = (const int8_t *)(blob + w_off);
    const int32_t *bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    const int32_t *mult = (const int32_t *)(const void *)(blob + a[EL_DW_MULT_OFF]);
    const int32_t *shift = (const int32_t *)(const void *)(blob + a[EL_DW_SHIFT_OFF]);
    const int32_t in_offset = -a[EL_DW_IN_ZP], out_zp = a[EL_DW_OUT_ZP];
    const int32_t stride_h = a[EL_DW_STRIDE_H], stride_w = a[EL_DW_STRIDE_W];
    const int32_t dil_h = a[EL_DW_DIL_H], dil_w = a[EL_DW_DIL_W];
    const int32_t pad_top = a[EL_DW_PAD_TOP], pad_left = a[EL_DW_PAD_LEFT];

    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * stride_w - pad_left;
            int8_t *y = output + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)out_c;
            for (int32_t co = 0; co < out_c; ++co) {
                const int32_t ci = co / depth_mult;
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
                        const int32_t x = input[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)in_c
                                                + (size_t)ci];
                        const int32_t w = filter[((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)out_c
                                                 + (size_t)co];
                        acc += (uint32_t)((x + in_offset) * w);
                    }
                }
                if (bias != NULL) {
                    acc += (uint32_t)bias[co];
                }
                const int32_t v = el_wadd(el_mbqm_i((int32_t)acc, mult[co], shift[co]), out_zp);
                y[co] = (int8_t)el_clamp(v, act_min, act_max);
            }
        }
    }
    return EL_OK;
}
