"""Bytes and arena of every zoo model against TensorFlow Lite Micro's (goals of issue 3, deterministic:
the committed .tflite / .elm files and TFLM's own allocation report). Timing lives in
benchmarks/bench_vs_tflm.py only."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeloop_host import blob, footprint

REPO = Path(__file__).resolve().parents[1]
ZOO = sorted(d.name for d in (REPO / "models").iterdir()
             if (d / f"{d.name}.tflite").is_file() and (d / f"{d.name}.elm").is_file())
BYTES_GOAL = 0.8   # blob bytes / .tflite bytes
ARENA_GOAL = 1.0   # planned arena / TFLM's activation arena


def _files(name):
    d = REPO / "models" / name
    return (d / f"{name}.tflite").read_bytes(), (d / f"{name}.elm").read_bytes()


def test_zoo_is_there():
    assert set(ZOO) >= {"digits_mlp", "digits_cnn", "har_conv1d", "vibration_ae"}


@pytest.mark.parametrize("name", ZOO)
def test_blob_bytes_vs_tflite(name):
    tfl, elm = _files(name)
    parts = footprint.blob_parts(elm)
    assert parts["total"] == len(elm)
    # What a .tflite holds (graph, tensors, ops, constants) within the goal, for every model.
    assert parts["model"] <= BYTES_GOAL * len(tfl), (name, parts, len(tfl))
    # The optional sections carry only their payload: a self-test vector is 8 bytes of counts plus the
    # input and output, and META no more than its JSON (each + a 16-byte table entry + 3 of padding).
    g = blob.decode(elm)
    if g.self_test is not None:
        assert parts["self_test"] <= 16 + 3 + 8 + g.input().nbytes + g.output().nbytes
    meta_json = json.dumps(g.meta, sort_keys=True, separators=(",", ":")).encode() if g.meta else b""
    assert parts["meta"] <= (16 + 3 + len(meta_json) if meta_json else 0)


@pytest.mark.parametrize("name", ZOO)
def test_arena_vs_tflm(name):
    tfl, elm = _files(name)
    ours = footprint.blob_parts(elm)["arena"]
    tflm = footprint.tflm_arena(tfl)
    assert tflm["head"] + tflm["tail"] == tflm["total"] and tflm["head"] > 0
    # Like with like: our arena holds activations only; TFLM's head is its activation plan (its tail is
    # interpreter bookkeeping and per-op data such as multipliers, which a blob keeps in flash).
    assert ours <= ARENA_GOAL * tflm["head"], (name, ours, tflm)
    assert ours < tflm["total"]
