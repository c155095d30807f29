"""Full-int8 .tflite -> ir.Graph.

Requantization parameters are not stored in a .tflite; they are computed here exactly as TensorFlow Lite
Micro's FULLY_CONNECTED Prepare does (tensorflow/lite/micro/kernels/fully_connected_common.cc,
tensorflow/lite/micro/kernels/kernel_util.cc, tensorflow/lite/kernels/internal/quantization_util.cc), as
measured on the pinned `tflite-micro` package with hand-edited probe models (tests/test_tflite_import.py):

* effective scale ``(double)s_in * (double)s_w[c] / (double)s_out`` for per-channel AND per-tensor weights.
  (TFLite's tensorflow/lite/kernels/kernel_util.cc per-tensor ``GetQuantizedConvolutionMultipler`` multiplies
  s_in * s_w in float32 first; TFLM's own copy does not, and the two differ by up to ~64 LSB of the
  multiplier. The per-tensor path also keeps the bias check ``|s_in*s_w - s_bias| / s_out <= 0.02``.);
* ``QuantizeMultiplier``: ``frexp``, ``round(q * 2^31)`` (half away from zero), ``2^31`` folds to ``2^30`` with
  exponent + 1, exponents below -31 flush to (0, 0);
* fused activations: ``CalculateActivationRangeQuantized`` quantizes 0 / 6 / -1 / 1 in float32
  (``f / scale`` rounded half away from zero, plus the zero point) and intersects with [-128, 127].

RESHAPE ops that keep the flat size are no-ops: their input and output become one ir tensor, whose shape is
the graph input/output's own shape when every FULLY_CONNECTED reading it accepts that (last dim == K), else
the shape a FULLY_CONNECTED reads (a Flatten at the model input makes the graph input [1, K]). A
FULLY_CONNECTED output keeps its TFLite shape (batches * N elements, e.g. [1, T, N] with keep_num_dims).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from . import ir

SUPPORTED_OPS = ("FULLY_CONNECTED", "RESHAPE")

# TFLite schema enum values (tensorflow/lite/schema/schema.fbs), fixed forever by the format.
_T_FLOAT32, _T_FLOAT16, _T_INT32, _T_UINT8, _T_INT64, _T_INT16, _T_INT8, _T_FLOAT64, _T_INT4 = (
    0, 1, 2, 3, 4, 7, 9, 10, 17)
_FLOAT_TYPES = {_T_FLOAT32, _T_FLOAT16, _T_FLOAT64}
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3
_ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT_SPLIT"}

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


def _build(model, where: str, model_id: int, model_version: int) -> ir.Graph:
    names = _builtin_names()
    subgraphs = model.subgraphs or []
    if len(subgraphs) != 1:
        _fail(where, [f"model has {len(subgraphs)} subgraphs; edgeloop supports exactly one "
                      "(no control flow, no multiple signatures)"])
    sg = subgraphs[0]
    tensors = sg.tensors or []
    ops = sg.operators or []
    buffers = model.buffers or []
    g_inputs = list(sg.inputs if sg.inputs is not None else [])
    g_outputs = list(sg.outputs if sg.outputs is not None else [])

    def op_name(op) -> str:
        oc = model.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        name = names.get(code, f"builtin {code}")
        if name == "CUSTOM":
            cc = oc.customCode.decode("utf-8", "replace") if isinstance(oc.customCode, bytes) else oc.customCode
            name = f"CUSTOM({cc})"
        return name

    op_names = [op_name(op) for op in ops]
    problems: list[str] = []
    hint = None

    # --- float / hybrid / wrong-type models -------------------------------------------------
    def ttype(i: int) -> int:
        return int(tensors[i].type)

    used = {i for op in ops for i in list(op.inputs or []) + list(op.outputs or []) if i >= 0}
    used |= set(g_inputs) | set(g_outputs)
    float_used = sorted(i for i in used if ttype(i) in _FLOAT_TYPES)
    if float_used:
        hybrid = []
        for op, name in zip(ops, op_names):
            ins = list(op.inputs or [])
            if name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) >= 2:
                if ttype(ins[0]) in _FLOAT_TYPES and ttype(ins[1]) not in _FLOAT_TYPES:
                    hybrid.append(name)
        io_float = [i for i in g_inputs + g_outputs if ttype(i) in _FLOAT_TYPES]
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

    # --- operators -----------------------------------------------------------------------------
    unsupported: dict[str, int] = {}
    for name in op_names:
        if name not in SUPPORTED_OPS:
            unsupported[name] = unsupported.get(name, 0) + 1
    if unsupported:
        listed = ", ".join(f"{n} (x{c})" if c > 1 else n for n, c in unsupported.items())
        problems.append(f"unsupported operators: {listed}; edgeloop supports {', '.join(SUPPORTED_OPS)}")
    if not ops:
        problems.append("the model has no operators")
    if len(g_inputs) != 1:
        problems.append(f"model has {len(g_inputs)} inputs; edgeloop supports exactly one")
    if len(g_outputs) != 1:
        problems.append(f"model has {len(g_outputs)} outputs; edgeloop supports exactly one")
    if problems:
        _fail(where, problems, hint)

    # --- every remaining op is FULLY_CONNECTED or RESHAPE; check them all ------------------------
    def tname(i: int) -> str:
        n = tensors[i].name
        return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)

    def shape(i: int) -> tuple[int, ...]:
        return tuple(int(d) for d in (tensors[i].shape if tensors[i].shape is not None else []))

    def const_data(i: int) -> np.ndarray | None:
        b = tensors[i].buffer
        if b is None or b <= 0 or b >= len(buffers):
            return None
        d = buffers[b].data
        if d is None or len(d) == 0:
            return None
        return np.frombuffer(bytes(bytearray(d)), dtype=np.uint8)

    def check_act(i: int, what: str) -> None:
        if ttype(i) != _T_INT8:
            problems.append(f"{what} tensor '{tname(i)}' is {_type_name(ttype(i))}; only int8 activations are supported")
            return
        q = _quant(tensors[i])
        if q is None or q.scales.size != 1:
            problems.append(f"{what} tensor '{tname(i)}' needs per-tensor quantization (one scale)")
            return
        s, zp = float(q.scales[0]), int(q.zero_points[0])
        if not (math.isfinite(s) and s > 0):
            problems.append(f"{what} tensor '{tname(i)}' has invalid scale {s}")
        if not INT8_MIN <= zp <= INT8_MAX:
            problems.append(f"{what} tensor '{tname(i)}' has zero point {zp} outside int8")
        if any(d < 1 for d in shape(i)) or not shape(i):
            problems.append(f"{what} tensor '{tname(i)}' has shape {list(shape(i))}; static shapes with dims >= 1 "
                            "are required (use keras.Input(shape, batch_size=1))")

    # Union-find over RESHAPE aliases.
    parent: dict[int, int] = {}
    reshaped: list[int] = []  # tflite tensors touched by RESHAPE, in op order

    def find(i: int) -> int:
        while parent.get(i, i) != i:
            i = parent[i]
        return i

    for op, name in zip(ops, op_names):
        if name != "RESHAPE":
            continue
        src, dst = int(op.inputs[0]), int(op.outputs[0])
        check_act(src, "RESHAPE input")
        check_act(dst, "RESHAPE output")
        if const_data(src) is not None:
            problems.append(f"RESHAPE of constant tensor '{tname(src)}' is not supported")
        if int(np.prod(shape(src))) != int(np.prod(shape(dst))):
            problems.append(f"RESHAPE '{tname(dst)}' changes the element count "
                            f"({list(shape(src))} -> {list(shape(dst))})")
        qs, qd = _quant(tensors[src]), _quant(tensors[dst])
        if qs is not None and qd is not None and (
                qs.scales.tolist() != qd.scales.tolist() or qs.zero_points.tolist() != qd.zero_points.tolist()):
            problems.append(f"RESHAPE '{tname(dst)}' changes the quantization; a no-copy reshape cannot")
        parent[find(dst)] = find(src)
        reshaped += [src, dst]

    # FULLY_CONNECTED checks.
    fcs = []
    for k, (op, name) in enumerate(zip(ops, op_names)):
        if name != "FULLY_CONNECTED":
            continue
        ins = [int(i) for i in (op.inputs or [])]
        outs = [int(i) for i in (op.outputs or [])]
        label = f"FULLY_CONNECTED #{k} ('{tname(outs[0])}')" if outs else f"FULLY_CONNECTED #{k}"
        if len(ins) < 2 or len(outs) != 1:
            problems.append(f"{label}: expected input, weights[, bias] and one output")
            continue
        i_in, i_w = ins[0], ins[1]
        i_b = ins[2] if len(ins) > 2 else -1
        i_out = outs[0]
        opts = op.builtinOptions
        act = int(getattr(opts, "fusedActivationFunction", 0) or 0)
        if act not in (_ACT_NONE, _ACT_RELU, _ACT_RELU6, _ACT_RELU_N1_TO_1):
            problems.append(f"{label}: fused activation {_ACT_NAMES.get(act, act)} is not supported")
        if int(getattr(opts, "weightsFormat", 0) or 0) != 0:
            problems.append(f"{label}: shuffled weights format is not supported")
        check_act(i_in, f"{label} input")
        check_act(i_out, f"{label} output")
        if const_data(i_in) is not None:
            problems.append(f"{label}: constant input is not supported")
        # weights
        wshape = shape(i_w)
        wdata = const_data(i_w)
        wq = _quant(tensors[i_w])
        if ttype(i_w) != _T_INT8:
            problems.append(f"{label}: weights are {_type_name(ttype(i_w))}; only int8 weights are supported")
            continue
        if wdata is None:
            problems.append(f"{label}: weights are not constant")
            continue
        if len(wshape) != 2:
            problems.append(f"{label}: weights have shape {list(wshape)}; expected [N, K]")
            continue
        n_out, k_in = wshape
        if wdata.size != n_out * k_in:
            problems.append(f"{label}: weight buffer holds {wdata.size} bytes, shape {list(wshape)} needs "
                            f"{n_out * k_in} (truncated or corrupt file)")
            continue
        if wq is None:
            problems.append(f"{label}: weights are not quantized")
            continue
        if np.any(wq.zero_points != 0):
            bad = sorted(set(int(z) for z in wq.zero_points if z != 0))
            problems.append(f"{label}: weight zero points must be 0 (symmetric int8), found {bad[:8]}")
        per_channel = wq.scales.size > 1
        if per_channel and (wq.qdim != 0 or wq.scales.size != n_out):
            problems.append(f"{label}: per-channel weight scales must run along the output dimension "
                            f"({wq.scales.size} scales, quantized_dimension {wq.qdim}, {n_out} outputs)")
            continue
        if not all(math.isfinite(float(s)) and s > 0 for s in wq.scales):
            problems.append(f"{label}: weight scales must be positive")
            continue
        # bias
        bias = None
        if i_b >= 0:
            bdata = const_data(i_b)
            if ttype(i_b) != _T_INT32:
                problems.append(f"{label}: bias is {_type_name(ttype(i_b))}; int32 expected")
                continue
            if bdata is None:
                problems.append(f"{label}: bias is not constant")
                continue
            if shape(i_b) != (n_out,) or bdata.size != 4 * n_out:
                problems.append(f"{label}: bias has shape {list(shape(i_b))} / {bdata.size} bytes; "
                                f"expected [{n_out}] int32")
                continue
            bias = bdata.view("<i4").astype(np.int32)
        fcs.append((k, label, i_in, i_w, i_b, i_out, act, wdata.view(np.int8).reshape(n_out, k_in), wq, bias,
                    bool(getattr(opts, "keepNumDims", False))))
    if problems:
        _fail(where, problems)

    # --- dataflow: every activation class is written once, before it is read ------------------
    g_in, g_out = int(g_inputs[0]), int(g_outputs[0])
    producer: dict[int, int] = {}  # class root -> fc index (position in fcs)
    consumer_k: dict[int, list[int]] = {}  # class root -> K of every FULLY_CONNECTED reading it
    for j, fc in enumerate(fcs):
        _, label, i_in, _, _, i_out, *_ = fc
        r_in, r_out = find(i_in), find(i_out)
        if r_in != find(g_in) and r_in not in producer:
            problems.append(f"{label}: input '{tname(i_in)}' is read before it is written")
        consumer_k.setdefault(r_in, []).append(int(fc[7].shape[1]))
        if r_out in producer or r_out == find(g_in):
            problems.append(f"{label}: output '{tname(i_out)}' is written twice")
        producer[r_out] = j
    if find(g_out) not in producer:
        problems.append("the graph output is not computed by any FULLY_CONNECTED")
    check_act(g_in, "graph input")
    check_act(g_out, "graph output")
    if problems:
        _fail(where, problems)

    # --- one ir tensor per alias class ----------------------------------------------------------
    def class_shape(root: int) -> tuple[int, ...]:
        """One shape for a RESHAPE alias class: every FULLY_CONNECTED reading it needs the last dim == K.

        Preference: the graph input / output's own shape, then the producer's output shape, then any
        reshape's shape (e.g. a Flatten output read by a FULLY_CONNECTED).
        """
        cands = [i for i in (g_in, g_out) if find(i) == root]
        if root in producer:
            cands.append(fcs[producer[root]][5])
        cands += [i for i in reshaped if find(i) == root]
        ks = consumer_k.get(root, [])
        for c in cands:
            if all(shape(c)[-1] == k for k in ks):
                return shape(c)
        problems.append(f"tensor '{tname(cands[0])}' is read by FULLY_CONNECTED ops with depths {sorted(set(ks))} "
                        f"but none of its reshapes {[list(shape(c)) for c in cands]} ends in that depth")
        return shape(cands[0])

    g_tensors: list[ir.Tensor] = []
    index_of: dict[int, int] = {}

    def activation(i: int) -> int:
        root = find(i)
        if root not in index_of:
            q = _quant(tensors[i])
            index_of[root] = len(g_tensors)
            name = tname(g_in) if root == find(g_in) else tname(i)
            g_tensors.append(ir.Tensor(name=name, shape=class_shape(root), dtype="int8",
                                       scale=float(q.scales[0]), zero_point=int(q.zero_points[0])))
        return index_of[root]

    def constant(name: str, arr: np.ndarray) -> int:
        g_tensors.append(ir.Tensor(name=name, shape=tuple(arr.shape), dtype=str(arr.dtype), data=arr))
        return len(g_tensors) - 1

    activation(g_in)
    g_ops: list[ir.Op] = []
    for (k, label, i_in, i_w, i_b, i_out, act, w, wq, bias, _keep_dims) in fcs:
        a_in = activation(i_in)
        t_in = g_tensors[a_in]
        n_out, k_in = w.shape
        if t_in.shape[-1] != k_in:
            problems.append(f"{label}: input '{t_in.name}' has shape {list(t_in.shape)} after reshapes; "
                            f"its last dimension must be the weights' K = {k_in}")
            continue
        q_in, q_out = _quant(tensors[i_in]), _quant(tensors[i_out])
        s_in, s_out = q_in.scales[0], q_out.scales[0]
        if wq.scales.size == 1 and bias is not None:
            # GetQuantizedConvolutionMultipler's bias-scale sanity check (Prepare fails otherwise).
            bq = _quant(tensors[i_b])
            bias_scale = float(bq.scales[0]) if bq is not None else 0.0
            ips = float(s_in) * float(wq.scales[0])
            if abs(ips - bias_scale) / float(s_out) > 0.02:
                problems.append(f"{label}: bias scale {bias_scale} != input scale * weight scale {ips} "
                                "(TFLM rejects this model)")
                continue
        mult, shift = fc_multipliers(s_in, wq.scales, s_out)
        if np.any(shift > 30):
            problems.append(f"{label}: requantization scale too large (shift {int(shift.max())} > 30)")
            continue
        act_min, act_max = activation_range(act, float(s_out), int(q_out.zero_points[0]))
        wname = tname(i_w)
        idx_w = constant(wname, np.ascontiguousarray(w))
        idx_b = constant(tname(i_b), bias) if bias is not None else -1
        a_out = activation(i_out)
        out_t = g_tensors[a_out]
        if int(np.prod(out_t.shape)) * k_in != int(np.prod(t_in.shape)) * n_out:
            problems.append(f"{label}: output shape {list(out_t.shape)} does not match input "
                            f"{list(t_in.shape)} and weights [{n_out}, {k_in}]")
            continue
        idx_m = constant(f"{out_t.name}/multiplier", mult)
        idx_s = constant(f"{out_t.name}/shift", shift)
        g_ops.append(ir.Op(ir.FULLY_CONNECTED, [a_in, idx_w, idx_b, a_out, idx_m, idx_s],
                           {"act_min": int(act_min), "act_max": int(act_max)}))
    if problems:
        _fail(where, problems)

    graph = ir.Graph(tensors=g_tensors, ops=g_ops, inputs=[index_of[find(g_in)]], outputs=[index_of[find(g_out)]],
                     model_id=int(model_id), model_version=int(model_version))
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
