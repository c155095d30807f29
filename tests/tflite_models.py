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


def _probe_search(rng, n: int, per_channel: bool):
    """Scales (s_in, s_out, weight scales) and n bias accumulators on which the float32-product and the
    all-double multiplier computations requantize differently; (…, good = double outputs, bad = float-product
    outputs) before the output zero point and clamp."""
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
            return s_in, s_out, w_scales, biases, good, bad


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
    s_in, s_out, w_scales, biases, good, bad = _probe_search(rng, n, per_channel)
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


# ---------------------------------------------------------------------------------------------
# Builders for the TFLM int8 op set: each returns (tflite bytes, sample int8 inputs (n, *input_shape[1:])).
# The samples mix uniform random int8 values with calibration-like data quantized with the model's input
# quantization. Every builder is deterministic in its arguments (seed); nothing runs at import time.


def quantize_all(model, rep, per_channel: bool = True) -> bytes:
    """Full-int8 TFLite bytes; per_channel=False gives one weight scale per layer for Dense AND conv layers."""
    import contextlib
    import io
    import warnings

    t = tf()
    shape = (1,) + tuple(int(d) for d in model.inputs[0].shape[1:])
    samples = [np.asarray(s, dtype=np.float32).reshape(shape) for s in rep]

    def representative_dataset():
        for s in samples:
            yield [s]

    conv = t.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [t.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative_dataset
    conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = t.int8
    conv.inference_output_type = t.int8
    if not per_channel:
        conv._experimental_disable_per_channel = True
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return bytes(conv.convert())


def io_quantization(tfl: bytes) -> tuple[tuple[float, int], tuple[float, int]]:
    """((input scale, zero point), (output scale, zero point)) of a .tflite."""
    m = _edit(tfl)
    sg = m.subgraphs[0]
    res = []
    for i in (sg.inputs[0], sg.outputs[0]):
        q = sg.tensors[i].quantization
        res.append((float(q.scale[0]), int(q.zeroPoint[0])))
    return res[0], res[1]


def sample_inputs(tfl: bytes, float_samples: np.ndarray, n_uniform: int, seed: int = 0) -> np.ndarray:
    """n_uniform uniform random int8 samples followed by float_samples quantized like the model's input."""
    from edgeloop_host import train as T

    (s, zp), _ = io_quantization(tfl)
    fs = np.asarray(float_samples, np.float32)
    u = np.random.default_rng(seed).integers(-128, 128, (n_uniform,) + fs.shape[1:]).astype(np.int8)
    return np.concatenate([u, T.quantize_input(fs, s, zp)])


def _rep_data(shape, seed: int, lo: float, span: float, n: int) -> np.ndarray:
    return (lo + span * np.random.default_rng(seed + 1).random((n,) + tuple(shape))).astype(np.float32)


def _randomize(model, seed: int, weight_gain: float = 1.0, bias_scale: float = 0.1) -> None:
    """Scales the initial weights and draws non-zero biases, so the int8 arithmetic is exercised."""
    rng = np.random.default_rng(seed + 2)
    model.set_weights([(rng.normal(size=w.shape) * bias_scale).astype(np.float32) if w.ndim == 1
                       else (w * weight_gain).astype(np.float32) for w in model.get_weights()])


def _sequential(in_shape, layers, seed: int):
    k = keras()
    k.utils.set_random_seed(seed)
    return k.Sequential([k.Input(tuple(in_shape), batch_size=1)] + list(layers))


def _finish(model, in_shape, seed, lo, span, per_channel, n_rep=32, n_uniform=48, n_data=32):
    rep = _rep_data(in_shape, seed, lo, span, n_rep)
    tfl = quantize_all(model, rep, per_channel=per_channel)
    return tfl, sample_inputs(tfl, _rep_data(in_shape, seed + 7, lo, span, n_data), n_uniform, seed)


def conv2d_model(in_shape=(8, 8, 3), filters=4, kernel=(3, 3), strides=(1, 1), padding="same", dilation=(1, 1),
                 activation=None, per_channel=True, seed=0, lo=-1.0, span=2.0, weight_gain=1.0, bias_scale=0.1):
    """One Keras Conv2D -> CONV_2D (fused RELU/RELU6 when activation is 'relu'/'relu6')."""
    k = keras()
    model = _sequential(in_shape, [k.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                                   dilation_rate=dilation, activation=activation)], seed)
    _randomize(model, seed, weight_gain, bias_scale)
    return _finish(model, in_shape, seed, lo, span, per_channel)


