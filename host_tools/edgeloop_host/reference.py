"""Numpy int8 interpreter of an ir.Graph: the arithmetic reference.

Bit-exact with TensorFlow Lite Micro's reference kernels (double-rounding build, the default):
only integer arithmetic, int64 intermediates, int32 wrap-around where the C code uses int32.
Vectorized over a leading sample axis: every sample is one independent invoke of the model.
"""
from __future__ import annotations

import numpy as np

from . import ir

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _i64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


def wrap_int32(a) -> np.ndarray:
    """Two's-complement wrap of int64 values to the int32 range (what int32 C arithmetic does)."""
    a = _i64(a)
    return ((a + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (returned as int64 arrays).

    (a * b * 2 + 2^31 nudge) >> 32 with C truncating division; the single overflow case
    INT32_MIN * INT32_MIN saturates to INT32_MAX.
    """
    a = _i64(a)
    b = _i64(b)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b  # |ab| <= 2^62: fits int64
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = ab + nudge
    # C++ integer division truncates towards zero; >> floors, so go through the magnitude.
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where(overflow, np.int64(INT32_MAX), q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero.

    exponent in [0, 31] (scalar or array broadcast against x).
    """
    x = _i64(x)
    e = _i64(exponent)
    if np.any((e < 0) | (e > 31)):
        raise ValueError("RoundingDivideByPOT exponent must be in [0, 31]")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> e) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (int32 x, double rounding).

    shift > 0 is a left shift applied to x before the high multiply (int32 wrap, as in C),
    shift < 0 a rounding right shift after it.
    """
    x = _i64(x)
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    xs = wrap_int32(x * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(xs, multiplier), right)


def fully_connected(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, input_zp: int,
                    output_zp: int, multiplier: np.ndarray, shift: np.ndarray, act_min: int,
                    act_max: int) -> np.ndarray:
    """TFLM reference_integer_ops::FullyConnected(PerChannel) on rows of x.

    x: int8 [rows, K]; weights int8 [N, K]; bias int32 [N] or None; multiplier/shift length 1 or N.
    Returns int8 [rows, N].
    """
    xi = _i64(x) - np.int64(input_zp)
    acc = xi @ _i64(weights).T  # exact in int64
    if bias is not None:
        acc = acc + _i64(bias)[None, :]
    acc = wrap_int32(acc)  # TFLM accumulates in int32
    m = _i64(multiplier).reshape(1, -1)
    s = _i64(shift).reshape(1, -1)
    out = wrap_int32(multiply_by_quantized_multiplier(acc, m, s) + np.int64(output_zp))
    out = np.minimum(np.maximum(out, np.int64(act_min)), np.int64(act_max))
    return out.astype(np.int8)


def fully_connected_sparse(x: np.ndarray, stream: bytes, units: int, bias: np.ndarray | None, input_zp: int,
                           output_zp: int, multiplier: np.ndarray, shift: np.ndarray, act_min: int,
                           act_max: int) -> np.ndarray:
    """FULLY_CONNECTED with weights in encoding 1 (sparse.py): the same arithmetic as the dense op, since
    skipped weights are zeros. A graph's sparse tensors are decoded when the blob is read, so run_op
    never needs this; it checks a kernel's raw words against the stream."""
    from . import sparse

    w = sparse.decode(stream, units, x.shape[-1])
    return fully_connected(x, w, bias, input_zp, output_zp, multiplier, shift, act_min, act_max)


def _clamp8(acc, act_min: int, act_max: int) -> np.ndarray:
    return np.minimum(np.maximum(_i64(acc), np.int64(act_min)), np.int64(act_max)).astype(np.int8)


def _requantize_channels(acc, bias, multiplier, shift, output_zp, act_min, act_max) -> np.ndarray:
    """acc int64 [..., C] (exact sums): + bias, int32 wrap, per-channel MultiplyByQuantizedMultiplier,
    + output zero point, clamp. multiplier/shift broadcast along the last axis (length 1 or C)."""
    if bias is not None:
        acc = acc + _i64(bias)
    acc = wrap_int32(acc)  # TFLM accumulates in int32: the exact sum wraps like the C code's running sum
    out = wrap_int32(multiply_by_quantized_multiplier(acc, _i64(multiplier).reshape(-1), _i64(shift).reshape(-1))
                     + np.int64(output_zp))
    return _clamp8(out, act_min, act_max)


def _padded(x: np.ndarray, out_h: int, out_w: int, k_h: int, k_w: int, stride_h: int, stride_w: int,
            dil_h: int, dil_w: int, pad_top: int, pad_left: int, fill) -> np.ndarray:
    """x [N, H, W, C] padded with `fill` so that every tap of every output position is inside the array:
    top/left by pad_top/pad_left, bottom/right as far as the last output position's last tap reaches."""
    n, h, w, c = x.shape
    need_h = (out_h - 1) * stride_h + (k_h - 1) * dil_h + 1
    need_w = (out_w - 1) * stride_w + (k_w - 1) * dil_w + 1
    bottom = max(0, need_h - pad_top - h)
    right = max(0, need_w - pad_left - w)
    if pad_top < 0 or pad_left < 0:
        raise ValueError("negative padding")
    return np.pad(x, ((0, 0), (pad_top, bottom), (pad_left, right), (0, 0)), constant_values=fill)


def _tap(xp: np.ndarray, ky: int, kx: int, out_h: int, out_w: int, stride_h: int, stride_w: int, dil_h: int,
         dil_w: int) -> np.ndarray:
    """The [N, out_h, out_w, C] slice of a padded input that filter tap (ky, kx) reads."""
    y0, x0 = ky * dil_h, kx * dil_w
    return xp[:, y0:y0 + (out_h - 1) * stride_h + 1:stride_h, x0:x0 + (out_w - 1) * stride_w + 1:stride_w, :]


def conv_2d(x: np.ndarray, filt: np.ndarray, bias: np.ndarray | None, input_zp: int, output_zp: int,
            multiplier: np.ndarray, shift: np.ndarray, stride_h: int, stride_w: int, dil_h: int, dil_w: int,
            pad_top: int, pad_left: int, out_h: int, out_w: int, act_min: int, act_max: int) -> np.ndarray:
    """TFLM reference_integer_ops::ConvPerChannel. x int8 [N, H, W, C_in], filt int8 [C_out, KH, KW, C_in].

    Out-of-image taps are skipped, which is the same as padding (x - zp) with zeros. Returns int8
    [N, out_h, out_w, C_out].
    """
    c_out, k_h, k_w, c_in = filt.shape
    if x.shape[3] != c_in:
        raise ValueError("conv_2d: input depth does not match the filter")
    xi = _padded(_i64(x) - np.int64(input_zp), out_h, out_w, k_h, k_w, stride_h, stride_w, dil_h, dil_w,
                 pad_top, pad_left, 0).astype(np.float64)
    f = filt.astype(np.float64)
    acc = np.zeros((x.shape[0], out_h, out_w, c_out), np.float64)
    for ky in range(k_h):
        for kx in range(k_w):
            # float64 sums of integer products stay exact far beyond any int32 accumulator (< 2^53)
            acc += _tap(xi, ky, kx, out_h, out_w, stride_h, stride_w, dil_h, dil_w) @ f[:, ky, kx, :].T
    return _requantize_channels(acc.astype(np.int64), bias, multiplier, shift, output_zp, act_min, act_max)


def depthwise_conv_2d(x: np.ndarray, filt: np.ndarray, bias: np.ndarray | None, input_zp: int, output_zp: int,
                      multiplier: np.ndarray, shift: np.ndarray, stride_h: int, stride_w: int, dil_h: int,
                      dil_w: int, pad_top: int, pad_left: int, depth_multiplier: int, out_h: int, out_w: int,
                      act_min: int, act_max: int) -> np.ndarray:
    """TFLM reference_integer_ops::DepthwiseConvPerChannel. x int8 [N, H, W, C_in], filt int8
    [1, KH, KW, C_in * depth_multiplier]; output channel c reads input channel c // depth_multiplier."""
    _, k_h, k_w, c_out = filt.shape
    if x.shape[3] * depth_multiplier != c_out:
        raise ValueError("depthwise_conv_2d: input depth * depth_multiplier does not match the filter")
    xi = _padded(_i64(x) - np.int64(input_zp), out_h, out_w, k_h, k_w, stride_h, stride_w, dil_h, dil_w,
                 pad_top, pad_left, 0)
    xi = np.repeat(xi, depth_multiplier, axis=3)
    f = _i64(filt)
    acc = np.zeros((x.shape[0], out_h, out_w, c_out), np.int64)
    for ky in range(k_h):
        for kx in range(k_w):
            acc += _tap(xi, ky, kx, out_h, out_w, stride_h, stride_w, dil_h, dil_w) * f[0, ky, kx, :]
    return _requantize_channels(acc, bias, multiplier, shift, output_zp, act_min, act_max)


def _pool_windows(x, filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w, fill):
    xp = _padded(_i64(x), out_h, out_w, filter_h, filter_w, stride_h, stride_w, 1, 1, pad_top, pad_left, fill)
    return [_tap(xp, ky, kx, out_h, out_w, stride_h, stride_w, 1, 1)
            for ky in range(filter_h) for kx in range(filter_w)]


def average_pool_2d(x: np.ndarray, stride_h: int, stride_w: int, filter_h: int, filter_w: int, pad_top: int,
                    pad_left: int, out_h: int, out_w: int, act_min: int, act_max: int) -> np.ndarray:
    """TFLM reference_integer_ops::AveragePool (int8): the sum of the in-image taps divided by their count,
    rounded half away from zero (C: acc > 0 ? (acc + n/2) / n : (acc - n/2) / n, truncating)."""
    acc = sum(_pool_windows(x, filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w, 0))
    ones = np.ones((1,) + x.shape[1:3] + (1,), np.int64)
    count = sum(_pool_windows(ones, filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w, 0))
    if np.any(count == 0):
        raise ValueError("average_pool_2d: an output position has no input taps")
    q = (np.abs(acc) + count // 2) // count
    return _clamp8(np.where(acc > 0, q, -q), act_min, act_max)


def max_pool_2d(x: np.ndarray, stride_h: int, stride_w: int, filter_h: int, filter_w: int, pad_top: int,
                pad_left: int, out_h: int, out_w: int, act_min: int, act_max: int) -> np.ndarray:
    """TFLM reference_integer_ops::MaxPool (int8): max of the in-image taps (start value -128), clamped."""
    taps = _pool_windows(x, filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w, -128)
    return _clamp8(np.maximum.reduce(taps), act_min, act_max)


def mean_hw(x: np.ndarray, input_zp: int, output_zp: int, multiplier: int, shift: int) -> np.ndarray:
    """MEAN over H and W (docs/FORMAT.md; TFLM reference_ops::QuantizedMeanOrSum, integer path).

    x int8 [N, H, W, C]; multiplier/shift already include the 1/(H*W) factor (the importer folds it as
    TFLM does). sum = sum of the H*W inputs - input_zp * H * W (int32), then
    MultiplyByQuantizedMultiplier + output_zp, clamped to int8. Returns int8 [N, C].
    """
    n, h, w, c = x.shape
    count = h * w
    acc = wrap_int32(_i64(x).reshape(n, count, c).sum(axis=1) - np.int64(input_zp) * count)
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + np.int64(output_zp)
    return _clamp8(out, -128, 127)


def add(x1: np.ndarray, x2: np.ndarray, input1_zp: int, input2_zp: int, output_zp: int, left_shift: int,
        input1_multiplier: int, input1_shift: int, input2_multiplier: int, input2_shift: int,
        output_multiplier: int, output_shift: int, act_min: int, act_max: int) -> np.ndarray:
    """TFLM reference_integer_ops::Add (AddFunc) on equal-shape int8 arrays; the shifts are <= 0."""
    def scaled(v, zp, m, sh):
        shifted = wrap_int32((_i64(v) - np.int64(zp)) * (np.int64(1) << np.int64(left_shift)))
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m), -int(sh))

    raw_sum = wrap_int32(scaled(x1, input1_zp, input1_multiplier, input1_shift)
                         + scaled(x2, input2_zp, input2_multiplier, input2_shift))
    out = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(raw_sum, output_multiplier),
                                 -int(output_shift)) + np.int64(output_zp)
    return _clamp8(wrap_int32(out), act_min, act_max)


