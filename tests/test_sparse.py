"""Sparse weights (docs/FORMAT.md, encoding 1), host side: the codec, the per-layer choice, the blob
fields, the CLI, and the C kernel (host library build) against the numpy reference and the dense kernel,
bit for bit, over random shapes, sparsities (0% and 100% included) and zero points; hostile streams are
rejected by the C and Python kernels alike without touching the arena."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clib
import kernel_cases as kc
from edgeloop_host import blob, ir, reference, sparse
from edgeloop_host.convert import convert
from test_kernels_host import reference_output, run_c, run_python

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "models" / "digits_mlp" / "digits_mlp.tflite"
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
E_SPARSE = clib.STATUS[13]


# ---- codec ------------------------------------------------------------------------------------

@settings(max_examples=150, **SETTINGS)
@given(st.integers(1, 40), st.integers(1, 900), st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]), st.integers(0, 2**32))
def test_codec_round_trip_and_size(n, k, sparsity, seed):
    w = kc.sparse_weights(np.random.default_rng(seed), n, k, sparsity)
    s = sparse.encode(w)
    assert len(s) == sparse.size(w) and len(s) % 4 == 0
    assert np.array_equal(sparse.decode(s, n, k), w)


def test_escape_pairs_bridge_long_gaps():
    w = np.zeros((2, 700), np.int8)
    w[0, 600] = -5  # 600 = 255 + 255 + 90: two (255, 0) escapes, then (90, -5), then a (0, 0) pad
    w[1, 0] = 7
    s = sparse.encode(w)
    assert struct.unpack_from("<2H", s) == (2, 1)
    assert s[4:12] == bytes([255, 0, 255, 0, 90, 251, 0, 0])
    assert s[12:16] == bytes([0, 7, 0, 0])
    assert np.array_equal(sparse.decode(s, 2, 700), w)


def test_decode_rejects_bad_streams():
    w = np.array([[0, 3, 0, 4]], np.int8)
    s = bytearray(sparse.encode(w))  # count 1 word: (1, 3), (2, 4)
    with pytest.raises(sparse.SparseError, match="reaches column 4"):
        sparse.decode(bytes(s[:4]) + bytes([2, 3, 2, 4]), 1, 4)
    with pytest.raises(sparse.SparseError, match="do not match"):
        sparse.decode(bytes(s) + bytes(4), 1, 4)
    with pytest.raises(sparse.SparseError, match="column twice"):
        sparse.decode(bytes(s[:4]) + bytes([1, 3, 0, 4]), 1, 4)


def _digits_graph(sparsity: float, mode: str = "auto") -> ir.Graph:
    return blob.decode(convert(sparse.prune_tflite(DIGITS.read_bytes(), sparsity), sparse_mode=mode))


def test_auto_choice_follows_the_20_percent_rule():
    for sparsity, want in ((0.0, 0), (0.5, 0), (0.75, 1), (0.9, 1)):
        g = _digits_graph(sparsity)
        enc = [g.tensors[op.tensor("weights")].encoding for op in g.ops]
        assert enc == [want, want], (sparsity, enc)
    assert all(g.tensors[op.tensor("weights")].encoding == 1 for g in [_digits_graph(0.0, "always")] for op in g.ops)
    assert all(g.tensors[op.tensor("weights")].encoding == 0 for g in [_digits_graph(0.9, "never")] for op in g.ops)
    g = _digits_graph(0.0)
    sizes = sparse.choose(g, "auto")
    for i, (dense, sp) in sizes.items():
        assert (sp <= 0.8 * dense) == (g.tensors[i].encoding == 1)


def test_sparse_blob_is_smaller_decodes_to_the_same_weights_and_same_outputs():
    pruned = sparse.prune_tflite(DIGITS.read_bytes(), 0.75)
    dense_b, sparse_b = convert(pruned, sparse_mode="never"), convert(pruned, sparse_mode="always")
    assert len(sparse_b) < 0.75 * len(dense_b)
    assert struct.unpack_from("<I", dense_b, 16)[0] == 0 and struct.unpack_from("<I", sparse_b, 16)[0] == 1
    gd, gs = blob.decode(dense_b), blob.decode(sparse_b)
    for a, b in zip(gd.tensors, gs.tensors):
        if a.is_const:
            assert np.array_equal(a.data, b.data)
    x = np.random.default_rng(3).integers(-128, 128, (64, 64), dtype=np.int8)
    assert np.array_equal(reference.run(gd, x), reference.run(gs, x))


def _tens_record(data: bytes, i: int) -> int:
    """Offset of tensor record i in a blob."""
    nsec = struct.unpack_from("<H", data, 28)[0]
    for s in range(nsec):
        tag, _, off, _ = struct.unpack_from("<4sIII", data, 32 + 16 * s)
        if tag == b"TENS":
            return off + 4 + 28 * i
    raise AssertionError("no TENS")


def _fix_crc(b: bytearray) -> bytes:
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])))
    return bytes(b)


def sparse_weight_index(data: bytes) -> int:
    g = blob.decode(data)
    return next(i for i, t in enumerate(g.tensors) if t.encoding)


def test_blob_rejects_unknown_encoding_and_missing_feature_bit():
    data = convert(sparse.prune_tflite(DIGITS.read_bytes(), 0.75), sparse_mode="always")
    i = sparse_weight_index(data)
    bad = bytearray(data)
    bad[_tens_record(data, i) + 3] = 2
    with pytest.raises(blob.BlobError, match=f"tensor {i}: unknown weight encoding 2"):
        blob.decode(_fix_crc(bad))
    bad = bytearray(data)
    struct.pack_into("<I", bad, 16, 0)
    with pytest.raises(blob.BlobError, match="feature bit"):
        blob.decode(_fix_crc(bad))
    bad = bytearray(data)
    struct.pack_into("<I", bad, 16, 3)
    with pytest.raises(blob.BlobError, match="needs features 0x2"):
        blob.decode(_fix_crc(bad))


def test_only_weights_can_be_sparse():
    import blobgen

    g = blobgen.random_mlp(np.random.default_rng(1), [8, 6], with_bias=True)
    g.tensors[g.ops[0].tensor("weights")].encoding = 1
    assert blob.decode(blob.encode(g)).tensors[g.ops[0].tensor("weights")].encoding == 1
    g.tensors[g.ops[0].tensor("bias")].encoding = 1
    with pytest.raises(blob.BlobError, match="does not apply"):
        blob.encode(g)


def test_cli_convert_sparse_option_and_inspect(tmp_path, capsys):
    from edgeloop_host.cli import main

    src = tmp_path / "p.tflite"
    src.write_bytes(sparse.prune_tflite(DIGITS.read_bytes(), 0.9))
    sizes = {}
    for mode in ("never", "auto", "always"):
        out = tmp_path / f"{mode}.elm"
        assert main(["convert", str(src), "-o", str(out), "--sparse", mode]) == 0
        sizes[mode] = out.stat().st_size
        capsys.readouterr()
        assert main(["inspect", str(out)]) == 0
        text = capsys.readouterr().out
        rows = [ln for ln in text.splitlines() if "FULLY_CONNECTED" in ln]
        assert len(rows) == 2
        assert all(("sparse" if mode != "never" else "dense") in r and " 90%" in r for r in rows), text
    assert sizes["auto"] == sizes["always"] < 0.6 * sizes["never"]
    with pytest.raises(SystemExit) as e:
        main(["convert", str(src), "-o", str(tmp_path / "x.elm"), "--sparse", "sometimes"])
    assert e.value.code != 0


# ---- the C kernel (host library) ------------------------------------------------------------

@settings(max_examples=300, **SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 700), st.integers(1, 64),
       st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9, 0.97, 1.0]), st.booleans(), st.booleans(), st.booleans())
def test_c_sparse_equals_numpy_reference_and_dense_kernel(seed, batches, depth, units, sparsity, per_channel,
                                                           bias, realistic):
    rng = np.random.default_rng(seed)
    case = kc.fully_connected_sparse(rng, batches, depth, units, sparsity, per_channel, bias, realistic)
    status, arena = run_c(case)
    assert status == "ok", case.info
    got = case.output(arena)
    assert got == reference_output(case), case.info
    # the dense kernel on the decoded weights, same everything else: identical bytes
    a = case.args
    w = sparse.decode(case.blob[a[9]:a[9] + a[14]], units, depth)
    dense_blob = bytearray(case.blob) + bytes((-len(case.blob)) % 4)
    w_off = len(dense_blob)
    dense_blob += w.tobytes()
    dense = kc.Case("fully_connected", a[:9] + [w_off] + a[10:14], bytes(dense_blob), case.arena, case.out)
    status, arena = run_c(dense)
    assert status == "ok" and dense.output(arena) == got


def _hostile(case: kc.Case, how: str) -> kc.Case:
    a, b = list(case.args), bytearray(case.blob)
    w_off, units, depth = a[9], a[4], a[3]
    head = 4 * ((units + 1) // 2)
    counts = struct.unpack_from(f"<{units}H", b, w_off)
    r = next(i for i, c in enumerate(counts) if c)  # first row with pairs
    first = w_off + head + 4 * sum(counts[:r])
    if how == "column_past_end":   # the row's first two deltas reach column 510 >= depth
        b[first] = b[first + 2] = 255
    elif how == "count_too_big":   # the counts promise more words than the stream has
        struct.pack_into("<H", b, w_off + 2 * r, counts[r] + 1)
    elif how == "count_too_small":
        struct.pack_into("<H", b, w_off + 2 * r, counts[r] - 1)
    elif how == "count_huge":      # counts and length agree, but the words run beyond the real pairs
        struct.pack_into("<H", b, w_off + 2 * r, 0xFFFF)
        a[14] += 4 * (0xFFFF - counts[r])
    elif how == "length_short":
        a[14] = head - 4 if head >= 4 else 2
    elif how == "misaligned":
        a[9] += 2
    else:
        raise ValueError(how)
    return kc.Case(case.kernel, a, bytes(b), case.arena, case.out)


HOSTILE = {"column_past_end": E_SPARSE, "count_too_big": E_SPARSE, "count_too_small": E_SPARSE,
           "count_huge": "constant data outside the blob", "length_short": E_SPARSE,
           "misaligned": "int32 constant data not 4-byte aligned"}


@pytest.mark.parametrize("how", HOSTILE)
def test_hostile_streams_rejected_by_c_and_python(how):
    rng = np.random.default_rng(77)
    for depth in (5, 40, 300):
        case = kc.fully_connected_sparse(rng, 2, depth, 9, 0.6)
        bad = _hostile(case, how)
        s_py, a_py = run_python(bad)
        s_c, a_c = run_c(bad, "ubsan")
        assert s_c == s_py == HOSTILE[how], (how, depth)
        assert a_c == a_py == case.arena, "a rejected call wrote to the arena"