def depthwise_model(in_shape=(8, 8, 3), kernel=(3, 3), depth_multiplier=1, strides=(1, 1), padding="same",
                    dilation=(1, 1), activation=None, per_channel=True, seed=0, lo=-1.0, span=2.0,
                    weight_gain=1.0, bias_scale=0.1):
    """One Keras DepthwiseConv2D -> DEPTHWISE_CONV_2D."""
    k = keras()
    model = _sequential(in_shape, [k.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding,
                                                            depth_multiplier=depth_multiplier,
                                                            dilation_rate=dilation, activation=activation)], seed)
    _randomize(model, seed, weight_gain, bias_scale)
    return _finish(model, in_shape, seed, lo, span, per_channel)


def conv1d_model(in_shape=(16, 3), filters=4, kernel=3, strides=1, padding="same", dilation=1, activation=None,
                 per_channel=True, seed=0, lo=-1.0, span=2.0, head=None):
    """Keras Conv1D (RESHAPE/EXPAND_DIMS + CONV_2D with a 1xK kernel + RESHAPE/SQUEEZE); head: None,
    'gap' (GlobalAveragePooling1D) or 'flatten' (Flatten + Dense(3))."""
    k = keras()
    L = k.layers
    layers = [L.Conv1D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                       activation=activation)]
    if head == "gap":
        layers.append(L.GlobalAveragePooling1D())
    elif head == "flatten":
        layers += [L.Flatten(), L.Dense(3)]
    model = _sequential(in_shape, layers, seed)
    _randomize(model, seed)
    return _finish(model, in_shape, seed, lo, span, per_channel)


def pool_model(kind="max", in_shape=(8, 8, 3), pool=(2, 2), strides=None, padding="valid", seed=0, lo=-1.0,
               span=2.0, relu=False):
    """One Keras MaxPooling2D / AveragePooling2D on the input (optionally followed by a ReLU)."""
    k = keras()
    L = k.layers
    cls = L.MaxPooling2D if kind == "max" else L.AveragePooling2D
    layers = [cls(pool, strides=strides, padding=padding)] + ([L.ReLU()] if relu else [])
    model = _sequential(in_shape, layers, seed)
    return _finish(model, in_shape, seed, lo, span, True)


def gap_model(in_shape=(6, 6, 4), keepdims=False, conv_first=True, seed=0, lo=-1.0, span=2.0):
    """GlobalAveragePooling2D (or 1D for a 2-D in_shape) -> MEAN, after an optional Conv so the MEAN input
    has a computed scale."""
    k = keras()
    L = k.layers
    one_d = len(in_shape) == 2
    layers = []
    if conv_first:
        layers.append((L.Conv1D if one_d else L.Conv2D)(in_shape[-1], 3, padding="same", activation="relu"))
    layers.append((L.GlobalAveragePooling1D if one_d else L.GlobalAveragePooling2D)(keepdims=keepdims))
    model = _sequential(in_shape, layers, seed)
    _randomize(model, seed)
    return _finish(model, in_shape, seed, lo, span, True)


