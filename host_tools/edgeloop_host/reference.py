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


def _sample_shape(t: ir.Tensor) -> tuple[int, ...]:
    return tuple(t.shape[1:]) if t.shape and t.shape[0] == 1 else tuple(t.shape)


def run_all_tensors(graph: ir.Graph, x: np.ndarray) -> dict[int, np.ndarray]:
    """Runs the graph and returns every activation tensor, {index: int8 array (N, *shape[1:])}.

    x: int8 (N, *input_shape[1:]) (any shape with N leading and the input's per-sample size).
    """
    inp = graph.input()
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"input must be int8, got {x.dtype}")
    per_sample = int(np.prod(inp.shape))
    if x.ndim == 0 or x.size != x.shape[0] * per_sample:
        raise ValueError(f"input shape {x.shape} does not match (N, {', '.join(map(str, _sample_shape(inp)))})")
    n = x.shape[0]
    flat: dict[int, np.ndarray] = {graph.inputs[0]: x.reshape(n, per_sample)}
    for op in graph.ops:
        if op.opcode != ir.FULLY_CONNECTED:
            raise ValueError(f"reference: unsupported op {op.name}")
        i_in, i_w, i_b, i_out, i_m, i_s = op.tensors
        t_in, t_w, t_out = graph.tensors[i_in], graph.tensors[i_w], graph.tensors[i_out]
        k = t_w.shape[-1]
        rows = flat[i_in].reshape(-1, k)
        bias = graph.tensors[i_b].data if i_b >= 0 else None
        y = fully_connected(rows, t_w.data, bias, t_in.zero_point, t_out.zero_point,
                            graph.tensors[i_m].data, graph.tensors[i_s].data,
                            op.attrs["act_min"], op.attrs["act_max"])
        flat[i_out] = y.reshape(n, int(np.prod(t_out.shape)))
    return {i: a.reshape((n,) + _sample_shape(graph.tensors[i])) for i, a in flat.items()}


def run(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    """Runs the int8 graph on N samples: x int8 (N, *input_shape[1:]) -> int8 (N, *output_shape[1:])."""
    return run_all_tensors(graph, x)[graph.outputs[0]]
