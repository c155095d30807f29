// LOGISTIC: TFLM reference_integer_ops::Logistic for int8 (output scale 1/256, zero point -128).
#include "el_common.h"

#define EL_LOG_INPUT_INTEGER_BITS 4

// One output value for one input value (TFLM's loop body).
static int8_t el_logistic_one(int32_t x, int32_t zp, int32_t radius, int32_t mult, int32_t shift) {
    const int32_t input = x - zp;
    if (input <= -radius) {
        return -128;
    }
    if (input >= radius) {
        return 127;
    }
    const int32_t input_in_q4 = el_mbqm_i(input, mult, shift);
    const int32_t output_in_q0 = el_fp_logistic(input_in_q4, EL_LOG_INPUT_INTEGER_BITS);
    const int32_t output_in_q23 = el_rdbypot_i(output_in_q0, 31 - 8);
    return (int8_t)el_clamp(output_in_q23 - 128, -128, 127);
}

int el_logistic(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
                int8_t *arena, size_t arena_len) {
    (void)blob;
    (void)blob_len;
    if (nargs != EL_LOG_NARGS) {
        return EL_E_NARGS;
    }
    const int32_t size = a[EL_LOG_SIZE];
    if (!el_dim_ok(size)) {
        return EL_E_DIM;
    }
    const int64_t in = a[EL_LOG_IN_OFF], out = a[EL_LOG_OUT_OFF];
    if (!el_in_range(in, size, arena_len) || !el_in_range(out, size, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in, size, out, size)) {
        return EL_E_OVERLAP;
    }
    const int32_t zp = a[EL_LOG_IN_ZP];
    if (!el_is_int8(zp)) {
        return EL_E_ZERO_POINT;
    }
    const int32_t radius = a[EL_LOG_RANGE_RADIUS];
    const int32_t mult = a[EL_LOG_INPUT_MULT], shift = a[EL_LOG_INPUT_LEFT_SHIFT];
    if (radius < 0) {
        return EL_E_PARAM;
    }
    if (mult < 0 || shift < -31 || shift > 30) {
        return EL_E_QUANT;
    }
    const int8_t *x = arena + in;
    int8_t *y = arena + out;
    if (size > 256) {
        // Only 256 distinct inputs: tabulate them once (the same function, so the same results).
        int8_t table[256];
        for (int32_t v = -128; v < 128; ++v) {
            table[(uint8_t)v] = el_logistic_one(v, zp, radius, mult, shift);
        }
        for (int32_t i = 0; i < size; ++i) {
            y[i] = table[(uint8_t)x[i]];
        }
    } else {
        for (int32_t i = 0; i < size; ++i) {
            y[i] = el_logistic_one(x[i], zp, radius, mult, shift);
        }
    }
    return EL_OK;
}
