"""Full-int8 .tflite -> ir.Graph.

Requantization parameters are not stored in a .tflite; they are computed here exactly as TensorFlow Lite
Micro's Prepare functions do (tensorflow/lite/micro/kernels/*_common.cc, kernel_util.cc,
quantization_util.cc), checked against the pinned `tflite-micro` package with random and hand-edited probe
models (tests/test_tflite_import.py, tests/test_ops.py):

* FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D: effective scale ``(double)s_in * (double)s_w[c] / (double)s_out``
  per output channel, for per-channel AND per-tensor weights (a per-tensor conv repeats its one value over
  C_out). (TFLite's per-tensor ``GetQuantizedConvolutionMultipler`` multiplies s_in * s_w in float32 first;
  TFLM does not. FULLY_CONNECTED's per-tensor path keeps the bias check
  ``|s_in*s_w - s_bias| / s_out <= 0.02``.);
* ``QuantizeMultiplier``: ``frexp``, ``round(q * 2^31)`` (half away from zero), ``2^31`` folds to ``2^30`` with
  exponent + 1, exponents below -31 flush to (0, 0);
* fused activations: ``CalculateActivationRangeQuantized`` quantizes 0 / 6 / -1 / 1 in float32
  (``f / scale`` rounded half away from zero, plus the zero point) and intersects with [-128, 127];
* padding: ``ComputePaddingHeightWidth`` (SAME/VALID -> pad_top / pad_left; output H/W from ComputeOutSize);
* MEAN: ``QuantizeMultiplier(s_in / s_out)`` with the 1/count factor folded in as
  ``reference_ops::QuantizedMeanOrSum`` does (see mean_multiplier);
* ADD: left_shift 20, ``QuantizeMultiplierSmallerThanOneExp`` of s1 / 2max, s2 / 2max and
  2max / (2^20 * s_out) (max = max(s1, s2) in float32, then double);
* SOFTMAX: ``PreprocessSoftmaxScaling(beta, s_in, 5)`` and ``diff_min = -CalculateInputRadius(5, shift)``;
* LOGISTIC: ``frexp(s_in * 2^27)``, multiplier ``round(q * 2^31)``, radius ``CalculateInputRadius(4, shift)``.

RESHAPE / EXPAND_DIMS / SQUEEZE (Keras Flatten, Reshape, Conv1D's expand/squeeze) never become ops: their
input and output are one buffer. Every buffer gets one ir tensor with the graph input/output's own shape (or
its producer's output shape), plus a view tensor (Tensor.alias_of, same arena bytes) for each other shape an
op needs to read or write it under (e.g. a Flatten output read by a FULLY_CONNECTED, a Conv1D output read by
MEAN as [1, 1, T, C]).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import ir

SUPPORTED_OPS = ("ADD", "AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
                 "LOGISTIC", "MAX_POOL_2D", "MEAN", "RESHAPE", "SOFTMAX", "SQUEEZE")
ALIAS_OPS = ("RESHAPE", "EXPAND_DIMS", "SQUEEZE")

# TFLite schema enum values (tensorflow/lite/schema/schema.fbs), fixed forever by the format.
_T_FLOAT32, _T_FLOAT16, _T_INT32, _T_UINT8, _T_INT64, _T_INT16, _T_INT8, _T_FLOAT64, _T_INT4 = (
    0, 1, 2, 3, 4, 7, 9, 10, 17)
_FLOAT_TYPES = {_T_FLOAT32, _T_FLOAT16, _T_FLOAT64}
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3
_ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT_SPLIT"}
_PADDING_SAME, _PADDING_VALID = 0, 1
_PADDING_NAMES = {0: "SAME", 1: "VALID"}

CONVERTER_HINT = (
    "edgeloop runs full-int8 models only. Convert with tf.lite.TFLiteConverter and set "
    "converter.optimizations = [tf.lite.Optimize.DEFAULT], "
    "converter.representative_dataset = <generator yielding [sample] float inputs>, "
    "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8], "
    "converter.inference_input_type = tf.int8 and converter.inference_output_type = tf.int8 "
    "(edgeloop_host.train.quantize_keras does exactly this)."
)


INT8_MIN, INT8_MAX = -128, 127


# ---------------------------------------------------------------------------------------------
# TFLite Prepare arithmetic (host side, done once per model)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier`` (non-emulated, double precision).

    Returns (multiplier, shift) with multiplier in [2^30, 2^31) or 0 and shift the power-of-two
    exponent (positive = left shift), such that real ~= multiplier * 2^(shift - 31).
    """
    real = float(real)
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantization scale {real!r} is not a finite positive number")
    q, shift = math.frexp(real)
    # q * 2^31 is exact (power-of-two scaling) and lies in [2^30, 2^31): 22 fractional bits are
    # left, so adding 0.5 is exact too and floor(x + 0.5) is std::round (half away from zero).
    q_fixed = math.floor(q * 2.0**31 + 0.5)
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def fc_effective_scales(input_scale, weight_scales, output_scale) -> list[float]:
    """Effective output scales (as doubles) exactly as TFLM's FULLY_CONNECTED Prepare computes them:
    every float32 scale widened to double, then (s_in * s_w[c]) / s_out (per-tensor: one value)."""
    s_in = float(np.float32(input_scale))
    s_out = float(np.float32(output_scale))
    s_w = np.asarray(weight_scales, dtype=np.float32).reshape(-1)
    return [s_in * float(w) / s_out for w in s_w]


