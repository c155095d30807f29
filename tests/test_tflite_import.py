"""tflite_import: the Prepare arithmetic against TFLM (hand-edited probe models), clear errors, the planner."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_models as M
from edgeloop_host import ir, oracle, planner, reference, tflite_import

DIGITS = M.DIGITS_DIR / "digits_mlp.tflite"


@functools.cache
def digits_bytes() -> bytes:
    return DIGITS.read_bytes()


# ---------------------------------------------------------------------------------------------
# Graph structure


def test_digits_graph_structure():
    g = tflite_import.load_tflite(DIGITS, model_id=7, model_version=3)
    assert (g.model_id, g.model_version) == (7, 3)
    assert all(op.opcode == ir.FULLY_CONNECTED for op in g.ops) and len(g.ops) == 2
    assert g.input().shape == (1, 64) and g.output().shape == (1, 10)
    assert g.input().dtype == g.output().dtype == "int8"
    for op in g.ops:
        i_in, i_w, i_b, i_out, i_m, i_s = op.tensors
        w, m, s = g.tensors[i_w], g.tensors[i_m], g.tensors[i_s]
        n, k = w.shape
        assert w.dtype == "int8" and w.is_const and w.scale == 0.0
        assert g.tensors[i_in].shape[-1] == k and g.tensors[i_out].shape == (1, n)
        assert i_b >= 0 and g.tensors[i_b].dtype == "int32" and g.tensors[i_b].shape == (n,)
        assert m.dtype == s.dtype == "int32" and m.shape == s.shape == (n,)  # per-channel
        assert np.all((m.data >= 1 << 30) | (m.data == 0)) and np.all((s.data >= -31) & (s.data <= 30))
        assert -128 <= op.attrs["act_min"] <= op.attrs["act_max"] <= 127
    relu_op, logits_op = g.ops
    assert relu_op.attrs["act_min"] == g.tensors[relu_op.tensors[3]].zero_point  # fused RELU
    assert (logits_op.attrs["act_min"], logits_op.attrs["act_max"]) == (-128, 127)
    planner.verify_plan(g)
    assert g.arena_size > 0


def test_per_tensor_model_has_length_1_multipliers():
    model = M.dense_stack((6,), [5, 4], ["relu6", None], seed=1, bias_scale=0.5)
    tfl = M.quantize(model, np.random.default_rng(1).random((32, 6)), per_channel=False)
    g = tflite_import.load_tflite(tfl)
    for op in g.ops:
        assert g.tensors[op.tensors[4]].shape == (1,) and g.tensors[op.tensors[5]].shape == (1,)


def test_zero_bias_dropped_by_converter_gives_no_bias():
    model = M.dense_stack((6,), [3], [None], seed=2, bias_scale=0.0)
    tfl = M.quantize(model, np.random.default_rng(2).random((32, 6)))
    g = tflite_import.load_tflite(tfl)
    assert g.ops[0].tensors[2] == -1
    x = np.random.default_rng(2).integers(-128, 128, (50, 6)).astype(np.int8)
    np.testing.assert_array_equal(reference.run(g, x), oracle.tflm_run(tfl, x))


# ---------------------------------------------------------------------------------------------
# Prepare arithmetic, pinned against TFLM with models where a wrong computation changes the output


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_multiplier_uses_double_products_like_tflm(per_channel, seed):
    tfl, double_out, float_product_out = M.multiplier_probe_model(per_channel, n=8, seed=seed)
    x = np.zeros((1, 1), np.int8)
    tflm = oracle.tflm_run(tfl, x)[0]
    np.testing.assert_array_equal(tflm, double_out)
    assert np.all(tflm != float_product_out)  # every channel discriminates
    g = tflite_import.load_tflite(tfl)
    np.testing.assert_array_equal(reference.run(g, x)[0], tflm)


def test_relu6_bound_is_quantized_in_float32_like_tflm():
    tfl, act_max_f32, act_max_f64, zp = M.activation_probe_model()
    assert act_max_f32 != act_max_f64
    tflm = oracle.tflm_run(tfl, np.zeros((1, 1), np.int8))[0]
    assert tflm.tolist() == [act_max_f32, zp]  # channel 0 saturates high, channel 1 low
    g = tflite_import.load_tflite(tfl)
    assert (g.ops[0].attrs["act_min"], g.ops[0].attrs["act_max"]) == (zp, act_max_f32)
    np.testing.assert_array_equal(reference.run(g, np.zeros((1, 1), np.int8))[0], tflm)


def test_activation_range_cases():
    ar = tflite_import.activation_range
    assert ar(0, 0.1, 5) == (-128, 127)
    assert ar(1, 0.1, -128) == (-128, 127)
    assert ar(1, 0.1, 3) == (3, 127)
    assert ar(3, 6 / 255, -128) == (-128, 127)
    assert ar(3, 0.048, -128) == (-128, -3)  # 6 / 0.048 = 125
    assert ar(3, 0.5, 120) == (120, 127)
    assert ar(2, 1 / 64, 0) == (-64, 64)  # RELU_N1_TO_1
    with pytest.raises(ValueError, match="TANH"):
        ar(4, 0.1, 0)


# ---------------------------------------------------------------------------------------------
# Clear errors


def _convert(model, configure) -> bytes:
    tf = M.tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    configure(conv, tf)
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return bytes(conv.convert())


def _rep(shape, n=16):
    rng = np.random.default_rng(0)
    return lambda: ([rng.random((1,) + shape).astype(np.float32)] for _ in range(n))


def _import_error(tfl) -> str:
    with pytest.raises(ValueError) as e:
        tflite_import.load_tflite(tfl)
    return str(e.value)


def test_float_model_is_rejected_with_converter_instructions():
    model = M.dense_stack((6,), [3], [None], seed=0)
    msg = _import_error(_convert(model, lambda c, tf: None))
    assert "float model" in msg
    for needle in ("tf.lite.Optimize.DEFAULT", "representative_dataset", "TFLITE_BUILTINS_INT8",
                   "inference_input_type = tf.int8", "inference_output_type = tf.int8"):
        assert needle in msg


def test_hybrid_model_is_rejected():
    model = M.dense_stack((40,), [40], [None], seed=0)

    def hybrid(c, tf):
        c.optimizations = [tf.lite.Optimize.DEFAULT]

    msg = _import_error(_convert(model, hybrid))
    assert "hybrid (dynamic-range quantized)" in msg and "representative_dataset" in msg


def test_float_io_model_is_rejected():
    model = M.dense_stack((6,), [3], [None], seed=0)

    def int8_inside(c, tf):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = _rep((6,))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

    msg = _import_error(_convert(model, int8_inside))
    assert "input/output are float32" in msg and "inference_input_type" in msg
    assert "QUANTIZE" in msg and "DEQUANTIZE" in msg  # listed as unsupported too


def test_unsupported_ops_are_all_named():
    k = M.keras()
    k.utils.set_random_seed(0)
    L = k.layers
    model = k.Sequential([k.Input((8, 8, 1), batch_size=1), L.Conv2D(2, 3), L.LeakyReLU(), L.Flatten(),
                          L.Dense(4, activation="tanh"), L.Dense(3), L.Softmax()])
    tfl = M.quantize(model, np.random.default_rng(0).random((16, 8, 8, 1)))
    msg = _import_error(tfl)
    head = msg.split("edgeloop supports")[0]
    for name in ("LEAKY_RELU", "TANH"):
        assert name in head
    for name in ("CONV_2D", "SOFTMAX", "FULLY_CONNECTED"):  # supported: not listed as a problem
        assert name not in head
    assert ", ".join(tflite_import.SUPPORTED_OPS) in msg  # what is supported
    assert "unsupported operators" in msg


def test_multiple_inputs_and_outputs_are_rejected():
    k = M.keras()
    a = k.Input((4,), batch_size=1)
    b = k.Input((4,), batch_size=1)
    h = k.layers.Dense(3)(k.layers.Concatenate()([a, b]))
    model = k.Model([a, b], [k.layers.Dense(2)(h), k.layers.Dense(2)(h)])
    rng = np.random.default_rng(0)

    def int8(c, tf):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([rng.random((1, 4)).astype(np.float32) for _ in range(2)]
                                            for _ in range(16))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8

    msg = _import_error(_convert(model, int8))
    assert "2 inputs" in msg and "2 outputs" in msg and "CONCATENATION" in msg


def _edited_digits(edit) -> bytes:
    m = M._edit(digits_bytes())
    edit(m, m.subgraphs[0])
    return M._pack(m)


def test_nonzero_weight_zero_points_are_rejected():
    def edit(m, sg):
        t = sg.tensors[sg.operators[0].inputs[1]]
        t.quantization.zeroPoint = np.full(len(t.quantization.scale), 3, np.int64)

    msg = _import_error(_edited_digits(edit))
    assert "weight zero points must be 0" in msg and "[3]" in msg


def test_unsupported_fused_activation_is_rejected():
    def edit(m, sg):
        sg.operators[1].builtinOptions.fusedActivationFunction = 4  # TANH

    assert "fused activation TANH" in _import_error(_edited_digits(edit))


def test_bias_scale_mismatch_rejected_like_tflm():
    model = M.dense_stack((4,), [3], [None], seed=0, bias_scale=1.0)
    tfl = M.quantize(model, np.random.default_rng(0).random((16, 4)), per_channel=False)
    m = M._edit(tfl)
    sg = m.subgraphs[0]
    tb = sg.tensors[sg.operators[0].inputs[2]]
    tb.quantization.scale = tb.quantization.scale * 10
    bad = M._pack(m)
    with pytest.raises(RuntimeError):  # TFLM's Prepare refuses it too
        oracle.tflm_run(bad, np.zeros((1, 4), np.int8))
    assert "bias scale" in _import_error(bad)


def test_truncated_and_garbage_bytes_raise_value_error():
    data = digits_bytes()
    for n in list(range(0, 64)) + list(range(64, len(data), 7)) + [len(data) - 1]:
        with pytest.raises(ValueError, match="not a TFLite model|truncated or corrupt"):
            tflite_import.load_tflite(data[:n])
    with pytest.raises(ValueError, match="not a TFLite model"):
        tflite_import.load_tflite(b"\x00" * 100)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        tflite_import.load_tflite(b"\x10\x00\x00\x00TFL3" + b"\xff" * 40)


def test_random_corruption_never_raises_anything_but_value_error():
    data = digits_bytes()
    rng = np.random.default_rng(0)
    for _ in range(300):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        try:
            tflite_import.load_tflite(bytes(b))
        except ValueError:
            pass


def test_path_and_bytes_give_the_same_graph():
    a = tflite_import.load_tflite(DIGITS)
    b = tflite_import.load_tflite(digits_bytes())
    assert [t.shape for t in a.tensors] == [t.shape for t in b.tensors]
    assert all(np.array_equal(x.data, y.data) for x, y in zip(a.tensors, b.tensors) if x.is_const)


# ---------------------------------------------------------------------------------------------
# Planner


def _chain_graph(sizes: list[int], sources: list[int], out_index: int, seed: int = 0) -> ir.Graph:
    """FC-only DAG: op k reads an earlier activation (sources[k] = 0: the newest, 1: the one before, ...) and
    writes a new [1, sizes[k+1]]; the graph output is any activation but the input."""
    rng = np.random.default_rng(seed)
    tensors = [ir.Tensor("in", (1, sizes[0]), "int8", 0.1, int(rng.integers(-128, 128)))]
    acts = [0]
    ops = []
    for k in range(len(sizes) - 1):
        src = acts[-1 - sources[k] % len(acts)]
        kdim, n = tensors[src].shape[-1], sizes[k + 1]
        tensors.append(ir.Tensor(f"w{k}", (n, kdim), "int8",
                                 data=rng.integers(-127, 128, (n, kdim)).astype(np.int8)))
        tensors.append(ir.Tensor(f"b{k}", (n,), "int32", data=rng.integers(-5000, 5000, n).astype(np.int32)))
        tensors.append(ir.Tensor(f"m{k}", (1,), "int32", data=np.array([int(rng.integers(1 << 30, 1 << 31))],
                                                                         np.int32)))
        tensors.append(ir.Tensor(f"s{k}", (1,), "int32", data=np.array([-int(rng.integers(6, 12))], np.int32)))
        tensors.append(ir.Tensor(f"a{k}", (1, n), "int8", 0.1, int(rng.integers(-128, 128))))
        base = len(tensors) - 5
        ops.append(ir.Op(ir.FULLY_CONNECTED, [src, base, base + 1, base + 4, base + 2, base + 3],
                         {"act_min": -128, "act_max": 127}))
        acts.append(base + 4)
    return ir.Graph(tensors, ops, [0], [acts[1 + out_index % (len(acts) - 1)]])


def _live_sets(g: ir.Graph) -> list[set[int]]:
    """Independent lifetime computation: activations live during each op (inputs, output, and in transit)."""
    produced = {g.inputs[0]: -1}
    for k, op in enumerate(g.ops):
        produced[op.tensors[3]] = k
    last_read = {t: p for t, p in produced.items()}
    for k, op in enumerate(g.ops):
        last_read[op.tensors[0]] = max(last_read[op.tensors[0]], k)
    for t in g.outputs:
        last_read[t] = len(g.ops)
    return [{t for t in produced if produced[t] <= k <= last_read[t]} for k in range(len(g.ops) + 1)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=2, max_size=12), st.lists(st.integers(0, 100), min_size=11,
                                                                       max_size=11), st.integers(0, 100))
def test_planner_never_overlaps_live_tensors(sizes, sources, out_index):
    g = _chain_graph(sizes, sources, out_index)
    planner.plan_arena(g)
    planner.verify_plan(g)
    assert g.arena_size % 4 == 0
    for live in _live_sets(g):
        spans = sorted((g.tensors[t].arena_offset, g.tensors[t].arena_offset + g.tensors[t].nbytes) for t in live)
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert a1 <= b0, "live tensors overlap"
        for t in live:
            assert g.tensors[t].arena_offset % 4 == 0
            assert g.tensors[t].arena_offset + g.tensors[t].nbytes <= g.arena_size
    assert g.arena_size <= sum(-(-t.nbytes // 4) * 4 for t in g.tensors if not t.is_const)


def _run_in_arena(g: ir.Graph, x: np.ndarray) -> np.ndarray:
    """Executes the graph the way the device does: one shared arena, tensors at their planned offsets."""
    arena = np.full(g.arena_size, 0x55, np.int8)  # garbage, not zeros
    t_in = g.input()
    arena[t_in.arena_offset:t_in.arena_offset + t_in.nbytes] = x.reshape(-1)
    for op in g.ops:
        i_in, i_w, i_b, i_out, i_m, i_s = op.tensors
        a, w, o = g.tensors[i_in], g.tensors[i_w], g.tensors[i_out]
        rows = arena[a.arena_offset:a.arena_offset + a.nbytes].reshape(-1, w.shape[1]).copy()
        y = reference.fully_connected(rows, w.data, g.tensors[i_b].data if i_b >= 0 else None, a.zero_point,
                                      o.zero_point, g.tensors[i_m].data, g.tensors[i_s].data, op.attrs["act_min"],
                                      op.attrs["act_max"])
        arena[o.arena_offset:o.arena_offset + o.nbytes] = y.reshape(-1)
    t_out = g.output()
    return arena[t_out.arena_offset:t_out.arena_offset + t_out.nbytes].copy()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 64), min_size=2, max_size=9), st.lists(st.integers(0, 100), min_size=8,
                                                                      max_size=8), st.integers(0, 100),
       st.integers(0, 2**16))
def test_planned_arena_execution_equals_reference(sizes, sources, out_index, seed):
    g = _chain_graph(sizes, sources, out_index, seed)
    planner.plan_arena(g)
    x = np.random.default_rng(seed).integers(-128, 128, (1,) + g.input().shape[1:]).astype(np.int8)
    np.testing.assert_array_equal(_run_in_arena(g, x[0]), reference.run(g, x)[0].reshape(-1))


def test_chain_reuses_memory():
    g = _chain_graph([64, 64, 64, 64, 64], [0, 0, 0, 0], 3)  # a pure chain, output = the last activation
    planner.plan_arena(g)
    planner.verify_plan(g)
    assert g.arena_size == 128  # two 64-byte buffers ping-pong
