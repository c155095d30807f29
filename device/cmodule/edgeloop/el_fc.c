// FULLY_CONNECTED: TFLM reference_integer_ops::FullyConnected (per-tensor or per-channel).
#include "el_gemm.h"
EL_HOT

typedef struct {
    const int8_t *x;  // [batches][k]
    int32_t k;
    int32_t offset;   // -input zero point
} el_fc_ctx;

static void el_fc_fill(void *vctx, int32_t pix, int32_t k0, int32_t n, int32_t *dst, int stride) {
    const el_fc_ctx *c = (const el_fc_ctx *)vctx;
    const int8_t *x = c->x + (size_t)pix * (size_t)c->k + (size_t)k0, *xe = x + n;
    const int32_t offset = c->offset;
    if (stride == 1) {
        for (; x + 4 <= xe; x += 4, dst += 4) {
            dst[0] = x[0] + offset;
            dst[1] = x[1] + offset;
            dst[2] = x[2] + offset;
            dst[3] = x[3] + offset;
        }
        while (x < xe) {
            *dst++ = *x++ + offset;
        }
        return;
    }
    for (int32_t i = 0; i < n; ++i) {
        dst[i * stride] = x[i] + offset;
    }
}

int el_fully_connected(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
                       int8_t *arena, size_t arena_len) {
    if (nargs != EL_FC_NARGS) {
        return EL_E_NARGS;
    }
    const int32_t batches = a[EL_FC_BATCHES];
    const int32_t depth = a[EL_FC_IN_FEATURES];
    const int32_t units = a[EL_FC_OUT_FEATURES];
    const int32_t nq = a[EL_FC_N_QUANT];
    if (!el_dim_ok(batches) || !el_dim_ok(depth) || !el_dim_ok(units)) {
        return EL_E_DIM;
    }
    const int64_t in_len = el_mul(batches, depth);
    const int64_t out_len = el_mul(batches, units);
    const int64_t in_off = a[EL_FC_IN_OFF];
    const int64_t out_off = a[EL_FC_OUT_OFF];
    if (!el_in_range(in_off, in_len, arena_len) || !el_in_range(out_off, out_len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in_off, in_len, out_off, out_len)) {
        return EL_E_OVERLAP;
    }
    if (!el_is_int8(a[EL_FC_IN_ZP]) || !el_is_int8(a[EL_FC_OUT_ZP])) {
        return EL_E_ZERO_POINT;
    }
    const int32_t act_min = a[EL_FC_ACT_MIN];
    const int32_t act_max = a[EL_FC_ACT_MAX];
    if (!el_clamp_ok(act_min, act_max)) {
        return EL_E_CLAMP;
    }
    if (nq != 1 && nq != units) {
        return EL_E_QUANT;
    }
    const int64_t w_off = a[EL_FC_W_OFF];
    const int64_t b_off = a[EL_FC_BIAS_OFF];
    if (!el_in_range(w_off, el_mul(units, depth), blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    int st = el_check_bias(blob, blob_len, b_off, units);
    if (st == EL_OK) {
        st = el_check_quant(blob, blob_len, a[EL_FC_MULT_OFF], a[EL_FC_SHIFT_OFF], nq);
    }
    if (st != EL_OK) {
        return st;
    }

    el_fc_ctx ctx = {arena + in_off, depth, -a[EL_FC_IN_ZP]};
    el_gemm_t g;
    g.w = (const int8_t *)(blob + w_off);
    g.rows = units;
    g.k = depth;
    g.bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    g.mult = (const int32_t *)(const void *)(blob + a[EL_FC_MULT_OFF]);
    g.shift = (const int32_t *)(const void *)(blob + a[EL_FC_SHIFT_OFF]);
    g.per_channel = nq != 1;
    g.out_zp = a[EL_FC_OUT_ZP];
    g.act_min = act_min;
    g.act_max = act_max;
    g.out = arena + out_off;
    g.npix = batches;
    g.fill = el_fc_fill;
    g.ctx = &ctx;
    g.fold = 0;
    g.in_offset = 0;
    el_gemm_run(&g);
    return EL_OK;
}