def fc_multipliers(input_scale, weight_scales, output_scale) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) int32 arrays of length 1 (per-tensor) or N (per-channel)."""
    pairs = [quantize_multiplier(r) for r in fc_effective_scales(input_scale, weight_scales, output_scale)]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


def _round_half_away(v: float) -> float:
    return math.copysign(math.floor(abs(v) + 0.5), v)


def _quantize_f32(scale: float, zero_point: int, f: float) -> int:
    """TFLite kernel_util Quantize(): float32 f / scale, TfLiteRound, + zero point."""
    with np.errstate(all="ignore"):
        tmp = float(np.float32(f) / np.float32(scale))
    if not math.isfinite(tmp):
        raise ValueError(f"activation bound {f} / scale {scale} overflows")
    r = _round_half_away(tmp)
    if not (-2.0**31 <= r <= 2.0**31 - 1):
        raise ValueError(f"activation bound {f} / scale {scale} overflows int32")
    return int(zero_point) + int(r)


def activation_range(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for an int8 output."""
    qmin, qmax = INT8_MIN, INT8_MAX
    if activation == _ACT_RELU:
        return max(qmin, _quantize_f32(scale, zero_point, 0.0)), qmax
    if activation == _ACT_RELU6:
        return (max(qmin, _quantize_f32(scale, zero_point, 0.0)),
                min(qmax, _quantize_f32(scale, zero_point, 6.0)))
    if activation == _ACT_RELU_N1_TO_1:
        return (max(qmin, _quantize_f32(scale, zero_point, -1.0)),
                min(qmax, _quantize_f32(scale, zero_point, 1.0)))
    if activation == _ACT_NONE:
        return qmin, qmax
    raise ValueError(f"unsupported fused activation {_ACT_NAMES.get(activation, activation)}")




# ---------------------------------------------------------------------------------------------
# Prepare arithmetic of the other ops


def compute_out_size(padding: int, image_size: int, filter_size: int, stride: int, dilation: int) -> int:
    """TFLite ComputeOutSize."""
    effective = (filter_size - 1) * dilation + 1
    if stride == 0:
        return 0
    if padding == _PADDING_SAME:
        return (image_size + stride - 1) // stride
    if padding == _PADDING_VALID:
        return (image_size + stride - effective) // stride
    return 0


def compute_padding_with_offset(stride: int, dilation: int, in_size: int, filter_size: int,
                                out_size: int) -> tuple[int, int]:
    """TFLite ComputePaddingWithOffset: (padding before, extra padding after)."""
    effective = (filter_size - 1) * dilation + 1
    total = max(0, (out_size - 1) * stride + effective - in_size)
    return total // 2, total % 2


def compute_padding_height_width(stride_h: int, stride_w: int, dil_h: int, dil_w: int, in_h: int, in_w: int,
                                 filter_h: int, filter_w: int, padding: int) -> tuple[int, int, int, int]:
    """TFLite ComputePaddingHeightWidth: (pad_top, pad_left, out_h, out_w)."""
    out_w = compute_out_size(padding, in_w, filter_w, stride_w, dil_w)
    out_h = compute_out_size(padding, in_h, filter_h, stride_h, dil_h)
    pad_top, _ = compute_padding_with_offset(stride_h, dil_h, in_h, filter_h, out_h)
    pad_left, _ = compute_padding_with_offset(stride_w, dil_w, in_w, filter_w, out_w)
    return pad_top, pad_left, out_h, out_w


def conv_multipliers(input_scale, filter_scales, output_scale, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: one (multiplier, shift) per output channel, the effective scale
    (double)s_in * (double)s_w / (double)s_out; a single filter scale is broadcast over the channels."""
    s_w = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    if s_w.size == 1:
        s_w = np.repeat(s_w, channels)
    m, s = fc_multipliers(input_scale, s_w, output_scale)
    return m, s


def mean_multiplier(input_scale, output_scale, count: int) -> tuple[int, int]:
    """MEAN's (multiplier, shift) with the 1/count of the mean folded in, as TFLM does it.

    PrepareMeanOrSumHelper: QuantizeMultiplier((double)s_in / (double)s_out) -> (m, e). Then
    reference_ops::QuantizedMeanOrSum (integer path, compute_sum false):
    k = min(floor(log2(count)), 32, 31 + e); m' = (int64(m) << k) / count (truncating); e' = e - k.
    The op then computes MultiplyByQuantizedMultiplier(sum - zp_in * count, m', e') + zp_out.
    """
    m, e = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    if count < 1:
        raise ValueError("MEAN over an empty set")
    k = min(count.bit_length() - 1, 32, 31 + e)
    return int((m << k) // count), int(e - k)


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierSmallerThanOneExp: needs 0 < real < 1 (TFLM aborts otherwise)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real!r} is not in (0, 1)")
    m, shift = quantize_multiplier(real)
    if shift > 0:
        raise ValueError(f"multiplier {real!r} rounds to 1")
    return m, shift


def add_params(input1_scale, input2_scale, output_scale) -> dict[str, int]:
    """CalculateOpDataAdd (int8): left_shift 20 and the three (multiplier, shift) pairs."""
    s1, s2, so = (np.float32(v) for v in (input1_scale, input2_scale, output_scale))
    left_shift = 20
    twice_max = 2 * float(max(s1, s2))
    real1 = float(s1) / twice_max
    real2 = float(s2) / twice_max
    real_out = twice_max / ((1 << left_shift) * float(so))
    m1, e1 = quantize_multiplier_smaller_than_one_exp(real1)
    m2, e2 = quantize_multiplier_smaller_than_one_exp(real2)
    mo, eo = quantize_multiplier_smaller_than_one_exp(real_out)
    return {"left_shift": left_shift, "input1_multiplier": m1, "input1_shift": e1, "input2_multiplier": m2,
            "input2_shift": e2, "output_multiplier": mo, "output_shift": eo}


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite CalculateInputRadius: floor(((1 << ib) - 1) * 2^(total - ib) / 2^left_shift), in double."""
    if not 0 <= input_left_shift <= 62:
        raise ValueError(f"input left shift {input_left_shift} out of range")
    v = 1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits)) \
        / float(1 << input_left_shift)
    return int(math.floor(v))


def softmax_params(beta: float, input_scale) -> dict[str, int]:
    """CalculateSoftmaxParams (int8 -> int8): PreprocessSoftmaxScaling(beta, s_in, 5) (double rounding build:
    the real multiplier beta * s_in * 2^26 capped at 2^31 - 1, QuantizeMultiplierGreaterThanOne) and
    diff_min = -CalculateInputRadius(5, input_left_shift)."""
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - 5)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError(f"beta * input scale * 2^26 = {real!r} must be > 1 (TFLM aborts otherwise)")
    m, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError("softmax input shift < 0")
    return {"input_multiplier": m, "input_left_shift": shift, "diff_min": -calculate_input_radius(5, shift)}


