"""Small whole models of the TFLM int8 op set bit-exact with TFLM (end to end and layer by layer), the
Prepare arithmetic pinned with probe models, clear import errors, and the blob validation of every op."""
from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

import tflite_models as M
from edgeloop_host import blob, ir, oracle, planner, reference, tflite_import

WHOLE = sorted(M.WHOLE_MODELS)


@functools.cache
def whole(name: str, per_channel: bool = True):
    return M.WHOLE_MODELS[name](seed=3, per_channel=per_channel)


# ---------------------------------------------------------------------------------------------
# whole models


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("name", WHOLE)
def test_whole_model_bit_exact_and_through_the_blob(name, per_channel):
    tfl, x = whole(name, per_channel)
    g = tflite_import.load_tflite(tfl)
    planner.verify_plan(g)
    y_tflm = oracle.tflm_run(tfl, x)
    np.testing.assert_array_equal(reference.run(g, x), y_tflm)
    data = blob.encode(g)
    g2 = blob.decode(data)
    np.testing.assert_array_equal(reference.run(g2, x), y_tflm)
    assert blob.encode(g2) == data
    assert len(np.unique(y_tflm)) > 3  # the model computes something input-dependent


EXPECTED_OPS = {
    "cnn": ["CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "CONV_2D", "MEAN",
            "FULLY_CONNECTED", "SOFTMAX"],
    "conv1d": ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"],
    "residual": ["CONV_2D", "CONV_2D", "CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"],
    "sigmoid_head": ["FULLY_CONNECTED", "FULLY_CONNECTED", "LOGISTIC"],
    "autoencoder": ["FULLY_CONNECTED"] * 4 + ["LOGISTIC"],
}


@pytest.mark.parametrize("name", WHOLE)
def test_whole_model_layer_by_layer(name):
    """Every activation the reference computes equals TFLM's tensor of the same name (kPreserveAllTensors)."""
    tfl, x = whole(name)
    g = tflite_import.load_tflite(tfl)
    assert [op.name for op in g.ops] == EXPECTED_OPS[name]
    ours = reference.run_all_tensors(g, x[:1])
    theirs = oracle.tflm_tensors(tfl, x[0])
    names = [t.name.decode() for t in M._edit(tfl).subgraphs[0].tensors]
    compared = set()
    for i, arr in ours.items():
        if g.tensors[i].name in names:
            j = names.index(g.tensors[i].name)
            np.testing.assert_array_equal(arr.reshape(-1), theirs[j].reshape(-1), err_msg=g.tensors[i].name)
            compared.add(g.buffer_of(i))
    assert {g.buffer_of(op.outputs()[0]) for op in g.ops} <= compared  # every op's output was checked


def test_conv1d_views_share_bytes():
    tfl, x = whole("conv1d")
    g = tflite_import.load_tflite(tfl)
    assert g.input().shape == (1, 32, 3)
    conv_in = g.tensors[g.ops[0].tensor("input")]
    assert conv_in.shape == (1, 1, 32, 3) and conv_in.alias_of == g.inputs[0]
    assert conv_in.arena_offset == g.input().arena_offset
    g2 = blob.decode(blob.encode(g))  # the decoder recovers the view from the shared bytes
    assert g2.tensors[g.ops[0].tensor("input")].alias_of == g.inputs[0]


# ---------------------------------------------------------------------------------------------
# Prepare arithmetic pinned against TFLM


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
def test_conv_multipliers_use_double_products_like_tflm(per_channel, depthwise):
    tfl, double_out, float_product_out = M.conv_multiplier_probe_model(per_channel, depthwise, n=8, seed=1)
    x = np.zeros((1, 1, 1, 1), np.int8)
    tflm = oracle.tflm_run(tfl, x).reshape(-1)
    np.testing.assert_array_equal(tflm, double_out)
    assert np.all(tflm != float_product_out)  # every channel discriminates
    g = tflite_import.load_tflite(tfl)
    assert g.tensors[g.ops[0].tensor("multiplier")].shape == (8,)
    np.testing.assert_array_equal(reference.run(g, x).reshape(-1), tflm)