def add_model(in_shape=(6, 6, 4), activation=None, skip="input", gain=1.0, seed=0, lo=-1.0, span=2.0):
    """x + f(x): f a Conv2D (same shape); skip='input' adds the model input itself, skip='conv' a second
    Conv2D branch. gain scales f's weights so the two inputs get different scales. activation: None or
    'relu' after the add (the converter fuses it into ADD)."""
    k = keras()
    L = k.layers
    k.utils.set_random_seed(seed)
    inp = k.Input(tuple(in_shape), batch_size=1)
    f = L.Conv2D(in_shape[-1], 3, padding="same")(inp)
    other = inp if skip == "input" else L.Conv2D(in_shape[-1], 1, padding="same", activation="relu")(inp)
    out = L.Add()([other, f])
    if activation == "relu":
        out = L.ReLU()(out)
    model = k.Model(inp, out)
    _randomize(model, seed, weight_gain=gain)
    return _finish(model, in_shape, seed, lo, span, True)


def softmax_model(in_dim=6, units=5, seed=0, lo=-1.0, span=2.0, gain=1.0, beta=None):
    """Dense -> Softmax (SOFTMAX with beta 1; beta given: the SOFTMAX options are edited to that beta)."""
    k = keras()
    L = k.layers
    model = _sequential((in_dim,), [L.Dense(units), L.Softmax()], seed)
    _randomize(model, seed, weight_gain=gain)
    tfl, x = _finish(model, (in_dim,), seed, lo, span, True)
    if beta is not None:
        m = _edit(tfl)
        for op in m.subgraphs[0].operators:
            if hasattr(op.builtinOptions, "beta"):
                op.builtinOptions.beta = float(beta)
        tfl = _pack(m)
    return tfl, x


def logistic_model(in_shape=(6,), units=5, dense_first=True, seed=0, lo=-1.0, span=2.0, gain=1.0):
    """Dense(sigmoid) -> FULLY_CONNECTED + LOGISTIC, or a bare sigmoid on the input."""
    k = keras()
    L = k.layers
    layers = [L.Dense(units, activation="sigmoid")] if dense_first else [L.Activation("sigmoid")]
    model = _sequential(in_shape, layers, seed)
    if dense_first:
        _randomize(model, seed, weight_gain=gain)
    return _finish(model, in_shape, seed, lo, span, True)


# Small whole models ("hidden-style"): each returns (tflite bytes, sample int8 inputs).


def cnn_model(seed=0, per_channel=True, in_shape=(12, 12, 1)):
    """Conv2D + DepthwiseConv2D + MaxPool + AveragePool + GlobalAveragePooling2D + Dense + softmax."""
    k = keras()
    L = k.layers
    model = _sequential(in_shape, [
        L.Conv2D(6, 3, padding="same", activation="relu"),
        L.MaxPooling2D(2),
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6"),
        L.AveragePooling2D(2, strides=1),
        L.Conv2D(8, 1, activation="relu"),
        L.GlobalAveragePooling2D(),
        L.Dense(10),
        L.Softmax(),
    ], seed)
    _randomize(model, seed)
    return _finish(model, in_shape, seed, 0.0, 1.0, per_channel)


def conv1d_net(seed=0, per_channel=True, steps=32):
    """A Conv1D classifier on (T, 3) signals: Conv1D, MaxPooling1D, Conv1D, GlobalAveragePooling1D, Dense,
    softmax."""
    k = keras()
    L = k.layers
    in_shape = (steps, 3)
    model = _sequential(in_shape, [
        L.Conv1D(8, 5, strides=2, padding="same", activation="relu"),
        L.MaxPooling1D(2),
        L.Conv1D(8, 3, padding="same", dilation_rate=2, activation="relu"),
        L.GlobalAveragePooling1D(),
        L.Dense(4),
        L.Softmax(),
    ], seed)
    _randomize(model, seed)
    return _finish(model, in_shape, seed, -2.0, 4.0, per_channel)


