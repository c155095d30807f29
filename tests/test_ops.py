"""The TFLM int8 op set, one op (or a tiny model) at a time: random Keras models quantized by the TF 2.21
converter, imported, run by the numpy reference and by TFLM (the oracle) on random int8 inputs: equal value
for value; the blob round trip leaves the reference outputs unchanged."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

import tflite_models as M
from edgeloop_host import blob, oracle, planner, reference, tflite_import

# Each example converts a Keras model (~0.5 s): few examples, and no shrinking (it would convert hundreds).
SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])

# calibration data distributions: (lo, span) of a uniform distribution, so input zero points vary
dist = st.tuples(st.floats(-6, 6), st.sampled_from([0.05, 1.0, 4.0, 30.0]))
acts = st.sampled_from([None, "relu", "relu6"])
seeds = st.integers(0, 2**16)


def check(tfl: bytes, x: np.ndarray, ops: list[str] | None = None):
    """reference == TFLM on x, also after a blob round trip; returns the imported graph."""
    g = tflite_import.load_tflite(tfl)
    if ops is not None:
        assert [op.name for op in g.ops] == ops
    planner.verify_plan(g)
    y_tflm = oracle.tflm_run(tfl, x)
    y_ref = reference.run(g, x)
    assert y_ref.dtype == np.int8 and y_ref.shape == y_tflm.shape
    np.testing.assert_array_equal(y_ref, y_tflm)
    g2 = blob.decode(blob.encode(g))
    np.testing.assert_array_equal(reference.run(g2, x), y_tflm)
    return g


@st.composite
def window(draw, max_kernel=3, allow_dilation=True):
    """(in_h, in_w, kernel, strides, dilation, padding) Keras accepts (no strides > 1 with dilation > 1,
    VALID windows inside the input); kernels include 1x1 and 1xK."""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1)
    if allow_dilation and strides == (1, 1) and draw(st.booleans()):
        dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "valid"]))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    lo = eff if padding == "valid" else [1, 1]
    in_h = draw(st.integers(lo[0], lo[0] + 8))
    in_w = draw(st.integers(lo[1], lo[1] + 8))
    return in_h, in_w, kernel, strides, dilation, padding


@SETTINGS
@given(win=window(), c_in=st.integers(1, 4), filters=st.integers(1, 5), act=acts, per_channel=st.booleans(),
       d=dist, gain=st.sampled_from([0.3, 1.0, 3.0]), seed=seeds)
def test_conv2d(win, c_in, filters, act, per_channel, d, gain, seed):
    in_h, in_w, kernel, strides, dilation, padding = win
    tfl, x = M.conv2d_model((in_h, in_w, c_in), filters, kernel, strides, padding, dilation, act, per_channel,
                            seed, d[0], d[1], weight_gain=gain)
    g = check(tfl, x, ["CONV_2D"])
    op = g.ops[0]
    assert g.tensors[op.tensor("multiplier")].shape == (filters,)  # per-tensor models repeat the value
    if not per_channel:
        assert len(set(g.tensors[op.tensor("multiplier")].data.tolist())) == 1
    assert (op.attrs["stride_h"], op.attrs["stride_w"]) == strides
    assert (op.attrs["dilation_h"], op.attrs["dilation_w"]) == dilation


@SETTINGS
@given(win=window(), c_in=st.integers(1, 4), mult=st.integers(1, 3), act=acts, per_channel=st.booleans(),
       d=dist, seed=seeds)
def test_depthwise_conv2d(win, c_in, mult, act, per_channel, d, seed):
    in_h, in_w, kernel, strides, dilation, padding = win
    tfl, x = M.depthwise_model((in_h, in_w, c_in), kernel, mult, strides, padding, dilation, act, per_channel,
                               seed, d[0], d[1])
    g = check(tfl, x, ["DEPTHWISE_CONV_2D"])
    assert g.ops[0].attrs["depth_multiplier"] == mult


@SETTINGS
@given(steps=st.integers(6, 24), c_in=st.integers(1, 3), filters=st.integers(2, 4), kernel=st.integers(1, 5),
       strides=st.integers(1, 3), dilation=st.integers(1, 2), padding=st.sampled_from(["same", "valid"]),
       head=st.sampled_from([None, "gap", "flatten"]), act=acts, d=dist, seed=seeds)
def test_conv1d(steps, c_in, filters, kernel, strides, dilation, padding, head, act, d, seed):
    # filters >= 2: for Conv1D(filters=1) the converter emits a broadcast bias ADD (rejected, see test_models)
    if strides > 1:
        dilation = 1
    tfl, x = M.conv1d_model((steps, c_in), filters, kernel, strides, padding, dilation, act, True, seed, d[0],
                            d[1], head=head)
    g = check(tfl, x)
    conv = g.ops[0]
    assert conv.name == "CONV_2D" and g.tensors[conv.tensor("filter")].shape[1] == 1  # a 1xK kernel
    assert g.input().shape == (1, steps, c_in)  # the graph input keeps its shape; the conv reads a view


@SETTINGS
@given(kind=st.sampled_from(["max", "avg"]), win=window(allow_dilation=False), c=st.integers(1, 4),
       relu=st.booleans(), d=dist, seed=seeds)
def test_pool2d(kind, win, c, relu, d, seed):
    in_h, in_w, pool, strides, _, padding = win
    tfl, x = M.pool_model(kind, (in_h, in_w, c), pool, strides, padding, seed, d[0], d[1], relu=relu)
    g = check(tfl, x)
    assert g.ops[0].name == ("MAX_POOL_2D" if kind == "max" else "AVERAGE_POOL_2D")


@SETTINGS
@given(one_d=st.booleans(), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 6), keepdims=st.booleans(),
       conv_first=st.booleans(), d=dist, seed=seeds)
@example(one_d=True, h=1, w=1, c=5, keepdims=True, conv_first=True, d=(-0.48, 4.0), seed=16881)
def test_mean(one_d, h, w, c, keepdims, conv_first, d, seed):
    # a mean over one element is the identity: the TF converter drops the op (hypothesis found it in CI);
    # without the conv in front, nothing would be left of the model
    assume(not (h * w == 1 and keepdims and not conv_first))
    shape = (h * w, c) if one_d else (h, w, c)
    tfl, x = M.gap_model(shape, keepdims, conv_first, seed, d[0], d[1])
    g = check(tfl, x)
    if h * w == 1 and keepdims:
        assert all(op.name != "MEAN" for op in g.ops)
        return
    mean = g.ops[-1]
    assert mean.name == "MEAN"
    assert len(g.tensors[mean.tensor("input")].shape) == 4


@SETTINGS
@given(h=st.integers(1, 8), w=st.integers(1, 8), c=st.integers(1, 5), act=st.sampled_from([None, "relu"]),
       skip=st.sampled_from(["input", "conv"]), gain=st.sampled_from([0.2, 1.0, 5.0]), d=dist, seed=seeds)
def test_add(h, w, c, act, skip, gain, d, seed):
    tfl, x = M.add_model((h, w, c), act, skip, gain, seed, d[0], d[1])
    g = check(tfl, x)
    add = g.ops[-1]
    assert add.name == "ADD" and add.attrs["left_shift"] == 20
    assert add.attrs["input1_shift"] <= 0 and add.attrs["input2_shift"] <= 0


@SETTINGS
@given(in_dim=st.integers(1, 12), units=st.integers(1, 40), gain=st.sampled_from([0.3, 1.0, 4.0, 20.0]),
       beta=st.one_of(st.none(), st.floats(0.1, 4.0)), d=dist, seed=seeds)
def test_softmax(in_dim, units, gain, beta, d, seed):
    tfl, x = M.softmax_model(in_dim, units, seed, d[0], d[1], gain, beta)
    g = check(tfl, x, ["FULLY_CONNECTED", "SOFTMAX"])
    sm = g.ops[1]
    assert sm.attrs["diff_min"] < 0 and sm.attrs["input_left_shift"] >= 0


@SETTINGS
@given(dense_first=st.booleans(), units=st.integers(1, 12), gain=st.sampled_from([0.3, 1.0, 5.0]), d=dist,
       seed=seeds)
def test_logistic(dense_first, units, gain, d, seed):
    shape = (6,) if dense_first else (units,)
    tfl, x = M.logistic_model(shape, units, dense_first, seed, d[0], d[1], gain)
    g = check(tfl, x)
    assert g.ops[-1].name == "LOGISTIC"


def test_logistic_and_softmax_saturate_on_every_int8_input():
    # the whole int8 input range, one value per element: radius / diff_min cut-offs and both saturations
    tfl, _ = M.logistic_model((256,), 0, dense_first=False, lo=-10, span=20)
    x = np.arange(-128, 128, dtype=np.int8)[None]
    y = check(tfl, x, ["LOGISTIC"])
    assert y is not None
    out = oracle.tflm_run(tfl, x)[0]
    assert out.min() == -128 and out.max() == 127