def logistic_params(input_scale) -> dict[str, int]:
    """CalculateArithmeticOpDataLogistic (int8): frexp((double)s_in * 2^27) -> (q, input_left_shift),
    input_multiplier = round(q * 2^31), input_range_radius = CalculateInputRadius(4, input_left_shift)."""
    real = float(np.float32(input_scale)) * float(1 << (31 - 4))
    q, shift = math.frexp(real)
    m = int(_round_half_away(q * float(1 << 31)))
    if m >= 1 << 31:  # cannot happen for a float32 scale (24-bit mantissa); TFLM's int32 cast would break
        raise ValueError(f"input scale {input_scale!r}: logistic multiplier overflows")
    if not 0 <= shift <= 30:
        raise ValueError(f"input scale {input_scale!r} out of the range TFLM's LOGISTIC supports "
                         f"(input_left_shift {shift})")
    return {"input_range_radius": calculate_input_radius(4, shift), "input_multiplier": m,
            "input_left_shift": shift}


# ---------------------------------------------------------------------------------------------
# Reading the flatbuffer


def _read_bytes(path_or_bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    path = os.fspath(path_or_bytes)
    with open(path, "rb") as f:
        return f.read(), path


def _parse_model(data: bytes, where: str):
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(
            f"{where}: not a TFLite model ({len(data)} bytes, no 'TFL3' flatbuffer identifier at offset 4)")
    try:
        from ai_edge_litert.tools import flatbuffer_utils
        return flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    except Exception as e:  # the flatbuffers reader raises struct/Index/Value errors on bad bytes
        raise ValueError(
            f"{where}: cannot parse the TFLite flatbuffer ({len(data)} bytes): truncated or corrupt file "
            f"({type(e).__name__}: {e})") from e


def _builtin_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _type_name(t: int) -> str:
    from ai_edge_litert import schema_py_generated as schema
    for k, v in vars(schema.TensorType).items():
        if v == t and not k.startswith("_"):
            return k
    return f"type {t}"


@dataclass
class _TQ:
    """Quantization of a tflite tensor."""
    scales: np.ndarray  # float32
    zero_points: np.ndarray  # int64
    qdim: int


def _quant(t) -> _TQ | None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zp = np.zeros(len(q.scale), dtype=np.int64) if q.zeroPoint is None else np.asarray(q.zeroPoint, np.int64)
    return _TQ(np.asarray(q.scale, dtype=np.float32).reshape(-1), zp.reshape(-1), int(q.quantizedDimension or 0))


class _ImportError(Exception):
    pass


def load_tflite(path_or_bytes, model_id: int = 0, model_version: int = 1) -> ir.Graph:
    """Imports a full-int8 .tflite (path or bytes) as an ir.Graph with a planned arena.

    Raises ValueError listing every problem found (unsupported ops by name, float / hybrid models,
    non-zero weight zero points, several subgraphs / inputs / outputs, truncated bytes, ...).
    """
    data, where = _read_bytes(path_or_bytes)
    model = _parse_model(data, where)
    try:
        graph = _build(model, where, model_id, model_version)
    except _ImportError as e:
        raise ValueError(str(e)) from None
    except (IndexError, TypeError, AttributeError, KeyError, ArithmeticError) as e:
        raise ValueError(f"{where}: malformed TFLite model ({type(e).__name__}: {e})") from e
    from .planner import plan_arena
    plan_arena(graph)
    return graph


def _fail(where: str, problems: list[str], hint: str | None = None):
    msg = f"{where}: cannot import this model:\n" + "\n".join(f"  - {p}" for p in problems)
    if hint:
        msg += "\n" + hint
    raise _ImportError(msg)


@dataclass
class _Use:
    """An activation operand of an op: the tflite tensor, which ir shapes the op accepts, and the shape it
    gets when no existing view of the buffer fits."""
    tfl: int
    accepts: Callable[[tuple[int, ...]], bool]
    fallback: tuple[int, ...]


@dataclass
class _Pending:
    """An op that passed its checks, waiting for ir tensors."""
    label: str
    opcode: int
    reads: list[_Use]
    write: _Use
    build: Callable  # (importer, [read views], write view) -> ir.Op | None
    extra: dict = field(default_factory=dict)


def _act_words(rng: tuple[int, int]) -> dict:
    return {"act_min": int(rng[0]), "act_max": int(rng[1])}


def _any_shape(_shape) -> bool:
    return True


def _exactly(shape: tuple[int, ...]) -> Callable[[tuple[int, ...]], bool]:
    shape = tuple(shape)
    return lambda s: tuple(s) == shape


class _Importer:
    def __init__(self, model, where: str):
        self.model = model
        self.where = where
        self.names = _builtin_names()
        self.problems: list[str] = []
        sg = model.subgraphs[0]
        self.sg = sg
        self.tensors = sg.tensors or []
        self.ops = sg.operators or []
        self.buffers = model.buffers or []
        self.parent: dict[int, int] = {}
        self.g_tensors: list[ir.Tensor] = []
        self.views: dict[int, list[int]] = {}
        self.primary: dict[int, int] = {}

    # --- tflite tensor accessors -------------------------------------------------------------------
    def op_name(self, op) -> str:
        oc = self.model.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        name = self.names.get(code, f"builtin {code}")
        if name == "CUSTOM":
            cc = oc.customCode.decode("utf-8", "replace") if isinstance(oc.customCode, bytes) else oc.customCode
            name = f"CUSTOM({cc})"
        return name

    def ttype(self, i: int) -> int:
        return int(self.tensors[i].type)

    def tname(self, i: int) -> str:
        n = self.tensors[i].name
        return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)

    def shape(self, i: int) -> tuple[int, ...]:
        t = self.tensors[i]
        return tuple(int(d) for d in (t.shape if t.shape is not None else []))

    def const_data(self, i: int) -> np.ndarray | None:
        b = self.tensors[i].buffer
        if b is None or b <= 0 or b >= len(self.buffers):
            return None
        d = self.buffers[b].data
        if d is None or len(d) == 0:
            return None
        return np.frombuffer(bytes(bytearray(d)), dtype=np.uint8)

    def quant(self, i: int) -> _TQ | None:
        return _quant(self.tensors[i])

    def scale_zp(self, i: int) -> tuple[float, int]:
        q = self.quant(i)
        return float(q.scales[0]), int(q.zero_points[0])

    def check_act(self, i: int, what: str) -> bool:
        p = self.problems
        n0 = len(p)
        if self.ttype(i) != _T_INT8:
            p.append(f"{what} tensor '{self.tname(i)}' is {_type_name(self.ttype(i))}; "
                     "only int8 activations are supported")
            return False
        q = self.quant(i)
        if q is None or q.scales.size != 1:
            p.append(f"{what} tensor '{self.tname(i)}' needs per-tensor quantization (one scale)")
            return False
        s, zp = float(q.scales[0]), int(q.zero_points[0])
        if not (math.isfinite(s) and s > 0):
            p.append(f"{what} tensor '{self.tname(i)}' has invalid scale {s}")
        if not INT8_MIN <= zp <= INT8_MAX:
            p.append(f"{what} tensor '{self.tname(i)}' has zero point {zp} outside int8")
        if any(d < 1 for d in self.shape(i)) or not self.shape(i):
            p.append(f"{what} tensor '{self.tname(i)}' has shape {list(self.shape(i))}; static shapes with "
                     "dims >= 1 are required (use keras.Input(shape, batch_size=1))")
        if self.const_data(i) is not None:
            p.append(f"{what} tensor '{self.tname(i)}' is a constant; only computed activations are supported")
        return len(p) == n0

    def find(self, i: int) -> int:
        while self.parent.get(i, i) != i:
            i = self.parent[i]
        return i

    # --- shared op checks ----------------------------------------------------------------------------
    def io(self, k: int, op, name: str, n_in: tuple[int, ...], what=("input",)):
        """(label, activation inputs, output) or None; n_in: accepted input counts."""
        ins = [int(i) for i in (op.inputs or [])]
        outs = [int(i) for i in (op.outputs or [])]
        label = f"{name} #{k} ('{self.tname(outs[0])}')" if outs else f"{name} #{k}"
        if len(ins) not in n_in or len(outs) != 1 or any(i < 0 for i in ins[:len(what)]):
            self.problems.append(f"{label}: unexpected number of inputs/outputs ({len(ins)}/{len(outs)})")
            return None
        ok = all([self.check_act(ins[j], f"{label} {w}") for j, w in enumerate(what)])
        ok = self.check_act(outs[0], f"{label} output") and ok
        return (label, ins, outs[0]) if ok else None

    def fused_activation(self, label: str, opts, i_out: int) -> tuple[int, int] | None:
        act = int(getattr(opts, "fusedActivationFunction", 0) or 0)
        if act not in (_ACT_NONE, _ACT_RELU, _ACT_RELU6, _ACT_RELU_N1_TO_1):
            self.problems.append(f"{label}: fused activation {_ACT_NAMES.get(act, act)} is not supported "
                                 "(TFLM supports NONE, RELU, RELU6, RELU_N1_TO_1)")
            return None
        s, zp = self.scale_zp(i_out)
        try:
            return activation_range(act, s, zp)
        except ValueError as e:
            self.problems.append(f"{label}: {e}")
            return None

    def weights(self, label: str, i_w: int, rank: int, qdim: int, what="weights"):
        """(int8 array, _TQ) of a constant symmetric int8 weight tensor quantized along qdim, or None."""
        p = self.problems
        shape = self.shape(i_w)
        if self.ttype(i_w) != _T_INT8:
            p.append(f"{label}: {what} are {_type_name(self.ttype(i_w))}; only int8 {what} are supported")
            return None
        data = self.const_data(i_w)
        if data is None:
            p.append(f"{label}: {what} are not constant")
            return None
        if len(shape) != rank or any(d < 1 for d in shape):
            p.append(f"{label}: {what} have shape {list(shape)}; expected rank {rank}")
            return None
        n = int(np.prod(shape))
        if data.size != n:
            p.append(f"{label}: {what} buffer holds {data.size} bytes, shape {list(shape)} needs {n} "
                     "(truncated or corrupt file)")
            return None
        q = self.quant(i_w)
        if q is None:
            p.append(f"{label}: {what} are not quantized")
            return None
        if np.any(q.zero_points != 0):
            bad = sorted(set(int(z) for z in q.zero_points if z != 0))
            p.append(f"{label}: weight zero points must be 0 (symmetric int8), found {bad[:8]}")
            return None
        if q.scales.size > 1 and (q.qdim != qdim or q.scales.size != shape[qdim]):
            p.append(f"{label}: per-channel {what} scales must run along dimension {qdim} ({q.scales.size} "
                     f"scales, quantized_dimension {q.qdim}, shape {list(shape)})")
            return None
        if q.zero_points.size not in (1, q.scales.size):
            p.append(f"{label}: {what} have {q.zero_points.size} zero points for {q.scales.size} scales")
            return None
        if not all(math.isfinite(float(s)) and s > 0 for s in q.scales):
            p.append(f"{label}: {what} scales must be positive")
            return None
        return data.view(np.int8).reshape(shape), q

    def bias(self, label: str, i_b: int, n: int):
        """int32 [n] array, None for no bias, or False after a problem."""
        if i_b < 0:
            return None
        p = self.problems
        data = self.const_data(i_b)
        if self.ttype(i_b) != _T_INT32:
            p.append(f"{label}: bias is {_type_name(self.ttype(i_b))}; int32 expected")
            return False
        if data is None:
            p.append(f"{label}: bias is not constant")
            return False
        if self.shape(i_b) != (n,) or data.size != 4 * n:
            p.append(f"{label}: bias has shape {list(self.shape(i_b))} / {data.size} bytes; expected [{n}] int32")
            return False
        return data.view("<i4").astype(np.int32)

    def requant_ok(self, label: str, shift: np.ndarray) -> bool:
        if np.any(shift > 30):
            self.problems.append(f"{label}: requantization scale too large (shift {int(shift.max())} > 30)")
            return False
        return True

    def window_io(self, k: int, op, name: str, n_in: tuple[int, ...], has_dilation: bool):
        """(label, ins, output, options, activation range, window options) of a CONV_2D /
        DEPTHWISE_CONV_2D / pooling op on [1, H, W, C] tensors, or None. The range and window may be
        None after a problem: the caller checks them after its own checks, so that all problems show."""
        r = self.io(k, op, name, n_in)
        if r is None:
            return None
        label, ins, i_out = r
        opts = op.builtinOptions
        if opts is None:
            self.problems.append(f"{label}: missing options")
            return None
        rng = self.fused_activation(label, opts, i_out)
        win = self._window_options(label, opts, has_dilation)
        if self._nhwc(label, ins[0], "input") is None or self._nhwc(label, i_out, "output") is None:
            return None
        return label, ins, i_out, opts, rng, win

    def weighted_build(self, opcode: int, i_w: int, w: np.ndarray, i_b: int, bias, mult, shift, words: dict):
        """The build step of an op with weights: constants for weights, bias, multipliers and shifts."""
        def build(imp, reads, out):
            idx_w = imp.constant(self.tname(i_w), np.ascontiguousarray(w))
            idx_b = imp.constant(self.tname(i_b), bias) if bias is not None else -1
            out_name = imp.g_tensors[out].name
            idx_m = imp.constant(f"{out_name}/multiplier", mult)
            idx_s = imp.constant(f"{out_name}/shift", shift)
            return ir.Op(opcode, [reads[0], idx_w, idx_b, out, idx_m, idx_s], dict(words))

        return build

    def unary(self, label: str, opcode: int, i_in: int, i_out: int, words: dict) -> _Pending:
        """An op reading one tensor and writing one, both of exactly their tflite shapes."""
        def build(imp, reads, out):
            return ir.Op(opcode, [reads[0], out], dict(words))

        sh_in, sh_out = self.shape(i_in), self.shape(i_out)
        return _Pending(label, opcode, [_Use(i_in, _exactly(sh_in), sh_in)], _Use(i_out, _exactly(sh_out), sh_out),
                        build)

    def lut_activation(self, k, op, name: str, opcode: int, params_of, why: str = "") -> _Pending | None:
        """SOFTMAX / LOGISTIC: same shape in and out, output scale 1/256 and zero point -128."""
        r = self.io(k, op, name, (1,))
        if r is None:
            return None
        label, ins, i_out = r
        i_in = ins[0]
        s_out, zp_out = self.scale_zp(i_out)
        if zp_out != -128 or np.float32(s_out) != np.float32(1.0 / 256):
            self.problems.append(f"{label}: output quantization ({s_out}, {zp_out}) must be scale 1/256, zero "
                                 f"point -128{why}")
            return None
        if self.shape(i_in) != self.shape(i_out):
            self.problems.append(f"{label}: input and output shapes differ")
            return None
        try:
            params = params_of(self.scale_zp(i_in)[0])
        except ValueError as e:
            self.problems.append(f"{label}: {e}")
            return None
        return self.unary(label, opcode, i_in, i_out, params)

    # --- ops -----------------------------------------------------------------------------------------
    def op_fully_connected(self, k, op) -> _Pending | None:
        r = self.io(k, op, "FULLY_CONNECTED", (2, 3))
        if r is None:
            return None
        label, ins, i_out = r
        i_in, i_w = ins[0], ins[1]
        i_b = ins[2] if len(ins) > 2 else -1
        opts = op.builtinOptions
        rng = self.fused_activation(label, opts, i_out)
        if int(getattr(opts, "weightsFormat", 0) or 0) != 0:
            self.problems.append(f"{label}: shuffled weights format is not supported")
            return None
        wq = self.weights(label, i_w, 2, 0)
        if wq is None or rng is None:
            return None
        w, q = wq
        n_out, k_in = w.shape
        bias = self.bias(label, i_b, n_out)
        if bias is False:
            return None
        s_in, _ = self.scale_zp(i_in)
        s_out, _ = self.scale_zp(i_out)
        if q.scales.size == 1 and bias is not None:
            # GetQuantizedConvolutionMultipler's bias-scale sanity check (Prepare fails otherwise).
            bq = self.quant(i_b)
            bias_scale = float(bq.scales[0]) if bq is not None else 0.0
            ips = float(s_in) * float(q.scales[0])
            if abs(ips - bias_scale) / float(s_out) > 0.02:
                self.problems.append(f"{label}: bias scale {bias_scale} != input scale * weight scale {ips} "
                                     "(TFLM rejects this model)")
                return None
        mult, shift = fc_multipliers(s_in, q.scales, s_out)
        if not self.requant_ok(label, shift):
            return None
        n_in_elems = int(np.prod(self.shape(i_in)))
        if n_in_elems % k_in or int(np.prod(self.shape(i_out))) * k_in != n_in_elems * n_out:
            self.problems.append(f"{label}: input {list(self.shape(i_in))} and output {list(self.shape(i_out))} "
                                 f"do not match weights [{n_out}, {k_in}]")
            return None
        in_shape = self.shape(i_in)
        fallback = in_shape if in_shape[-1] == k_in else (n_in_elems // k_in, k_in)

        build = self.weighted_build(ir.FULLY_CONNECTED, i_w, w, i_b, bias, mult, shift, _act_words(rng))
        return _Pending(label, ir.FULLY_CONNECTED, [_Use(i_in, lambda s: s[-1] == k_in, fallback)],
                        _Use(i_out, _any_shape, self.shape(i_out)), build)

    def _nhwc(self, label: str, i: int, what: str) -> tuple[int, int, int, int] | None:
        s = self.shape(i)
        if len(s) != 4 or s[0] != 1:
            self.problems.append(f"{label}: {what} has shape {list(s)}; expected [1, H, W, C]")
            return None
        return s

    def _window_options(self, label: str, opts, has_dilation: bool):
        padding = int(getattr(opts, "padding", 0) or 0)
        sh, sw = int(opts.strideH), int(opts.strideW)
        dh = int(getattr(opts, "dilationHFactor", 1) or 1) if has_dilation else 1
        dw = int(getattr(opts, "dilationWFactor", 1) or 1) if has_dilation else 1
        if padding not in _PADDING_NAMES:
            self.problems.append(f"{label}: unknown padding {padding}")
            return None
        if min(sh, sw, dh, dw) < 1 or max(sh, sw, dh, dw) > 0xFFFF:
            self.problems.append(f"{label}: strides {sh}x{sw} / dilation {dh}x{dw} out of range")
            return None
        return padding, sh, sw, dh, dw

    def _spatial_out(self, label, i_in, i_out, fh, fw, padding, sh, sw, dh, dw, c_out):
        _, h, w, _ = self.shape(i_in)
        pad_top, pad_left, oh, ow = compute_padding_height_width(sh, sw, dh, dw, h, w, fh, fw, padding)
        want = (1, oh, ow, c_out)
        if self.shape(i_out) != want:
            self.problems.append(f"{label}: output shape {list(self.shape(i_out))} != {list(want)} computed from "
                                 f"input {list(self.shape(i_in))}, {fh}x{fw} window, stride {sh}x{sw}, "
                                 f"dilation {dh}x{dw}, {_PADDING_NAMES[padding]} padding")
            return None
        if oh < 1 or ow < 1:
            self.problems.append(f"{label}: empty output")
            return None
        return pad_top, pad_left

    def op_conv(self, k, op, depthwise: bool) -> _Pending | None:
        name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
        r = self.window_io(k, op, name, (2, 3), True)
        if r is None:
            return None
        label, ins, i_out, opts, rng, win = r
        i_in, i_w = ins[0], ins[1]
        i_b = ins[2] if len(ins) > 2 else -1
        wq = self.weights(label, i_w, 4, 3 if depthwise else 0, "filter")
        if wq is None or rng is None or win is None:
            return None
        padding, sh, sw, dh, dw = win
        filt, q = wq
        c_in = self.shape(i_in)[3]
        c_out = self.shape(i_out)[3]
        attrs = {}
        if depthwise:
            _, fh, fw, fc = filt.shape
            mult = int(getattr(opts, "depthMultiplier", 0) or 0)
            if filt.shape[0] != 1 or fc != c_out or mult < 1 or c_in * mult != c_out:
                self.problems.append(f"{label}: filter {list(filt.shape)}, depth_multiplier {mult}, input depth "
                                     f"{c_in} and output depth {c_out} do not match (filter [1, KH, KW, "
                                     "C_in * depth_multiplier] expected)")
                return None
            attrs["depth_multiplier"] = mult
        else:
            co, fh, fw, fc = filt.shape
            if co != c_out or fc != c_in:
                extra = " (grouped convolutions are not supported)" if co == c_out and fc and c_in % fc == 0 else ""
                self.problems.append(f"{label}: filter {list(filt.shape)} does not match input depth {c_in} and "
                                     f"output depth {c_out} (filter [C_out, KH, KW, C_in] expected){extra}")
                return None
        bias = self.bias(label, i_b, c_out)
        if bias is False:
            return None
        pads = self._spatial_out(label, i_in, i_out, fh, fw, padding, sh, sw, dh, dw, c_out)
        if pads is None:
            return None
        s_in, _ = self.scale_zp(i_in)
        s_out, _ = self.scale_zp(i_out)
        m, s = conv_multipliers(s_in, q.scales, s_out, c_out)
        if not self.requant_ok(label, s):
            return None
        words = {"stride_h": sh, "stride_w": sw, "dilation_h": dh, "dilation_w": dw, "pad_top": pads[0],
                 "pad_left": pads[1], **attrs, **_act_words(rng)}
        opcode = ir.DEPTHWISE_CONV_2D if depthwise else ir.CONV_2D
        build = self.weighted_build(opcode, i_w, filt, i_b, bias, m, s, words)
        return _Pending(label, opcode, [_Use(i_in, _exactly(self.shape(i_in)), self.shape(i_in))],
                        _Use(i_out, _exactly(self.shape(i_out)), self.shape(i_out)), build)

    def op_pool(self, k, op, name: str) -> _Pending | None:
        r = self.window_io(k, op, name, (1,), False)
        if r is None:
            return None
        label, ins, i_out, opts, rng, win = r
        i_in = ins[0]
        if rng is None or win is None:
            return None
        padding, sh, sw, _, _ = win
        fh, fw = int(opts.filterHeight), int(opts.filterWidth)
        if not (1 <= fh <= 0xFFFF and 1 <= fw <= 0xFFFF):
            self.problems.append(f"{label}: filter {fh}x{fw} out of range")
            return None
        if self.scale_zp(i_in) != self.scale_zp(i_out):
            self.problems.append(f"{label}: input and output quantization differ ({self.scale_zp(i_in)} vs "
                                 f"{self.scale_zp(i_out)}); pooling requires them equal")
            return None
        c = self.shape(i_in)[3]
        pads = self._spatial_out(label, i_in, i_out, fh, fw, padding, sh, sw, 1, 1, c)
        if pads is None:
            return None
        opcode = ir.AVERAGE_POOL_2D if name == "AVERAGE_POOL_2D" else ir.MAX_POOL_2D
        words = {"stride_h": sh, "stride_w": sw, "filter_h": fh, "filter_w": fw, "pad_top": pads[0],
                 "pad_left": pads[1], **_act_words(rng)}
        if opcode == ir.AVERAGE_POOL_2D:
            # TFLM fails on an output position whose window holds no input pixel (count 0)
            _, h, w, _ = self.shape(i_in)
            _, oh, ow, _ = self.shape(i_out)
            for size, out_n, stride, f, pad in ((h, oh, sh, fh, pads[0]), (w, ow, sw, fw, pads[1])):
                for o in (0, out_n - 1):
                    origin = o * stride - pad
                    if min(f, size - origin) - max(0, -origin) < 1:
                        self.problems.append(f"{label}: an output position averages no input pixels")
                        return None
        return self.unary(label, opcode, i_in, i_out, words)

    def op_mean(self, k, op) -> _Pending | None:
        r = self.io(k, op, "MEAN", (2,))
        if r is None:
            return None
        label, ins, i_out = r
        i_in, i_axis = ins
        shape = self.shape(i_in)
        axis = self.const_data(i_axis) if i_axis >= 0 else None
        if axis is None or self.ttype(i_axis) != _T_INT32:
            self.problems.append(f"{label}: the axes must be a constant int32 tensor")
            return None
        axes = sorted({int(a) + len(shape) if int(a) < 0 else int(a) for a in axis.view("<i4")})
        if len(shape) == 4 and shape[0] == 1 and axes == [1, 2]:
            view = shape
        elif len(shape) == 3 and shape[0] == 1 and axes == [1]:
            view = (1, 1, shape[1], shape[2])  # GlobalAveragePooling1D: a [1, 1, T, C] view
        else:
            self.problems.append(f"{label}: MEAN over axes {axes} of a {list(shape)} tensor is not supported "
                                 "(only over H and W of [1, H, W, C], or over T of [1, T, C]: global average "
                                 "pooling)")
            return None
        c = shape[-1]
        if int(np.prod(self.shape(i_out))) != c:
            self.problems.append(f"{label}: output {list(self.shape(i_out))} does not hold {c} channels")
            return None
        s_in, _ = self.scale_zp(i_in)
        s_out, _ = self.scale_zp(i_out)
        count = int(view[1] * view[2])
        mult, shift = mean_multiplier(s_in, s_out, count)
        if not self.requant_ok(label, np.asarray(shift)):
            return None

        def build(imp, reads, out):
            return ir.Op(ir.MEAN, [reads[0], out], {"multiplier": mult, "shift": shift})

        accepts = (lambda s: len(s) == 4 and s[0] == 1 and s[3] == c and s[1] * s[2] == count)
        return _Pending(label, ir.MEAN, [_Use(i_in, accepts, view)],
                        _Use(i_out, _any_shape, self.shape(i_out)), build)

    def op_add(self, k, op) -> _Pending | None:
        ins = [int(i) for i in (op.inputs or [])]
        if len(ins) == 2 and len(op.outputs or []) == 1 and min(ins) >= 0:
            label = f"ADD #{k} ('{self.tname(int(op.outputs[0]))}')"
            consts = [i for i in ins if self.const_data(i) is not None]
            if consts:
                self.problems.append(
                    f"{label}: ADD of a constant ('{self.tname(consts[0])}', shape {list(self.shape(consts[0]))}) "
                    "is not supported: edgeloop's ADD adds two computed tensors of equal shape (the TF 2.21 "
                    "converter emits such a broadcast bias ADD for Keras Conv1D(filters=1); use filters >= 2)")
                return None
            if not (self.shape(ins[0]) == self.shape(ins[1]) == self.shape(int(op.outputs[0]))):
                self.problems.append(
                    f"{label}: broadcasting ADD is not supported (shapes {list(self.shape(ins[0]))} + "
                    f"{list(self.shape(ins[1]))} -> {list(self.shape(int(op.outputs[0])))}; equal shapes required)")
                return None
        r = self.io(k, op, "ADD", (2,), what=("input1", "input2"))
        if r is None:
            return None
        label, ins, i_out = r
        i1, i2 = ins
        rng = self.fused_activation(label, op.builtinOptions, i_out)
        if rng is None:
            return None
        try:
            params = add_params(self.scale_zp(i1)[0], self.scale_zp(i2)[0], self.scale_zp(i_out)[0])
        except ValueError as e:
            self.problems.append(f"{label}: output scale out of the range TFLM's int8 ADD supports ({e})")
            return None
        words = {**params, **_act_words(rng)}

        def build(imp, reads, out):
            return ir.Op(ir.ADD, [reads[0], reads[1], out], dict(words))

        sh = self.shape(i_out)
        return _Pending(label, ir.ADD, [_Use(i1, _exactly(sh), sh), _Use(i2, _exactly(sh), sh)],
                        _Use(i_out, _exactly(sh), sh), build)

    def op_softmax(self, k, op) -> _Pending | None:
        def params_of(s_in):
            return softmax_params(float(getattr(op.builtinOptions, "beta", 1.0)), s_in)

        return self.lut_activation(k, op, "SOFTMAX", ir.SOFTMAX, params_of, " (TFLM requires it)")

    def op_logistic(self, k, op) -> _Pending | None:
        return self.lut_activation(k, op, "LOGISTIC", ir.LOGISTIC, logistic_params)

    # --- ir tensors ----------------------------------------------------------------------------------
    def constant(self, name: str, arr: np.ndarray) -> int:
        self.g_tensors.append(ir.Tensor(name=name, shape=tuple(arr.shape), dtype=str(arr.dtype), data=arr))
        return len(self.g_tensors) - 1

    def view(self, use: _Use) -> int:
        """The ir tensor through which an op reads / writes a buffer (creating the buffer or a view)."""
        root = self.find(use.tfl)
        scale, zp = self.scale_zp(use.tfl)
        used_names = {t.name for t in self.g_tensors}
        if root not in self.views:
            src = self.primary[root]
            self.g_tensors.append(ir.Tensor(name=self.tname(src), shape=self.shape(src), dtype="int8",
                                            scale=scale, zero_point=zp))
            self.views[root] = [len(self.g_tensors) - 1]
        for v in self.views[root]:
            if use.accepts(self.g_tensors[v].shape):
                return v
        name = self.tname(use.tfl)
        if name in used_names:
            name = f"{name}/view{len(self.views[root])}"
        self.g_tensors.append(ir.Tensor(name=name, shape=tuple(use.fallback), dtype="int8", scale=scale,
                                        zero_point=zp, alias_of=self.views[root][0]))
        self.views[root].append(len(self.g_tensors) - 1)
        return len(self.g_tensors) - 1

    # --- the whole model -----------------------------------------------------------------------------
    def run(self, model_id: int, model_version: int) -> ir.Graph:
        where, problems = self.where, self.problems
        sg, tensors, ops = self.sg, self.tensors, self.ops
        g_inputs = list(sg.inputs if sg.inputs is not None else [])
        g_outputs = list(sg.outputs if sg.outputs is not None else [])
        op_names = [self.op_name(op) for op in ops]
        hint = None

        # --- float / hybrid / wrong-type models -----------------------------------------------------
        used = {i for op in ops for i in list(op.inputs or []) + list(op.outputs or []) if i >= 0}
        used |= set(g_inputs) | set(g_outputs)
        float_used = sorted(i for i in used if self.ttype(i) in _FLOAT_TYPES)
        if float_used:
            hybrid = []
            for op, name in zip(ops, op_names):
                ins = list(op.inputs or [])
                if name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) >= 2:
                    if self.ttype(ins[0]) in _FLOAT_TYPES and self.ttype(ins[1]) not in _FLOAT_TYPES:
                        hybrid.append(name)
            io_float = [i for i in g_inputs + g_outputs if self.ttype(i) in _FLOAT_TYPES]
            inner_float = [i for i in float_used if i not in io_float]
            if hybrid:
                problems.append(
                    "hybrid (dynamic-range quantized) model: weights are int8 but activations are float32 "
                    f"({', '.join(sorted(set(hybrid)))} with float inputs); this is what Optimize.DEFAULT gives "
                    "without a representative_dataset")
            elif inner_float or not any(n in ("QUANTIZE", "DEQUANTIZE") for n in op_names):
                problems.append(f"float model: {len(float_used)} tensors are float32/float16, not int8")
            else:
                problems.append(
                    "the model's input/output are float32 (QUANTIZE/DEQUANTIZE at the boundary); "
                    "set converter.inference_input_type = converter.inference_output_type = tf.int8")
            hint = CONVERTER_HINT

        # --- operators ---------------------------------------------------------------------------------
        unsupported: dict[str, int] = {}
        for name in op_names:
            if name not in SUPPORTED_OPS:
                unsupported[name] = unsupported.get(name, 0) + 1
        if unsupported:
            listed = ", ".join(f"{n} (x{c})" if c > 1 else n for n, c in unsupported.items())
            problems.append(f"unsupported operators: {listed}; edgeloop supports {', '.join(SUPPORTED_OPS)} "
                            "(RESHAPE, EXPAND_DIMS and SQUEEZE as no-copy views)")
        if not ops:
            problems.append("the model has no operators")
        if len(g_inputs) != 1:
            problems.append(f"model has {len(g_inputs)} inputs; edgeloop supports exactly one")
        if len(g_outputs) != 1:
            problems.append(f"model has {len(g_outputs)} outputs; edgeloop supports exactly one")
        if problems:
            _fail(where, problems, hint)

        # --- reshape aliases (union-find) ----------------------------------------------------------------
        for k, (op, name) in enumerate(zip(ops, op_names)):
            if name not in ALIAS_OPS:
                continue
            if not op.inputs or len(op.outputs or []) != 1 or int(op.inputs[0]) < 0:
                problems.append(f"{name} #{k}: expected a data input and one output")
                continue
            src, dst = int(op.inputs[0]), int(op.outputs[0])
            ok = self.check_act(src, f"{name} input") & self.check_act(dst, f"{name} output")
            if not ok:
                continue
            if int(np.prod(self.shape(src))) != int(np.prod(self.shape(dst))):
                problems.append(f"{name} '{self.tname(dst)}' changes the element count "
                                f"({list(self.shape(src))} -> {list(self.shape(dst))})")
            qs, qd = self.quant(src), self.quant(dst)
            if qs.scales.tolist() != qd.scales.tolist() or qs.zero_points.tolist() != qd.zero_points.tolist():
                problems.append(f"{name} '{self.tname(dst)}' changes the quantization; a no-copy reshape cannot")
            self.parent[self.find(dst)] = self.find(src)

        # --- per-op checks and Prepare arithmetic --------------------------------------------------------
        handlers = {
            "FULLY_CONNECTED": self.op_fully_connected,
            "CONV_2D": lambda k, op: self.op_conv(k, op, False),
            "DEPTHWISE_CONV_2D": lambda k, op: self.op_conv(k, op, True),
            "AVERAGE_POOL_2D": lambda k, op: self.op_pool(k, op, "AVERAGE_POOL_2D"),
            "MAX_POOL_2D": lambda k, op: self.op_pool(k, op, "MAX_POOL_2D"),
            "MEAN": self.op_mean,
            "ADD": self.op_add,
            "SOFTMAX": self.op_softmax,
            "LOGISTIC": self.op_logistic,
        }
        pending: list[_Pending] = []
        for k, (op, name) in enumerate(zip(ops, op_names)):
            if name in handlers:
                p = handlers[name](k, op)
                if p is not None:
                    pending.append(p)
        if problems:
            _fail(where, problems)

        # --- dataflow: every buffer is written once, before it is read --------------------------------
        g_in, g_out = int(g_inputs[0]), int(g_outputs[0])
        self.check_act(g_in, "graph input")
        self.check_act(g_out, "graph output")
        if problems:
            _fail(where, problems)
        producer: dict[int, int] = {}
        for j, p in enumerate(pending):
            for use in p.reads:
                r = self.find(use.tfl)
                if r != self.find(g_in) and r not in producer:
                    problems.append(f"{p.label}: input '{self.tname(use.tfl)}' is read before it is written")
            r_out = self.find(p.write.tfl)
            if r_out in producer or r_out == self.find(g_in):
                problems.append(f"{p.label}: output '{self.tname(p.write.tfl)}' is written twice")
            producer[r_out] = j
        if self.find(g_out) not in producer:
            problems.append("the graph output is not computed by any operator")
        if problems:
            _fail(where, problems)
        for root, j in producer.items():
            self.primary[root] = pending[j].write.tfl
        self.primary[self.find(g_out)] = g_out
        self.primary[self.find(g_in)] = g_in

        # --- ir tensors and ops ------------------------------------------------------------------------
        self.view(_Use(g_in, _any_shape, self.shape(g_in)))
        g_ops: list[ir.Op] = []
        for p in pending:
            reads = [self.view(u) for u in p.reads]
            out = self.view(p.write)
            g_ops.append(p.build(self, reads, out))
        out_idx = self.view(_Use(g_out, _exactly(self.shape(g_out)), self.shape(g_out)))
        graph = ir.Graph(tensors=self.g_tensors, ops=g_ops, inputs=[self.views[self.find(g_in)][0]],
                         outputs=[out_idx], model_id=int(model_id), model_version=int(model_version))
        for what, t in (("input", graph.input()), ("output", graph.output())):
            if t.shape[0] != 1:
                problems.append(f"graph {what} shape {list(t.shape)} must have batch dimension 1 "
                                "(build the Keras model with keras.Input(shape, batch_size=1))")
        for t in graph.tensors:
            if not 1 <= len(t.shape) <= 4 or any(not 1 <= d <= 0xFFFF for d in t.shape):
                problems.append(f"tensor '{t.name}' shape {list(t.shape)} is not representable in a blob "
                                "(1..4 dims, each 1..65535)")
        if problems:
            _fail(where, problems)
        return graph


def _build(model, where: str, model_id: int, model_version: int) -> ir.Graph:
    subgraphs = model.subgraphs or []
    if len(subgraphs) != 1:
        _fail(where, [f"model has {len(subgraphs)} subgraphs; edgeloop supports exactly one "
                      "(no control flow, no multiple signatures)"])
    return _Importer(model, where).run(model_id, model_version)
