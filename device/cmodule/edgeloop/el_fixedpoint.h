// gemmlowp / TFLM fixed-point arithmetic in portable C99, bit for bit.
//
// TFLM's int8 kernels are written on gemmlowp's FixedPoint<int32_t, IntegerBits> type: a raw int32
// whose value is raw / 2^(31 - IntegerBits). The functions below work on those raw values. gemmlowp
// leaves int32 overflow undefined; here every add / sub / negate / left shift wraps explicitly (in
// uint32), which gives the same result wherever TFLM's is defined, and a defined one everywhere else,
// so hostile parameters cannot trigger undefined behaviour. No libc, no division, no float.
#ifndef EL_FIXEDPOINT_H
#define EL_FIXEDPOINT_H

#include <stdint.h>

#define EL_INLINE static inline

// ---- wrapping int32 arithmetic ----
EL_INLINE int32_t el_wadd(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}
EL_INLINE int32_t el_wsub(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}
EL_INLINE int32_t el_wneg(int32_t a) {
    return (int32_t)(0u - (uint32_t)a);
}
EL_INLINE int32_t el_wshl(int32_t a, int n) {  // a * 2^n, wrapped; n in 0..31
    return (int32_t)((uint32_t)a << n);
}

// Count leading zeros of a non-zero value (portable: no libgcc __clzsi2 on cores without CLZ).
EL_INLINE int el_clz32(uint32_t x) {
    int n = 0;
    if (x <= 0x0000FFFFu) { n += 16; x <<= 16; }
    if (x <= 0x00FFFFFFu) { n += 8; x <<= 8; }
    if (x <= 0x0FFFFFFFu) { n += 4; x <<= 4; }
    if (x <= 0x3FFFFFFFu) { n += 2; x <<= 2; }
    if (x <= 0x7FFFFFFFu) { n += 1; }
    return n;
}

// ---- gemmlowp primitives ----

// SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31 with C division (towards zero) and
// nudge = 2^30 when a*b >= 0, 1 - 2^30 otherwise. That equals floor((a * b + 2^30) / 2^31) (round
// half up) for every a*b: one 64-bit add and arithmetic shift, no 64-bit division.
EL_INLINE int32_t el_srdhm_i(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}

// The same for b != INT32_MIN (callers that validated b >= 0): no saturation test.
EL_INLINE int32_t el_srdhm_nosat(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}

// RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero; exponent 0..31.
EL_INLINE int32_t el_rdbypot_i(int32_t x, int exponent) {
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// TFLM MultiplyByQuantizedMultiplier (double rounding): shift in -31..31, positive = left.
EL_INLINE int32_t el_mbqm_i(int32_t x, int32_t multiplier, int shift) {
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return el_rdbypot_i(el_srdhm_i(el_wshl(x, left), multiplier), right);
}

// MultiplyByQuantizedMultiplierSmallerThanOneExp: shift in -31..0.
EL_INLINE int32_t el_mbqm_smaller_i(int32_t x, int32_t multiplier, int shift) {
    return el_rdbypot_i(el_srdhm_i(x, multiplier), -shift);
}

// MultiplyByQuantizedMultiplierGreaterThanOne: left_shift in 0..31.
EL_INLINE int32_t el_mbqm_greater_i(int32_t x, int32_t multiplier, int left_shift) {
    return el_srdhm_i(el_wshl(x, left_shift), multiplier);
}

// SaturatingRoundingMultiplyByPOT<exponent> for 0 < exponent < 31 (a saturating left shift).
EL_INLINE int32_t el_sat_shl(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return el_wshl(x, exponent);
}

// RoundingHalfSum: (a + b) / 2 rounded away from zero, computed in 64 bits as gemmlowp does.
EL_INLINE int32_t el_rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t t = sum + (sum >= 0 ? 1 : -1);
    return (int32_t)((t + (t < 0 ? 1 : 0)) >> 1);  // C division by 2 (towards zero)
}

// ---- gemmlowp math functions; all values are raw FixedPoint<int32_t, N> ----