def residual_model(seed=0, per_channel=True, in_shape=(8, 8, 4)):
    """Conv stem, a residual block (Conv-ReLU-Conv + identity, ADD, ReLU), GAP, Dense."""
    k = keras()
    L = k.layers
    k.utils.set_random_seed(seed)
    inp = k.Input(in_shape, batch_size=1)
    h = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    r = L.Conv2D(8, 3, padding="same", activation="relu")(h)
    r = L.Conv2D(8, 3, padding="same")(r)
    h = L.ReLU()(L.Add()([h, r]))
    h = L.GlobalAveragePooling2D()(h)
    model = k.Model(inp, L.Dense(5)(h))
    _randomize(model, seed)
    return _finish(model, in_shape, seed, -1.0, 2.0, per_channel)


def sigmoid_head_model(seed=0, per_channel=True, in_dim=20):
    """Dense-ReLU-Dense-sigmoid (multi-label head: FULLY_CONNECTED + LOGISTIC)."""
    k = keras()
    L = k.layers
    model = _sequential((in_dim,), [L.Dense(16, activation="relu"), L.Dense(4, activation="sigmoid")], seed)
    _randomize(model, seed)
    return _finish(model, (in_dim,), seed, -3.0, 6.0, per_channel)


def autoencoder_model(seed=0, per_channel=True, in_dim=32):
    """Dense autoencoder 32-16-8-16-32 (ReLU inside, sigmoid output)."""
    k = keras()
    L = k.layers
    model = _sequential((in_dim,), [L.Dense(16, activation="relu"), L.Dense(8, activation="relu"),
                                    L.Dense(16, activation="relu"), L.Dense(in_dim, activation="sigmoid")], seed)
    _randomize(model, seed)
    return _finish(model, (in_dim,), seed, 0.0, 1.0, per_channel)


WHOLE_MODELS = {"cnn": cnn_model, "conv1d": conv1d_net, "residual": residual_model,
                "sigmoid_head": sigmoid_head_model, "autoencoder": autoencoder_model}


