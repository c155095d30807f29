// CONV_2D: TFLM reference_integer_ops::ConvPerChannel (NHWC, N = 1, filter OHWI).
#include "el_gemm.h"
EL_HOT

typedef struct {
    const int8_t *in;
    int32_t in_h, in_w, in_c, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_w;
    int32_t pad;               // value of padding taps: the input zero point (the gemm folds the offset)
    int32_t last_pix, oy, ox;  // position of the last pixel filled
} el_conv_ctx;

// dst[i * stride] = s[i] for i < n (sign-extending copy into the panel; strides are 1..5 words).
static void el_copy(int32_t *dst, const int8_t *s, int32_t n, int stride) {
    const int8_t *e = s + n;
    if (stride == 3) {  // the armv7m and portable conv tiles
        for (; s + 4 <= e; s += 4, dst += 12) {
            dst[0] = s[0];
            dst[3] = s[1];
            dst[6] = s[2];
            dst[9] = s[3];
        }
    } else if (stride == 4) {  // rv32imc
        for (; s + 4 <= e; s += 4, dst += 16) {
            dst[0] = s[0];
            dst[4] = s[1];
            dst[8] = s[2];
            dst[12] = s[3];
        }
    }
    for (; s < e; ++s, dst += stride) {
        *dst = *s;
    }
}

static void el_fill_value(int32_t *dst, int32_t v, int32_t n, int stride) {
    for (int32_t i = 0; i < n; ++i, dst += stride) {
        *dst = v;
    }
}

// im2col: raw x[pix][k0 .. k0+n) of output pixel `pix`, patch order (ky, kx, ci) as the OHWI filter rows;
// taps outside the input hold the zero point (the gemm folds -zp * sum of weights into the bias, so
// they add w * (zp - zp) = 0, as TFLM skipping them).
static void el_conv_fill(void *vctx, int32_t pix, int32_t k0, int32_t n, int32_t *dst, int stride) {
    el_conv_ctx *c = (el_conv_ctx *)vctx;
    if (pix == c->last_pix + 1) {
        if (++c->ox == c->out_w) {
            c->ox = 0;
            c->oy++;
        }
    } else if (pix != c->last_pix) {
        c->oy = pix / c->out_w;
        c->ox = pix - c->oy * c->out_w;
    }
    c->last_pix = pix;
    const int32_t in_c = c->in_c;
    const int32_t iy0 = c->oy * c->stride_h - c->pad_top, ix0 = c->ox * c->stride_w - c->pad_left;
    int32_t ky = 0, kx = 0, ci = 0;
    if (k0 != 0) {
        const int32_t tap = k0 / in_c;
        ci = k0 - tap * in_c;
        ky = tap / c->k_w;
        kx = tap - ky * c->k_w;
    }
    while (n > 0) {
        const int32_t cnt = in_c - ci < n ? in_c - ci : n;
        const int32_t iy = iy0 + ky * c->dil_h, ix = ix0 + kx * c->dil_w;
        if (iy >= 0 && iy < c->in_h && ix >= 0 && ix < c->in_w) {
            el_copy(dst, c->in + ((size_t)iy * (size_t)c->in_w + (size_t)ix) * (size_t)in_c + (size_t)ci, cnt,
                    stride);
        } else {
            el_fill_value(dst, c->pad, cnt, stride);
        }
        dst += cnt * stride;
        n -= cnt;
        ci = 0;
        if (++kx == c->k_w) {
            kx = 0;
            ++ky;
        }
    }
}

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
    // patch size and pixel count index int32 loops (any buffer they fit in is far smaller)
    if (el_mul(el_mul(k_h, k_w), in_c) > INT32_MAX || el_mul(out_h, out_w) > INT32_MAX) {
        return EL_E_DIM;
    }
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

    el_conv_ctx ctx;
    ctx.in = arena + in_off;
    ctx.in_h = in_h;
    ctx.in_w = in_w;
    ctx.in_c = in_c;
    ctx.k_w = k_w;
    ctx.stride_h = a[EL_CONV_STRIDE_H];
    ctx.stride_w = a[EL_CONV_STRIDE_W];
    ctx.dil_h = a[EL_CONV_DIL_H];
    ctx.dil_w = a[EL_CONV_DIL_W];
    ctx.pad_top = a[EL_CONV_PAD_TOP];
    ctx.pad_left = a[EL_CONV_PAD_LEFT];
    ctx.out_w = out_w;
    ctx.pad = a[EL_CONV_IN_ZP];
    ctx.last_pix = -1;
    ctx.oy = 0;
    ctx.ox = -1;
    el_gemm_t g;
    g.w = (const int8_t *)(blob + w_off);  // OHWI: row co is the [k_h, k_w, in_c] patch order
    g.rows = out_c;
    g.k = k_h * k_w * in_c;
    g.bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    g.mult = (const int32_t *)(const void *)(blob + a[EL_CONV_MULT_OFF]);
    g.shift = (const int32_t *)(const void *)(blob + a[EL_CONV_SHIFT_OFF]);
    g.per_channel = 1;
    g.out_zp = a[EL_CONV_OUT_ZP];
    g.act_min = act_min;
    g.act_max = act_max;
    g.out = arena + out_off;
    g.npix = out_h * out_w;
    g.fill = el_conv_fill;
    g.ctx = &ctx;
    g.fold = 1;
    g.in_offset = -a[EL_CONV_IN_ZP];
    el_gemm_run(&g);
    return EL_OK;
}
