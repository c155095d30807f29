// FULLY_CONNECTED: TFLM reference_integer_ops::FullyConnected (per-tensor or per-channel).
#include "el_common.h"

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

    const int32_t *mult = (const int32_t *)(const void *)(blob + a[EL_FC_MULT_OFF]);
    const int32_t *shift = (const int32_t *)(const void *)(blob + a[EL_FC_SHIFT_OFF]);
    const int8_t *weights = (const int8_t *)(blob + w_off);
    const int32_t *bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    const int32_t in_offset = -a[EL_FC_IN_ZP];
    const int32_t out_zp = a[EL_FC_OUT_ZP];
    const int per_channel = nq != 1;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = arena + in_off + (int64_t)b * depth;
        int8_t *y = arena + out_off + (int64_t)b * units;
        const int8_t *w = weights;
        for (int32_t c = 0; c < units; ++c) {
            // Unsigned accumulation: TFLM's int32 wrap-around, without signed-overflow UB.
            uint32_t acc = 0;
            for (int32_t k = 0; k < depth; ++k) {
                acc += (uint32_t)((x[k] + in_offset) * w[k]);
            }
            w += depth;
            if (bias != NULL) {
                acc += (uint32_t)bias[c];
            }
            const int q = per_channel ? c : 0;
            const int32_t v = el_wadd(el_mbqm_i((int32_t)acc, mult[q], shift[q]), out_zp);
            y[c] = (int8_t)el_clamp(v, act_min, act_max);
        }
    }
    return EL_OK;
}