def test_add_multipliers_are_computed_in_double_like_tflm():
    tfl, x, p_double, p_float, zps = M.add_multiplier_probe(seed=2)
    assert p_double != p_float
    y = oracle.tflm_run(tfl, x).reshape(-1)
    y_double = reference.add(x[0, 0], x[0, 1], *zps, **p_double, act_min=-128, act_max=127)
    y_float = reference.add(x[0, 0], x[0, 1], *zps, **p_float, act_min=-128, act_max=127)
    np.testing.assert_array_equal(y, y_double)
    assert np.all(y != y_float)


def test_mean_with_equal_quantization_takes_the_same_integer_path():
    # TFLM's reduce code had a separate (truncating) path for equal input/output quantization; the pinned
    # TFLM runs the folded-multiplier integer path for every int8 MEAN.
    tfl, x = M.gap_model((5, 5, 6), conv_first=False, seed=4)
    m = M._edit(tfl)
    sg = m.subgraphs[0]
    t_in, t_out = sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[0]]
    M._set_quant(t_out, t_in.quantization.scale, t_in.quantization.zeroPoint)
    tfl = M._pack(m)
    g = tflite_import.load_tflite(tfl)
    assert (g.ops[0].attrs["multiplier"], g.ops[0].attrs["shift"]) == tflite_import.mean_multiplier(
        t_in.quantization.scale[0], t_in.quantization.scale[0], 25)
    y = oracle.tflm_run(tfl, x)
    np.testing.assert_array_equal(reference.run(g, x), y)
    truncating = np.trunc(x.reshape(len(x), 25, 6).astype(np.int64).sum(1) / 25)
    assert np.any(truncating != y.reshape(len(x), 6))


