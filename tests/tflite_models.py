"""Test helpers: small Keras models quantized to int8 .tflite, and hand-edited probe models.

TensorFlow / Keras are imported once, lazily (2-4 s).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIGITS_DIR = ROOT / "models" / "digits_mlp"


@functools.cache
def keras():
    from edgeloop_host import train

    train.tf()
    import keras as k

    return k


def tf():
    from edgeloop_host import train

    return train.tf()


def dense_stack(in_shape, widths, activations, seed=0, weight_gain=1.0, bias_scale=0.0, flatten_first=False):
    """keras.Sequential of Dense layers with batch size 1. bias_scale > 0 gives random non-zero biases."""
    k = keras()
    k.utils.set_random_seed(seed)
    layers = [k.Input(shape=tuple(in_shape), batch_size=1)]
    if flatten_first:
        layers.append(k.layers.Flatten())
    for w, a in zip(widths, activations):
        layers.append(k.layers.Dense(w, activation=a))
    model = k.Sequential(layers)
    rng = np.random.default_rng(seed)
    weights = []
    for arr in model.get_weights():
        if arr.ndim == 1:
            weights.append((rng.normal(size=arr.shape) * bias_scale).astype(np.float32))
        else:
            weights.append((arr * weight_gain).astype(np.float32))
    model.set_weights(weights)
    return model


def quantize(model, rep, per_channel=True) -> bytes:
    from edgeloop_host import train

    return train.quantize_keras(model, rep, per_channel=per_channel)


# ---------------------------------------------------------------------------------------------
# Hand-edited models: scales chosen so that a wrong Prepare computation gives a different output


def _edit(tfl: bytes):
    from ai_edge_litert.tools import flatbuffer_utils as fu

    return fu.read_model_from_bytearray(bytearray(tfl))


def _pack(model) -> bytes:
    from ai_edge_litert.tools import flatbuffer_utils as fu

    return bytes(fu.convert_object_to_bytearray(model))


def _set_quant(t, scales, zero_points):
    t.quantization.scale = np.asarray(scales, dtype=np.float32)
    t.quantization.zeroPoint = np.asarray(zero_points, dtype=np.int64)


def _set_data(model, t, arr: np.ndarray):
    model.buffers[t.buffer].data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), dtype=np.uint8).copy()


def _multiplier(s_in, s_w, s_out, float_product: bool):
    from edgeloop_host.tflite_import import quantize_multiplier

    if float_product:
        return quantize_multiplier(float(np.float32(s_in) * np.float32(s_w)) / float(np.float32(s_out)))
    return quantize_multiplier(float(np.float32(s_in)) * float(np.float32(s_w)) / float(np.float32(s_out)))


def _discriminating_acc(rng, m_a, m_b):
    """An int32 accumulator whose requantized value differs between (multiplier, shift) m_a and m_b.

    Aims at a rounding boundary: acc ~= (k + 1/2) / real for the mean real scale, where the two multipliers
    put acc * M on either side of the boundary when |acc| is large; checks candidates exactly.
    """
    from edgeloop_host.reference import multiply_by_quantized_multiplier as mbqm

    real = (m_a[0] * 2.0 ** (m_a[1] - 31) + m_b[0] * 2.0 ** (m_b[1] - 31)) / 2
    ks = np.arange(-127, 127) + 0.5
    centres = np.round(ks / real).astype(np.int64)
    cand = (centres[:, None] + np.arange(-4, 5)[None, :]).ravel()
    cand = cand[(cand > -(2**31)) & (cand < 2**31)]
    d = np.nonzero(mbqm(cand, m_a[0], m_a[1]) != mbqm(cand, m_b[0], m_b[1]))[0]
    if not len(d):
        return None
    return int(cand[d[rng.integers(len(d))]])


def multiplier_probe_model(per_channel: bool, n: int = 8, seed: int = 0):
    """One FULLY_CONNECTED (K=1, weights 1, input/output zero point 0, no activation) whose biases are
    accumulators on which the float32-product and the all-double multiplier computations disagree.

    Returns (tflite bytes, double_output[n], float_product_output[n]) for input x = 0: "double" uses
    (double)s_in * (double)s_w / (double)s_out, "float_product" (double)(s_in * s_w in float32) / s_out.
    """
    rng = np.random.default_rng(seed)
    model = dense_stack((1,), [n], [None], seed=seed, bias_scale=1.0)
    tfl = quantize(model, rng.random((16, 1)), per_channel=per_channel)
    m = _edit(tfl)
    sg = m.subgraphs[0]
    op = sg.operators[0]
    t_in, t_w, t_b, t_out = (sg.tensors[i] for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
    from edgeloop_host.reference import multiply_by_quantized_multiplier as mbqm

    while True:
        s_in = np.float32(rng.uniform(1e-3, 1e-2))
        base_w = rng.uniform(1e-3, 1e-2)
        s_out = np.float32(float(s_in) * base_w * 2**25 * rng.uniform(1, 1.5))
        w_scales, biases, good, bad = [], [], [], []
        for c in range(n if per_channel else 1):
            for _ in range(200):
                s_w = np.float32(base_w * rng.uniform(0.7, 1.3))
                right = _multiplier(s_in, s_w, s_out, float_product=False)
                wrong = _multiplier(s_in, s_w, s_out, float_product=True)
                if right != wrong:
                    break
            else:
                break
            w_scales.append(s_w)
            accs = [_discriminating_acc(rng, right, wrong) for _ in range(1 if per_channel else n)]
            if any(a is None for a in accs):
                break
            for a in accs:
                biases.append(a)
                good.append(int(mbqm(a, *right)))
                bad.append(int(mbqm(a, *wrong)))
        else:
            break
    _set_quant(t_in, [s_in], [0])
    _set_quant(t_out, [s_out], [0])
    _set_quant(t_w, w_scales, [0] * len(w_scales))
    t_w.quantization.quantizedDimension = 0
    _set_data(m, t_w, np.ones((n, 1), dtype=np.int8))
    b_scales = [np.float32(s_in) * w for w in w_scales]
    _set_quant(t_b, b_scales, [0] * len(b_scales))
    _set_data(m, t_b, np.array(biases, dtype="<i4"))
    good = np.clip(good, -128, 127).astype(np.int8)
    bad = np.clip(bad, -128, 127).astype(np.int8)
    assert not np.array_equal(good, bad)
    return _pack(m), good, bad


def relu6_scale_probe(seed: int = 0):
    """An output scale s where 6/s rounds differently in float32 than in double, and both results."""
    from edgeloop_host.tflite_import import _round_half_away

    rng = np.random.default_rng(seed)
    while True:
        k = int(rng.integers(20, 120))
        s0 = np.float32(6.0 / (k + 0.5))
        neighbours = []
        for direction in (np.float32(np.inf), np.float32(0)):
            s = s0
            for _ in range(64):
                s = np.nextafter(s, direction, dtype=np.float32)
                neighbours.append(s)
        for s in [s0] + neighbours:
            f32 = _round_half_away(float(np.float32(6.0) / s))
            f64 = _round_half_away(6.0 / float(s))
            if f32 != f64:
                return s, int(f32), int(f64)


def activation_probe_model(seed: int = 0):
    """FC (K=1) with fused RELU6 whose output scale makes float32 vs double quantization of 6.0 differ.

    Channel 0 saturates high (output = act_max), channel 1 low (act_min). Returns (tflite bytes,
    act_max expected from float32 arithmetic, act_max a double computation would give, out zero point).
    """
    rng = np.random.default_rng(seed)
    model = dense_stack((1,), [2], ["relu6"], seed=seed, bias_scale=1.0)
    tfl = quantize(model, rng.random((16, 1)), per_channel=False)
    m = _edit(tfl)
    sg = m.subgraphs[0]
    op = sg.operators[0]
    t_in, t_w, t_b, t_out = (sg.tensors[i] for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
    s_out, q32, q64 = relu6_scale_probe(seed)
    zp = -128
    _set_quant(t_out, [s_out], [zp])
    s_in = np.float32(0.01)
    s_w = np.float32(0.01)
    _set_quant(t_in, [s_in], [0])
    _set_quant(t_w, [s_w], [0])
    _set_data(m, t_w, np.ones((2, 1), dtype=np.int8))
    _set_quant(t_b, [np.float32(s_in * s_w)], [0])
    _set_data(m, t_b, np.array([2**30, -(2**30)], dtype="<i4"))
    return _pack(m), min(127, zp + q32), min(127, zp + q64), zp


def left_shift_probe_model(seed: int = 0):
    """FC (K=1, weights 1, zero points 0) with effective scale ~1000 (a left shift of 10) and biases whose
    left-shifted value overflows int32. Returns (tflite bytes, biases int64[n])."""
    rng = np.random.default_rng(seed)
    biases = np.array([(1 << 21) + 5, -(1 << 21) - 5, 3 << 21, (1 << 22) - 1, 1000, -1000, (1 << 31) - 1,
                       -(1 << 31)], dtype=np.int64)
    n = len(biases)
    model = dense_stack((1,), [n], [None], seed=seed, bias_scale=1.0)
    tfl = quantize(model, rng.random((16, 1)), per_channel=False)
    m = _edit(tfl)
    sg = m.subgraphs[0]
    op = sg.operators[0]
    t_in, t_w, t_b, t_out = (sg.tensors[i] for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
    s_in, s_w = np.float32(0.01), np.float32(0.01)
    _set_quant(t_in, [s_in], [0])
    _set_quant(t_w, [s_w], [0])
    _set_quant(t_out, [np.float32(float(s_in) * float(s_w) / 1000.0)], [0])
    _set_data(m, t_w, np.ones((n, 1), dtype=np.int8))
    _set_quant(t_b, [np.float32(s_in * s_w)], [0])
    _set_data(m, t_b, biases.astype("<i4"))
    return _pack(m), biases