# ---------------------------------------------------------------------------------------------
# gemmlowp fixed point (fixedpoint.h) on int64 arrays holding int32 raw values


def _fp_mul(a, b) -> np.ndarray:
    """FixedPoint * FixedPoint: SaturatingRoundingDoublingHighMul of the raw values."""
    return saturating_rounding_doubling_high_mul(a, b)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32 raw values."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, np.int64(INT32_MAX),
                    np.where(x < -threshold, np.int64(INT32_MIN), x << np.int64(exponent)))


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum<int32>: (a + b + sign(a + b)) / 2 in int64, C truncating division."""
    s = _i64(a) + _i64(b)
    s = s + np.where(s >= 0, np.int64(1), np.int64(-1))
    return np.where(s >= 0, s // 2, -((-s) // 2))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """gemmlowp: exp(a) for a (Q0.31 raw) in [-1/4, 0); Q0.31 result."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap_int32(_i64(a) + (1 << 28))  # a + 1/8
    x2 = _fp_mul(x, x)
    x3 = _fp_mul(x2, x)
    x4 = _fp_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        wrap_int32(_fp_mul(wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return wrap_int32(constant_term + _fp_mul(constant_term, wrap_int32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values for FixedPoint<int32, integer_bits> raws a <= 0; Q0.31 result."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    # Rescale<0> of a value in [-1/4, 0): multiply by 2^integer_bits (exact, no saturation happens)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << np.int64(frac_bits + exponent)
            result = np.where((remainder & bit) != 0, _fp_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0 in this format
        result = np.where(a < clamp, np.int64(0), result)
    return np.where(a == 0, np.int64(INT32_MAX), result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 raw a in [0, 1) -> 1 / (1 + a), Q0.31 raw."""
    half_denominator = rounding_half_sum(a, INT32_MAX)  # F0::One() is INT32_MAX
    constant_48_over_17 = 1515870810  # Q2.29
    constant_neg_32_over_17 = -1010580540
    x = wrap_int32(constant_48_over_17 + _fp_mul(half_denominator, constant_neg_32_over_17))
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = _fp_mul(half_denominator, x)
        one_minus = wrap_int32(one_q2 - half_denominator_times_x)
        x = wrap_int32(x + saturating_rounding_multiply_by_pot(_fp_mul(x, one_minus), 2))  # Rescale<2> of Q4
    return saturating_rounding_multiply_by_pot(x, 1)  # ExactMulByPot<-1> (Q1), then Rescale<0>


def gemmlowp_logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic for FixedPoint<int32, integer_bits> raws; Q0.31 raw result."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, -a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_input, integer_bits))
    result_if_negative = wrap_int32(INT32_MAX - result_if_positive)
    return np.where(a == 0, np.int64(1 << 30), np.where(positive, result_if_positive, result_if_negative))


def _count_leading_zeros_u32(x) -> np.ndarray:
    x = _i64(x) & 0xFFFFFFFF
    _, e = np.frexp(x.astype(np.float64))  # x < 2^32: exact; e = bit length (0 for x == 0)
    return 32 - e.astype(np.int64)


def softmax(x: np.ndarray, input_multiplier: int, input_left_shift: int, diff_min: int) -> np.ndarray:
    """TFLM reference_ops::Softmax (int8 in, int8 out with scale 1/256 and zero point -128) over the last
    axis. gemmlowp fixed point: differences in Q5.26, exponentials summed in Q12.19."""
    xi = _i64(x)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(diff * 2^left_shift, multiplier)
    rescaled = saturating_rounding_doubling_high_mul(wrap_int32(diff * (np.int64(1) << input_left_shift)),
                                                     input_multiplier)
    exps = exp_on_negative_values(np.where(valid, rescaled, 0), 5)
    sum_of_exps = wrap_int32(np.where(valid, rounding_divide_by_pot(exps, 12), 0).sum(axis=-1, keepdims=True))
    headroom_plus_one = _count_leading_zeros_u32(sum_of_exps)
    num_bits_over_unit = 12 - headroom_plus_one
    shifted_sum_minus_one = wrap_int32(((sum_of_exps & 0xFFFFFFFF) << headroom_plus_one) - (1 << 31))
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    unsat = rounding_divide_by_pot(_fp_mul(shifted_scale, exps), num_bits_over_unit + 31 - 8)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)


def logistic(x: np.ndarray, input_zp: int, input_range_radius: int, input_multiplier: int,
             input_left_shift: int) -> np.ndarray:
    """TFLM reference_integer_ops::Logistic (int8; output scale 1/256, zero point -128)."""
    v = _i64(x) - np.int64(input_zp)
    inside = (v > -input_range_radius) & (v < input_range_radius)
    q4 = multiply_by_quantized_multiplier(np.where(inside, v, 0), input_multiplier, input_left_shift)
    q0 = gemmlowp_logistic(q4, 4)
    out = np.clip(rounding_divide_by_pot(q0, 23) - 128, -128, 127)
    out = np.where(v <= -input_range_radius, -128, np.where(v >= input_range_radius, 127, out))
    return out.astype(np.int8)


# ---------------------------------------------------------------------------------------------
# Graph interpreter


def _sample_shape(t: ir.Tensor) -> tuple[int, ...]:
    return tuple(t.shape[1:]) if t.shape and t.shape[0] == 1 else tuple(t.shape)


def _spatial(t: ir.Tensor) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1:
        raise ValueError(f"tensor '{t.name}' {t.shape} is not [1, H, W, C]")
    return t.shape[1], t.shape[2], t.shape[3]


def run_op(graph: ir.Graph, op: ir.Op, read) -> np.ndarray:
    """One op on N samples. read(i) gives activation i as int8 (N, *shape[1:]) (shape[0] == 1) or
    (N, *shape). Returns the output as int8 (N, ...) with the output tensor's per-sample size."""
    T = graph.tensors
    a = op.attrs

    def const(word):
        i = op.tensor(word)
        return T[i].data if i >= 0 else None

    def nhwc(i):
        h, w, c = _spatial(T[i])
        return read(i).reshape(-1, h, w, c)

    if op.opcode == ir.FULLY_CONNECTED:
        t_in, t_out, w = T[op.tensor("input")], T[op.tensor("output")], T[op.tensor("weights")]
        rows = read(op.tensor("input")).reshape(-1, w.shape[-1])
        return fully_connected(rows, w.data, const("bias"), t_in.zero_point, t_out.zero_point,
                               const("multiplier"), const("shift"), a["act_min"], a["act_max"])
    if op.opcode in (ir.CONV_2D, ir.DEPTHWISE_CONV_2D):
        i_in, i_out = op.tensor("input"), op.tensor("output")
        oh, ow, _ = _spatial(T[i_out])
        common = dict(input_zp=T[i_in].zero_point, output_zp=T[i_out].zero_point,
                      multiplier=const("multiplier"), shift=const("shift"), stride_h=a["stride_h"],
                      stride_w=a["stride_w"], dil_h=a["dilation_h"], dil_w=a["dilation_w"],
                      pad_top=a["pad_top"], pad_left=a["pad_left"], out_h=oh, out_w=ow,
                      act_min=a["act_min"], act_max=a["act_max"])
        if op.opcode == ir.CONV_2D:
            return conv_2d(nhwc(i_in), const("filter"), const("bias"), **common)
        return depthwise_conv_2d(nhwc(i_in), const("filter"), const("bias"),
                                 depth_multiplier=a["depth_multiplier"], **common)
    if op.opcode in (ir.AVERAGE_POOL_2D, ir.MAX_POOL_2D):
        oh, ow, _ = _spatial(T[op.tensor("output")])
        fn = average_pool_2d if op.opcode == ir.AVERAGE_POOL_2D else max_pool_2d
        return fn(nhwc(op.tensor("input")), a["stride_h"], a["stride_w"], a["filter_h"], a["filter_w"],
                  a["pad_top"], a["pad_left"], oh, ow, a["act_min"], a["act_max"])
    if op.opcode == ir.MEAN:
        i_in, i_out = op.tensor("input"), op.tensor("output")
        return mean_hw(nhwc(i_in), T[i_in].zero_point, T[i_out].zero_point, a["multiplier"], a["shift"])
    if op.opcode == ir.ADD:
        i1, i2, i_out = op.tensor("input1"), op.tensor("input2"), op.tensor("output")
        return add(read(i1), read(i2), T[i1].zero_point, T[i2].zero_point, T[i_out].zero_point,
                   a["left_shift"], a["input1_multiplier"], a["input1_shift"], a["input2_multiplier"],
                   a["input2_shift"], a["output_multiplier"], a["output_shift"], a["act_min"], a["act_max"])
    if op.opcode == ir.SOFTMAX:
        i_in = op.tensor("input")
        x = read(i_in)
        return softmax(x.reshape(-1, T[i_in].shape[-1]), a["input_multiplier"], a["input_left_shift"],
                       a["diff_min"])
    if op.opcode == ir.LOGISTIC:
        i_in = op.tensor("input")
        return logistic(read(i_in), T[i_in].zero_point, a["input_range_radius"], a["input_multiplier"],
                        a["input_left_shift"])
    raise ValueError(f"reference: unsupported op {op.name}")


def run_all_tensors(graph: ir.Graph, x: np.ndarray) -> dict[int, np.ndarray]:
    """Runs the graph and returns every activation tensor, {index: int8 array (N, *shape[1:])}.

    x: int8 (N, *input_shape[1:]) (any shape with N leading and the input's per-sample size).
    Reshape views (Tensor.alias_of) read and show the bytes of the tensor they alias.
    """
    inp = graph.input()
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"input must be int8, got {x.dtype}")
    per_sample = int(np.prod(inp.shape))
    if x.ndim == 0 or x.size != x.shape[0] * per_sample:
        raise ValueError(f"input shape {x.shape} does not match (N, {', '.join(map(str, _sample_shape(inp)))})")
    n = x.shape[0]
    flat: dict[int, np.ndarray] = {graph.buffer_of(graph.inputs[0]): x.reshape(n, per_sample)}

    def read(i: int) -> np.ndarray:
        b = graph.buffer_of(i)
        if b not in flat:
            raise ValueError(f"reference: tensor {i} '{graph.tensors[i].name}' is read before it is written")
        return flat[b].reshape((n,) + _sample_shape(graph.tensors[i]))

    for op in graph.ops:
        (i_out,) = op.outputs()
        y = run_op(graph, op, read)
        size = int(np.prod(graph.tensors[i_out].shape))
        if y.size != n * size:
            raise ValueError(f"reference: {op.name} produced {y.size // max(n, 1)} values per sample for "
                             f"output '{graph.tensors[i_out].name}' of {size}")
        flat[graph.buffer_of(i_out)] = y.reshape(n, size)
    return {i: flat[graph.buffer_of(i)].reshape((n,) + _sample_shape(t))
            for i, t in enumerate(graph.tensors) if not t.is_const and graph.buffer_of(i) in flat}


def run(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    """Runs the int8 graph on N samples: x int8 (N, *input_shape[1:]) -> int8 (N, *output_shape[1:])."""
    return run_all_tensors(graph, x)[graph.outputs[0]]
