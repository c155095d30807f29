"""The numpy reference against TFLM (the tflite-micro interpreter) and against hand-derived arithmetic."""
from __future__ import annotations

import importlib.util
import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tflite_models as M
from edgeloop_host import oracle, reference, tflite_import
from edgeloop_host import train as T
from edgeloop_host.reference import (INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier,
                                     rounding_divide_by_pot, saturating_rounding_doubling_high_mul)

int32s = st.integers(INT32_MIN, INT32_MAX)


def _recipe():
    spec = importlib.util.spec_from_file_location("digits_recipe", M.DIGITS_DIR / "recipe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------
# (a) the digits model: reference == TFLM on the whole test split


def test_digits_reference_equals_tflm_on_test_split():
    recipe = _recipe()
    _, _, x_te, y_te = recipe.load_data()
    path = M.DIGITS_DIR / "digits_mlp.tflite"
    graph = tflite_import.load_tflite(path)
    assert [op.name for op in graph.ops] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    xq = T.quantize_input(x_te, graph.input().scale, graph.input().zero_point)
    y_tflm = oracle.tflm_run(path, xq)
    y_ref = reference.run(graph, xq)
    assert y_ref.dtype == np.int8 and y_ref.shape == (len(x_te), 10) == y_tflm.shape
    np.testing.assert_array_equal(y_ref, y_tflm)
    # the committed results.json describes the committed model
    results = json.loads((M.DIGITS_DIR / "results.json").read_text())
    acc = float(np.mean(np.argmax(y_tflm, axis=1) == y_te))
    assert round(acc, 4) == results["int8_tflm_accuracy"]
    assert acc > 0.93


def test_digits_reference_equals_tflm_on_random_int8():
    path = M.DIGITS_DIR / "digits_mlp.tflite"
    graph = tflite_import.load_tflite(path)
    x = np.random.default_rng(1).integers(-128, 128, (500, 64)).astype(np.int8)
    np.testing.assert_array_equal(reference.run(graph, x), oracle.tflm_run(path, x))


def test_run_all_tensors_matches_tflm_per_layer():
    path = M.DIGITS_DIR / "digits_mlp.tflite"
    graph = tflite_import.load_tflite(path)
    x = np.random.default_rng(2).integers(-128, 128, (1, 64)).astype(np.int8)
    ours = reference.run_all_tensors(graph, x)
    theirs = oracle.tflm_tensors(path, x[0])
    from ai_edge_litert.tools import flatbuffer_utils as fu

    names = [t.name.decode() for t in fu.read_model(str(path)).subgraphs[0].tensors]
    compared = 0
    for i, arr in ours.items():
        j = names.index(graph.tensors[i].name)
        np.testing.assert_array_equal(arr.reshape(-1), theirs[j].reshape(-1))
        compared += 1
    assert compared == 3  # input, hidden, logits


def test_run_rejects_bad_input():
    graph = tflite_import.load_tflite(M.DIGITS_DIR / "digits_mlp.tflite")
    with pytest.raises(ValueError, match="int8"):
        reference.run(graph, np.zeros((2, 64), np.float32))
    with pytest.raises(ValueError, match="shape"):
        reference.run(graph, np.zeros((2, 63), np.int8))
    assert reference.run(graph, np.zeros((0, 64), np.int8)).shape == (0, 10)


# ---------------------------------------------------------------------------------------------
# (b) random Dense stacks: reference == TFLM exactly


@st.composite
def dense_specs(draw):
    n_layers = draw(st.integers(1, 3))
    return dict(
        in_dim=draw(st.integers(1, 40)),
        widths=[draw(st.integers(1, 40)) for _ in range(n_layers)],
        acts=[draw(st.sampled_from([None, "relu", "relu6"])) for _ in range(n_layers)],
        per_channel=draw(st.booleans()),
        lo=draw(st.floats(-8, 8)),
        span=draw(st.sampled_from([0.05, 1.0, 6.0, 30.0])),
        gain=draw(st.sampled_from([0.2, 1.0, 4.0])),
        bias=draw(st.sampled_from([0.0, 0.1, 2.0])),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_specs())
def test_random_dense_stacks_match_tflm(spec):
    rng = np.random.default_rng(spec["seed"])
    model = M.dense_stack((spec["in_dim"],), spec["widths"], spec["acts"], seed=spec["seed"],
                          weight_gain=spec["gain"], bias_scale=spec["bias"])
    rep = (spec["lo"] + spec["span"] * rng.random((64, spec["in_dim"]))).astype(np.float32)
    tfl = M.quantize(model, rep, per_channel=spec["per_channel"])
    graph = tflite_import.load_tflite(tfl)
    assert len(graph.ops) == len(spec["widths"])
    w_scales = [graph.tensors[op.tensors[4]].shape[0] for op in graph.ops]
    if not spec["per_channel"]:
        assert w_scales == [1] * len(graph.ops)
    x_uniform = rng.integers(-128, 128, (150, spec["in_dim"])).astype(np.int8)
    x_data = T.quantize_input(spec["lo"] + spec["span"] * rng.random((150, spec["in_dim"])),
                              graph.input().scale, graph.input().zero_point)
    x = np.concatenate([x_uniform, x_data])
    np.testing.assert_array_equal(reference.run(graph, x), oracle.tflm_run(tfl, x))


def test_flatten_and_reshape_are_aliases_and_match_tflm():
    k = M.keras()
    k.utils.set_random_seed(3)
    L = k.layers
    model = k.Sequential([k.Input((4, 8), batch_size=1), L.Dense(5, activation="relu"), L.Flatten(),
                          L.Dense(12, activation="relu6"), L.Reshape((3, 4))])
    model.set_weights([w + 0.05 for w in model.get_weights()])
    rng = np.random.default_rng(3)
    tfl = M.quantize(model, rng.random((50, 4, 8)) * 2 - 0.5)
    graph = tflite_import.load_tflite(tfl)
    assert [op.name for op in graph.ops] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert graph.input().shape == (1, 4, 8) and graph.output().shape == (1, 3, 4)
    assert graph.tensors[graph.ops[1].tensors[0]].shape == (1, 20)  # Dense output merged with Flatten
    x = rng.integers(-128, 128, (200, 4, 8)).astype(np.int8)
    y = reference.run(graph, x)
    assert y.shape == (200, 3, 4)
    np.testing.assert_array_equal(y, oracle.tflm_run(tfl, x))


def test_flatten_at_model_input():
    model = M.dense_stack((8, 8), [6, 3], ["relu", None], seed=4, bias_scale=0.1, flatten_first=True)
    rng = np.random.default_rng(4)
    tfl = M.quantize(model, rng.random((50, 8, 8)))
    graph = tflite_import.load_tflite(tfl)
    assert graph.input().shape == (1, 8, 8)  # the graph input keeps its shape ...
    fc_in = graph.tensors[graph.ops[0].tensors[0]]
    assert fc_in.shape == (1, 64) and fc_in.alias_of == graph.inputs[0]  # ... and the Flatten is a view of it
    x = rng.integers(-128, 128, (100, 8, 8)).astype(np.int8)
    np.testing.assert_array_equal(reference.run(graph, x), oracle.tflm_run(tfl, x))


# ---------------------------------------------------------------------------------------------
# (c) gemmlowp primitives


def _srdhm_spec(a: int, b: int) -> int:
    """a*b/2^31 rounded half up (towards +inf), INT32_MIN*INT32_MIN saturating: the math gemmlowp implements."""
    if a == b == INT32_MIN:
        return INT32_MAX
    return (a * b + 2**30) // 2**31  # floor(a*b/2^31 + 1/2)


def _rdbpot_spec(x: int, e: int) -> int:
    """x / 2^e rounded to nearest, ties away from zero."""
    q = Fraction(x, 2**e)
    r = abs(q)
    n = int(r)
    if r - n >= Fraction(1, 2):
        n += 1
    return n if q >= 0 else -n


def _mbqm_c(x: int, m: int, shift: int) -> int:
    """Line-by-line Python-int transcription of TFLM MultiplyByQuantizedMultiplier (double rounding)."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    xs = ((x * (1 << left) + 2**31) % 2**32) - 2**31  # int32 wrap
    if xs == m == INT32_MIN:
        hi = INT32_MAX
    else:
        ab = xs * m
        nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
        s = ab + nudge
        hi = abs(s) // 2**31 * (1 if s >= 0 else -1)  # C truncating division
    mask = (1 << right) - 1
    remainder = hi & mask
    threshold = (mask >> 1) + (1 if hi < 0 else 0)
    return (hi >> right) + (1 if remainder > threshold else 0)


@pytest.mark.parametrize("a,b,expected", [
    (INT32_MIN, INT32_MIN, INT32_MAX),  # the only overflow: saturates
    (INT32_MIN, INT32_MAX, -INT32_MAX),
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),
    (1, 1 << 30, 1),  # +0.5 -> 1
    (-1, 1 << 30, 0),  # -0.5 -> 0 (half rounds up, i.e. towards zero for negatives)
    (3, 1 << 30, 2),  # 1.5 -> 2
    (-3, 1 << 30, -1),  # -1.5 -> -1
    (-5, 1 << 30, -2),  # -2.5 -> -2
    (0, INT32_MIN, 0),
    (1 << 30, 1 << 30, 1 << 29),
    (-(1 << 30), 1 << 30, -(1 << 29)),
])
def test_srdhm_edge_cases(a, b, expected):
    assert int(saturating_rounding_doubling_high_mul(a, b)) == expected
    assert _srdhm_spec(a, b) == expected


@pytest.mark.parametrize("x,e,expected", [
    (1, 1, 1), (-1, 1, -1),  # +-0.5 -> away from zero
    (3, 1, 2), (-3, 1, -2),  # +-1.5
    (5, 2, 1), (-5, 2, -1),  # +-1.25
    (6, 2, 2), (-6, 2, -2),  # +-1.5
    (7, 2, 2), (-7, 2, -2),  # +-1.75
    (INT32_MIN, 31, -1), (INT32_MAX, 31, 1), (INT32_MIN, 0, INT32_MIN), (INT32_MAX, 0, INT32_MAX),
    (-(1 << 30), 31, -1), ((1 << 30), 31, 1), (-(1 << 30) + 1, 31, 0), ((1 << 30) - 1, 31, 0),
])
def test_rdbpot_edge_cases(x, e, expected):
    assert int(rounding_divide_by_pot(x, e)) == expected
    assert _rdbpot_spec(x, e) == expected


@settings(max_examples=400, deadline=None)
@given(int32s, int32s)
def test_srdhm_matches_exact_math(a, b):
    assert int(saturating_rounding_doubling_high_mul(a, b)) == _srdhm_spec(a, b)


@settings(max_examples=400, deadline=None)
@given(int32s, st.integers(0, 31))
def test_rdbpot_matches_exact_math(x, e):
    assert int(rounding_divide_by_pot(x, e)) == _rdbpot_spec(x, e)


@settings(max_examples=400, deadline=None)
@given(int32s, st.one_of(st.integers(1 << 30, INT32_MAX), st.just(0), int32s), st.integers(-31, 30))
def test_mbqm_matches_c_transcription(x, m, shift):
    assert int(multiply_by_quantized_multiplier(x, m, shift)) == _mbqm_c(x, m, shift)


def test_primitives_vectorized_agree_with_scalar():
    rng = np.random.default_rng(5)
    x = rng.integers(INT32_MIN, INT32_MAX, 3000, endpoint=True)
    m = rng.integers(1 << 30, INT32_MAX, 3000, endpoint=True)
    s = rng.integers(-31, 8, 3000)
    x[:4] = [INT32_MIN, INT32_MAX, 0, -1]
    got = multiply_by_quantized_multiplier(x, m, s)
    assert got.shape == (3000,)
    assert [int(g) for g in got] == [_mbqm_c(int(a), int(b), int(c)) for a, b, c in zip(x, m, s)]


def test_fully_connected_int32_accumulator_wraps_like_c():
    # K large enough that sum_k (in - zp) * w exceeds int32: TFLM's int32 accumulator wraps.
    k = 70000
    x = np.full((1, k), 127, np.int8)
    w = np.full((1, k), 127, np.int8)
    acc = (127 + 128) * 127 * k  # > 2^31
    wrapped = ((acc + 2**31) % 2**32) - 2**31
    y = reference.fully_connected(x, w, None, -128, 0, np.array([1 << 30]), np.array([-20]), -128, 127)
    assert int(y[0, 0]) == max(-128, min(127, _mbqm_c(wrapped, 1 << 30, -20)))


def test_left_shift_wraps_int32_like_tflm():
    # effective scale ~1000: MultiplyByQuantizedMultiplier computes x * (1 << 10) in int32 first
    tfl, biases = M.left_shift_probe_model()
    graph = tflite_import.load_tflite(tfl)
    assert graph.tensors[graph.ops[0].tensors[5]].data.tolist() == [10]
    x = np.zeros((1, 1), np.int8)
    tflm = oracle.tflm_run(tfl, x)[0]
    np.testing.assert_array_equal(reference.run(graph, x)[0], tflm)
    assert tflm[0] == -128 and biases[0] > 0  # (2^21 + 5) << 10 wrapped negative


def test_quantize_input_rounds_half_away_from_zero():
    q = T.quantize_input(np.array([0.5, -0.5, 1.5, -1.5, 2.49, 1000, -1000]), 1.0, 0)
    assert q.tolist() == [1, -1, 2, -2, 2, 127, -128]
    assert T.quantize_input(np.array([0.0, 1.0]), 1 / 255, -128).tolist() == [-128, 127]


# ---------------------------------------------------------------------------------------------
# keeps `tflite_import` honest on the arithmetic it shares with the reference


def test_quantize_multiplier_edge_cases():
    qm = tflite_import.quantize_multiplier
    assert qm(0.0) == (0, 0)
    assert qm(0.5) == (1 << 30, 0)
    assert qm(1.0) == (1 << 30, 1)
    assert qm(0.75) == (3 << 29, 0)
    # q * 2^31 rounds up to 2^31: folds to 2^30 with the exponent + 1
    assert qm(1.0 - 2.0**-33) == (1 << 30, 1)
    assert qm(0.5 - 2.0**-34) == (1 << 30, 0)
    # tiny multipliers flush to zero (exponent below -31)
    assert qm(2.0**-33) == (0, 0)
    assert qm(2.0**-32) == (1 << 30, -31)
    with pytest.raises(ValueError):
        qm(float("inf"))


@settings(max_examples=300, deadline=None)
@given(st.floats(2.0**-31, 2.0**30, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_is_nearest(real):
    m, shift = tflite_import.quantize_multiplier(real)
    assert (1 << 30) <= m < (1 << 31) and -31 <= shift <= 31
    exact = Fraction(real) * 2 ** (31 - shift)
    assert abs(exact - m) <= Fraction(1, 2)
