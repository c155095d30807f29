// ADD: TFLM reference_integer_ops::Add for int8, equal shapes (no broadcasting).
#include "el_common.h"

int el_add(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
           int8_t *arena, size_t arena_len) {
    (void)blob;
    (void)blob_len;
    if (nargs != EL_ADD_NARGS) {
        return EL_E_NARGS;
    }
    const int32_t size = a[EL_ADD_SIZE];
    if (!el_dim_ok(size)) {
        return EL_E_DIM;
    }
    const int64_t in1 = a[EL_ADD_IN1_OFF], in2 = a[EL_ADD_IN2_OFF], out = a[EL_ADD_OUT_OFF];
    if (!el_in_range(in1, size, arena_len) || !el_in_range(in2, size, arena_len)
        || !el_in_range(out, size, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in1, size, out, size) || el_overlap(in2, size, out, size)) {
        return EL_E_OVERLAP;
    }
    if (!el_is_int8(a[EL_ADD_IN1_ZP]) || !el_is_int8(a[EL_ADD_IN2_ZP]) || !el_is_int8(a[EL_ADD_OUT_ZP])) {
        return EL_E_ZERO_POINT;
    }
    const int32_t act_min = a[EL_ADD_ACT_MIN], act_max = a[EL_ADD_ACT_MAX];
    if (!el_clamp_ok(act_min, act_max)) {
        return EL_E_CLAMP;
    }
    const int32_t left_shift = a[EL_ADD_LEFT_SHIFT];
    const int32_t m1 = a[EL_ADD_IN1_MULT], s1 = a[EL_ADD_IN1_SHIFT];
    const int32_t m2 = a[EL_ADD_IN2_MULT], s2 = a[EL_ADD_IN2_SHIFT];
    const int32_t mo = a[EL_ADD_OUT_MULT], so = a[EL_ADD_OUT_SHIFT];
    if (left_shift < 0 || left_shift > 31 || m1 < 0 || m2 < 0 || mo < 0
        || s1 < -31 || s1 > 0 || s2 < -31 || s2 > 0 || so < -31 || so > 0) {
        return EL_E_QUANT;
    }

    const int8_t *x1 = arena + in1;
    const int8_t *x2 = arena + in2;
    int8_t *y = arena + out;
    const int32_t off1 = -a[EL_ADD_IN1_ZP], off2 = -a[EL_ADD_IN2_ZP], out_zp = a[EL_ADD_OUT_ZP];
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v1 = el_wshl(off1 + x1[i], left_shift);
        const int32_t v2 = el_wshl(off2 + x2[i], left_shift);
        const int32_t raw_sum = el_wadd(el_mbqm_smaller_i(v1, m1, s1), el_mbqm_smaller_i(v2, m2, s2));
        const int32_t raw_out = el_wadd(el_mbqm_smaller_i(raw_sum, mo, so), out_zp);
        y[i] = (int8_t)el_clamp(raw_out, act_min, act_max);
    }
    return EL_OK;
}
