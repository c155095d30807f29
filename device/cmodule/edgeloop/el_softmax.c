// SOFTMAX: TFLM reference_ops::Softmax, int8 input, int8 output (scale 1/256, zero point -128),
// gemmlowp fixed point: differences in Q5.26, sum of exps in Q12.19.
#include "el_common.h"

#define EL_SM_SCALED_DIFF_INTEGER_BITS 5
#define EL_SM_ACCUMULATION_INTEGER_BITS 12

int el_softmax(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
               int8_t *arena, size_t arena_len) {
    (void)blob;
    (void)blob_len;
    if (nargs != EL_SM_NARGS) {
        return EL_E_NARGS;
    }
    const int32_t rows = a[EL_SM_ROWS], depth = a[EL_SM_DEPTH];
    if (!el_dim_ok(rows) || !el_dim_ok(depth) || depth > EL_SM_MAX_DEPTH) {
        return EL_E_DIM;
    }
    const int64_t len = el_mul(rows, depth);
    const int64_t in = a[EL_SM_IN_OFF], out = a[EL_SM_OUT_OFF];
    if (!el_in_range(in, len, arena_len) || !el_in_range(out, len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in, len, out, len)) {
        return EL_E_OVERLAP;
    }
    const int32_t mult = a[EL_SM_INPUT_MULT], left_shift = a[EL_SM_INPUT_LEFT_SHIFT];
    const int32_t diff_min = a[EL_SM_DIFF_MIN];
    if (mult < 0 || left_shift < 0 || left_shift > 31) {
        return EL_E_QUANT;
    }
    if (diff_min > 0) {
        return EL_E_PARAM;
    }

    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = arena + in + (int64_t)r * depth;
        int8_t *y = arena + out + (int64_t)r * depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        int32_t sum_of_exps = 0;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = x[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t scaled = el_mbqm_greater_i(diff, mult, left_shift);
                const int32_t e = el_exp_on_negative_values(scaled, EL_SM_SCALED_DIFF_INTEGER_BITS);
                sum_of_exps = el_wadd(sum_of_exps, el_rdbypot_i(e, EL_SM_ACCUMULATION_INTEGER_BITS));
            }
        }
        if (sum_of_exps <= 0) {
            return EL_E_RANGE;  // cannot happen with valid parameters (the max contributes 1.0)
        }
        int num_bits_over_unit;
        const int32_t shifted_scale =
            el_get_reciprocal(sum_of_exps, EL_SM_ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
        const int exponent = num_bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            return EL_E_RANGE;  // TFLM's TFLITE_CHECK(0 <= exponent && exponent <= 31)
        }
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = x[c] - max_in_row;
            int32_t v = -128;
            if (diff >= diff_min) {
                const int32_t scaled = el_mbqm_greater_i(diff, mult, left_shift);
                const int32_t e = el_exp_on_negative_values(scaled, EL_SM_SCALED_DIFF_INTEGER_BITS);
                const int32_t unsat = el_rdbypot_i(el_srdhm_i(shifted_scale, e), exponent);
                v = el_clamp(el_wsub(unsat, 128), -128, 127);
            }
            y[c] = (int8_t)v;
        }
    }
    return EL_OK;
}