def test_mean_multiplier_folding():
    qm = tflite_import.quantize_multiplier
    for s_in, s_out, n in [(0.02, 0.004, 36), (0.5, 0.5, 1), (0.1, 0.3, 7), (1e-3, 0.9, 4096), (0.02, 0.02, 2**20)]:
        m, e = qm(float(np.float32(s_in)) / float(np.float32(s_out)))
        k = min(n.bit_length() - 1, 32, 31 + e)
        assert tflite_import.mean_multiplier(s_in, s_out, n) == ((m << k) // n, e - k)
        mm, ee = tflite_import.mean_multiplier(s_in, s_out, n)
        assert 0 <= mm < 2**31 and -31 <= ee <= 30
        # the folded pair is 1/n of the plain one, up to the truncation of the multiplier
        assert abs(mm * 2.0 ** (ee - 31) - m * 2.0 ** (e - 31) / n) <= 2.0 ** (ee - 31)


def test_softmax_and_logistic_parameters():
    p = tflite_import.softmax_params(1.0, 0.1)
    real = 0.1 * float(np.float32(1.0)) * 2**26
    m, e = tflite_import.quantize_multiplier(float(np.float32(0.1)) * 2**26)
    assert (p["input_multiplier"], p["input_left_shift"]) == (m, e) and real > 1
    assert p["diff_min"] == -int(np.floor(31 * 2**26 / 2**e))
    lp = tflite_import.logistic_params(1 / 16)
    assert lp == {"input_range_radius": int(np.floor(15 * 2**27 / 2**24)), "input_multiplier": 1 << 30,
                  "input_left_shift": 24}
    with pytest.raises(ValueError):
        tflite_import.softmax_params(1.0, 1e-9)  # beta * s_in * 2^26 <= 1: TFLM aborts


def test_padding_matches_tflite():
    cpw = tflite_import.compute_padding_height_width
    assert cpw(1, 1, 1, 1, 5, 5, 3, 3, 0) == (1, 1, 5, 5)  # SAME
    assert cpw(2, 2, 1, 1, 5, 6, 3, 3, 0) == (1, 0, 3, 3)  # odd total padding: the extra pixel goes after
    assert cpw(1, 1, 1, 1, 5, 5, 3, 3, 1) == (0, 0, 3, 3)  # VALID
    assert cpw(1, 1, 2, 3, 9, 9, 3, 2, 0) == (2, 1, 9, 9)  # dilation widens the window


# ---------------------------------------------------------------------------------------------
# clear errors


def _import_error(tfl) -> str:
    with pytest.raises(ValueError) as e:
        tflite_import.load_tflite(tfl)
    return str(e.value)


def test_rejections_of_unsupported_layers():
    k = M.keras()
    L = k.layers
    rng = np.random.default_rng(0)
    inp = k.Input((4, 4, 3), batch_size=1)
    model = k.Model(inp, L.Add()([inp, L.GlobalAveragePooling2D(keepdims=True)(inp)]))
    assert "broadcasting ADD is not supported" in _import_error(M.quantize_all(model, rng.random((8, 4, 4, 3))))
    model = k.Sequential([k.Input((6, 6, 4), batch_size=1), L.Conv2D(4, 3, groups=2)])
    assert "grouped convolutions are not supported" in _import_error(M.quantize_all(model, rng.random((8, 6, 6, 4))))
    model = k.Sequential([k.Input((6, 6, 4), batch_size=1), L.Lambda(lambda t: k.ops.mean(t, axis=-1))])
    assert "MEAN over axes [3]" in _import_error(M.quantize_all(model, rng.random((8, 6, 6, 4))))
    tfl, _ = M.conv1d_model((8, 3), filters=1, kernel=3)
    assert "Conv1D(filters=1)" in _import_error(tfl)
    model = k.Model(inp, L.Concatenate()([L.Multiply()([inp, inp]), inp]))
    msg = _import_error(M.quantize_all(model, rng.random((8, 4, 4, 3))))
    assert "unsupported operators: MUL, CONCATENATION" in msg and ", ".join(tflite_import.SUPPORTED_OPS) in msg


def _edited(tfl: bytes, edit) -> bytes:
    m = M._edit(tfl)
    edit(m.subgraphs[0])
    return M._pack(m)


def test_rejections_of_unsupported_options():
    tfl, _ = M.conv2d_model(seed=1)

    def tanh(sg):
        sg.operators[0].builtinOptions.fusedActivationFunction = 4

    assert "fused activation TANH" in _import_error(_edited(tfl, tanh))
    tfl, _ = M.pool_model("avg")

    def rescale_out(sg):
        t = sg.tensors[sg.operators[0].outputs[0]]
        M._set_quant(t, t.quantization.scale * 2, t.quantization.zeroPoint)

    assert "pooling requires them equal" in _import_error(_edited(tfl, rescale_out))
    tfl, _ = M.softmax_model()

    def softmax_zp(sg):
        t = sg.tensors[sg.operators[-1].outputs[0]]
        M._set_quant(t, t.quantization.scale, [-127])

    bad = _edited(tfl, softmax_zp)
    with pytest.raises(RuntimeError):  # TFLM's Prepare refuses it too
        oracle.tflm_run(bad, np.zeros((1, 6), np.int8))
    assert "must be scale 1/256, zero point -128" in _import_error(bad)
    tfl, _ = M.add_model(seed=1)

    def tiny_add_output_scale(sg):
        t = sg.tensors[sg.operators[-1].outputs[0]]
        M._set_quant(t, t.quantization.scale * 1e-7, t.quantization.zeroPoint)

    assert "output scale out of the range" in _import_error(_edited(tfl, tiny_add_output_scale))


# ---------------------------------------------------------------------------------------------
# blob validation of every op


def _graph(name):
    return blob.decode(blob.encode(tflite_import.load_tflite(whole(name)[0])))


def _op(g: ir.Graph, name: str) -> ir.Op:
    return next(op for op in g.ops if op.name == name)


def _rejects(g: ir.Graph, match: str):
    with pytest.raises(blob.BlobError, match=match):
        blob.decode(blob.encode(g))


def _mutate(name, fn):
    g = copy.deepcopy(_graph(name))
    fn(g)
    return g


def _set_attr(opname, word, value):
    return lambda g: _op(g, opname).attrs.__setitem__(word, value)


def _const(g, op, word, data):
    g.tensors[op.tensor(word)].data = np.asarray(data, np.int32)
    g.tensors[op.tensor(word)].shape = np.asarray(data).shape


@pytest.mark.parametrize("model,mutation,match", [
    ("cnn", _set_attr("CONV_2D", "pad_top", 2), "not TFLite's SAME"),
    ("cnn", _set_attr("CONV_2D", "stride_w", 0), "stride_w 0 outside"),
    ("cnn", _set_attr("CONV_2D", "dilation_h", 2), "not TFLite's SAME"),
    ("cnn", _set_attr("CONV_2D", "act_max", 200), "activation clamp"),
    ("cnn", lambda g: _op(g, "CONV_2D").attrs.update(act_min=10, act_max=5), "activation clamp"),
    ("cnn", lambda g: _const(g, _op(g, "CONV_2D"), "multiplier", [1 << 30]), "must both have length"),
    ("cnn", lambda g: g.tensors[_op(g, "CONV_2D").tensor("shift")].data.__setitem__(0, 31), "shift within"),
    ("cnn", lambda g: g.tensors[_op(g, "CONV_2D").tensor("multiplier")].data.__setitem__(0, -5), "must be >= 0"),
    ("cnn", lambda g: _op(g, "CONV_2D").tensors.__setitem__(1, _op(g, "CONV_2D").tensor("bias")), "filter must"),
    ("cnn", _set_attr("DEPTHWISE_CONV_2D", "depth_multiplier", 1), "depth_multiplier"),
    ("cnn", _set_attr("MAX_POOL_2D", "filter_h", 5), "not TFLite's SAME"),
    ("cnn", lambda g: setattr(g.tensors[_op(g, "AVERAGE_POOL_2D").tensor("output")], "zero_point", 3),
     "share scale and zero point"),
    ("cnn", _set_attr("MEAN", "multiplier", -1), "multiplier -1 outside"),
    ("cnn", _set_attr("MEAN", "shift", 31), "shift 31 outside"),
    ("cnn", lambda g: setattr(g.tensors[_op(g, "SOFTMAX").tensor("output")], "zero_point", -127),
     "scale 1/256 and zero point -128"),
    ("cnn", _set_attr("SOFTMAX", "diff_min", -(1 << 30)), "diff_min"),
    ("cnn", _set_attr("SOFTMAX", "input_left_shift", 31), "input_left_shift 31 outside"),
    ("residual", _set_attr("ADD", "left_shift", 19), "left_shift 19 outside"),
    ("residual", _set_attr("ADD", "input2_shift", 1), "input2_shift 1 outside"),
    ("residual", _set_attr("ADD", "output_multiplier", -1), "output_multiplier -1 outside"),
    ("residual", lambda g: _op(g, "ADD").tensors.__setitem__(1, g.inputs[0]), "must be equal"),
    ("sigmoid_head", _set_attr("LOGISTIC", "input_range_radius", 1 << 30), "input_range_radius"),
    ("sigmoid_head", _set_attr("LOGISTIC", "input_left_shift", -1), "input_left_shift -1 outside"),
])
def test_blob_rejects_invalid_op_words(model, mutation, match):
    _rejects(_mutate(model, mutation), match)


def test_blob_rejects_overlap_and_bad_dataflow():
    def overlap(g):  # the ADD writes onto its own input
        add = _op(g, "ADD")
        g.tensors[add.tensor("output")].arena_offset = g.tensors[add.tensor("input1")].arena_offset

    _rejects(_mutate("residual", overlap), "overlap")

    def swap(g):
        g.ops[1], g.ops[2] = g.ops[2], g.ops[1]

    _rejects(_mutate("cnn", swap), "before anything writes")


def test_every_valid_graph_round_trips():
    for name in WHOLE:
        g = _graph(name)
        data = blob.encode(g)
        assert blob.encode(blob.decode(data)) == data
        for op in g.ops:
            assert len(op.words()) == len(blob.OP_WORDS[op.opcode])