#define EL_Q0_ONE INT32_MAX  // FixedPoint<int32_t, 0>::One()

// exp(a) for a in [-1/4, 0); a and the result in Q0.31.
EL_INLINE int32_t el_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
    const int32_t constant_term = 1895147668;     // exp(-1/8)
    const int32_t constant_1_over_3 = 715827883;  // 1/3
    const int32_t x = el_wadd(a, INT32_C(1) << 28);  // a + 1/8
    const int32_t x2 = el_srdhm_i(x, x);
    const int32_t x3 = el_srdhm_i(x2, x);
    const int32_t x4 = el_srdhm_i(x2, x2);
    const int32_t x4_over_4 = el_rdbypot_i(x4, 2);
    const int32_t poly = el_rdbypot_i(
        el_wadd(el_srdhm_i(el_wadd(x4_over_4, x3), constant_1_over_3), x2), 1);
    return el_wadd(constant_term, el_srdhm_i(constant_term, el_wadd(x, poly)));
}

// exp(a) for a <= 0; a in Q(integer_bits), integer_bits 1..5 (TFLM uses 4 and 5); result in Q0.31.
EL_INLINE int32_t el_exp_on_negative_values(int32_t a, int integer_bits) {
    static const int32_t barrel[7] = {  // exp(-2^e) for e = -2 .. 4, Q0.31
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    };
    const int fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = INT32_C(1) << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = el_wsub(a & (one_quarter - 1), one_quarter);
    int32_t result = el_exp_on_interval_between_negative_one_quarter_and_0_excl(
        el_sat_shl(a_mod_quarter_minus_one_quarter, integer_bits));  // Rescale<0>
    const int32_t remainder = el_wsub(a_mod_quarter_minus_one_quarter, a);
    for (int e = -2; e <= 4; ++e) {
        if (integer_bits > e && (remainder & (INT32_C(1) << (fractional_bits + e))) != 0) {
            result = el_srdhm_i(result, barrel[e + 2]);
        }
    }
    return a == 0 ? EL_Q0_ONE : result;
}

// 1 / (1 + a) for a in [0, 1); a and the result in Q0.31 (Newton-Raphson, 3 steps).
EL_INLINE int32_t el_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    const int32_t half_denominator = el_rounding_half_sum(a, EL_Q0_ONE);
    const int32_t constant_48_over_17 = 1515870810;       // Q2.29
    const int32_t constant_neg_32_over_17 = -1010580540;  // Q2.29
    const int32_t q2_one = INT32_C(1) << 29;
    int32_t x = el_wadd(constant_48_over_17, el_srdhm_i(half_denominator, constant_neg_32_over_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = el_srdhm_i(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = el_wsub(q2_one, half_denominator_times_x);
        x = el_wadd(x, el_sat_shl(el_srdhm_i(x, one_minus_half_denominator_times_x), 2));
    }
    return el_sat_shl(x, 1);  // Rescale<0>(ExactMulByPot<-1>(x))
}

// logistic(a) = 1 / (1 + exp(-a)); a in Q(integer_bits), result in Q0.31.
EL_INLINE int32_t el_fp_logistic(int32_t a, int integer_bits) {
    const int32_t abs_input = a > 0 ? a : el_wneg(a);
    const int32_t result_if_positive =
        el_one_over_one_plus_x_for_x_in_0_1(el_exp_on_negative_values(el_wneg(abs_input), integer_bits));
    if (a == 0) {
        return INT32_C(1) << 30;  // one half
    }
    return a > 0 ? result_if_positive : el_wsub(EL_Q0_ONE, result_if_positive);
}

// TFLM GetReciprocal(x, x_integer_digits): x > 0 (Q(x_integer_digits)); returns 1/x's mantissa
// (Q0.31) and the number of bits of x above 1.0.
EL_INLINE int32_t el_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit) {
    const int headroom_plus_one = el_clz32((uint32_t)x);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    const int32_t shifted_sum_minus_one =
        (int32_t)(((uint32_t)x << headroom_plus_one) - (UINT32_C(1) << 31));
    return el_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

#endif // EL_FIXEDPOINT_H