def conv_multiplier_probe_model(per_channel: bool, depthwise: bool = False, n: int = 8, seed: int = 0):
    """multiplier_probe_model for CONV_2D (Conv2D(n, 1) on a [1, 1, 1, 1] input) or DEPTHWISE_CONV_2D
    (DepthwiseConv2D(1, depth_multiplier=n)): filter 1, zero points 0, biases on rounding boundaries where
    the double and float-product multipliers disagree. Returns (tflite bytes, double_output[n],
    float_product_output[n]) for input 0."""
    rng = np.random.default_rng(seed)
    k = keras()
    layer = k.layers.DepthwiseConv2D(1, depth_multiplier=n) if depthwise else k.layers.Conv2D(n, 1)
    model = _sequential((1, 1, 1), [layer], seed)
    _randomize(model, seed, bias_scale=1.0)
    tfl = quantize_all(model, rng.random((16, 1, 1, 1)), per_channel=per_channel)
    m = _edit(tfl)
    sg = m.subgraphs[0]
    op = sg.operators[0]
    t_in, t_w, t_b, t_out = (sg.tensors[i] for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
    assert (t_w.quantization.scale.size > 1) == per_channel
    s_in, s_out, w_scales, biases, good, bad = _probe_search(rng, n, per_channel)
    _set_quant(t_in, [s_in], [0])
    _set_quant(t_out, [s_out], [0])
    _set_quant(t_w, w_scales, [0] * len(w_scales))
    t_w.quantization.quantizedDimension = 3 if depthwise else 0
    _set_data(m, t_w, np.ones((1, 1, 1, n) if depthwise else (n, 1, 1, 1), dtype=np.int8))
    b_scales = [np.float32(s_in) * w for w in w_scales]
    _set_quant(t_b, b_scales, [0] * len(b_scales))
    _set_data(m, t_b, np.array(biases, dtype="<i4"))
    good = np.clip(good, -128, 127).astype(np.int8)
    bad = np.clip(bad, -128, 127).astype(np.int8)
    assert not np.array_equal(good, bad)
    return _pack(m), good, bad


def add_multiplier_probe(seed: int = 0, n_pairs: int = 64):
    """An ADD of two int8 inputs with hand-set scales for which TFLM's all-double Prepare arithmetic and a
    float32 variant (s1 / (2 max) etc. in float32) give different multipliers, and (x1, x2) pairs on which the
    two parameter sets give different outputs.

    The model: input [1, 2, n_pairs] -> two STRIDED_SLICEs (raw int8 copies, re-labelled with scales s1, s2)
    -> ADD -> [1, 1, n_pairs]. Returns (tflite bytes, int8 input (1, 2, n_pairs), params_double,
    params_float, (zp1, zp2, zp_out)) - only TFLM runs the model (edgeloop does not import STRIDED_SLICE);
    compare its output with reference.add under both parameter sets.
    """
    from edgeloop_host import reference as R
    from edgeloop_host.tflite_import import add_params, quantize_multiplier_smaller_than_one_exp as qm1

    def add_params_f32(s1, s2, so):
        s1, s2, so = (np.float32(v) for v in (s1, s2, so))
        twice = np.float32(2) * max(s1, s2)
        r = [np.float32(s1 / twice), np.float32(s2 / twice), np.float32(twice / (np.float32(1 << 20) * so))]
        (m1, e1), (m2, e2), (mo, eo) = (qm1(float(v)) for v in r)
        return {"left_shift": 20, "input1_multiplier": m1, "input1_shift": e1, "input2_multiplier": m2,
                "input2_shift": e2, "output_multiplier": mo, "output_shift": eo}

    rng = np.random.default_rng(seed)
    k = keras()
    k.utils.set_random_seed(seed)
    inp = k.Input((2, n_pairs), batch_size=1)
    out = k.layers.Add()([inp[:, 0:1, :], inp[:, 1:2, :]])
    tfl = quantize_all(k.Model(inp, out), rng.random((16, 2, n_pairs)))
    x1 = np.arange(-128, 128).repeat(256)
    x2 = np.tile(np.arange(-128, 128), 256)
    while True:
        s1, s2 = np.float32(rng.uniform(0.005, 0.05)), np.float32(rng.uniform(0.005, 0.05))
        so = np.float32(max(s1, s2) * rng.uniform(1.0, 2.5))
        zps = [int(z) for z in rng.integers(-20, 20, 3)]
        pd, pf = add_params(s1, s2, so), add_params_f32(s1, s2, so)
        if pd == pf:
            continue
        args = (zps[0], zps[1], zps[2])
        yd = R.add(x1, x2, *args, **pd, act_min=-128, act_max=127)
        yf = R.add(x1, x2, *args, **pf, act_min=-128, act_max=127)
        diff = np.nonzero(yd != yf)[0]
        if len(diff):
            break
    pick = diff[rng.integers(0, len(diff), n_pairs)]
    x = np.stack([x1[pick], x2[pick]]).astype(np.int8)[None]
    m = _edit(tfl)
    sg = m.subgraphs[0]
    names = {}
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex]
        names[op.outputs[0]] = max(code.builtinCode, code.deprecatedBuiltinCode)
    add_op = [op for op in sg.operators if len(op.inputs) == 2 and op.inputs[0] in names and op.inputs[1] in names]
    assert len(add_op) == 1, "unexpected converter output for the ADD probe"
    a, b = add_op[0].inputs
    in_scale = float(sg.tensors[sg.inputs[0]].quantization.scale[0])
    for t in (sg.inputs[0],):
        _set_quant(sg.tensors[t], [in_scale], [0])
    _set_quant(sg.tensors[a], [s1], [zps[0]])
    _set_quant(sg.tensors[b], [s2], [zps[1]])
    _set_quant(sg.tensors[add_op[0].outputs[0]], [so], [zps[2]])
    return _pack(m), x, pd, pf, tuple(zps)
