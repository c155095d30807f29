"""edgeloop.profile on real MicroPython: for every zoo model (and digits_cnn pruned to 80% with sparse
weights) on every backend of the unix port (and pure Python on stock MicroPython), the ops and MACs it
reports are `edgeloop inspect`'s, the model's output afterwards is the host reference's, its per-op
times add up to the whole predict() (C and viper: they allocate nothing, so no GC pause lands on one
and not the other); on the emulated Cortex-M3 under `qemu -icount shift=0` the figures repeat to the
tick, so the per-op sum is checked against predict() to the instruction budget of predict()'s own
overhead."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeloop_host import blob, inspect, reference

REPO = Path(__file__).resolve().parents[1]
ZOO = sorted(p.parent.name for p in REPO.glob("models/*/*.elm"))

DEVICE_CODE = """
import edgeloop, json, binascii
from edgeloop import profile
for name in {names!r}:
    m = edgeloop.load('pf_' + name + '.elm', {backend!r})
    x = open('pf_' + name + '.in', 'rb').read()
    p = profile.profile(m, x, {runs})
    after = binascii.hexlify(m._out).decode()
    y = binascii.hexlify(m.predict(x)).decode()
    print('PF', json.dumps([name, m.backend, p, after, y]))
m = edgeloop.load('pf_digits_cnn.elm', {backend!r})
x = open('pf_digits_cnn.in', 'rb').read()
for bad in ((x, 0), (x[:3], 1), ([0] * len(x), 1)):
    try:
        profile.profile(m, bad[0], bad[1])
        print('PF-ERR none')
    except ValueError as e:
        print('PF-ERR', e)
"""

# digits_cnn's per-op ticks and whole predict(), the best of five of each, interleaved (so a slow spell of a
# shared machine hits both); then two profiles back to back
SUM_CODE = """
import edgeloop, json
from edgeloop import profile
m = edgeloop.load('pf_digits_cnn.elm', {backend!r})
x = open('pf_digits_cnn.in', 'rb').read()
best, w = None, None
for _ in range(5):
    p = [r[2] for r in profile.profile(m, x, {runs})]
    best = p if best is None else [min(a, b) for a, b in zip(best, p)]
    t = profile.predict_ticks(m, x, {runs})
    w = t if w is None else min(w, t)
print('PF-SUM', sum(best), w, json.dumps([[r[2] for r in profile.profile(m, x, {runs})] for _ in range(2)]))
"""


@pytest.fixture(scope="module")
def models():
    """name -> (blob, [(op name, MACs)] from edgeloop inspect, int8 input, host reference output)."""
    from edgeloop_host import sparse
    from edgeloop_host.convert import convert

    elms = {n: (REPO / "models" / n / f"{n}.elm").read_bytes() for n in ZOO}
    tfl = (REPO / "models/digits_cnn/digits_cnn.tflite").read_bytes()
    elms["digits_cnn_sparse80"] = convert(sparse.prune_tflite(tfl, 0.8), sparse_mode="always")
    assert any(t.encoding for t in blob.decode(elms["digits_cnn_sparse80"]).tensors)
    return {name: _entry(name, elm) for name, elm in elms.items()}


def _entry(name, elm):
    g = blob.decode(elm)
    x = np.random.default_rng(len(name)).integers(-128, 128, (1, *g.input().shape[1:]), dtype=np.int8)
    return elm, [(op.name, inspect.op_macs(g, op)) for op in g.ops], x.tobytes(), reference.run(g, x).tobytes()


def _run(t, models, backend, runs, timeout=300):
    t.put_many([f for n, (elm, _, x, _) in models.items() for f in ((elm, f"pf_{n}.elm"), (x, f"pf_{n}.in"))])
    out = t.exec(DEVICE_CODE.format(names=list(models), backend=backend, runs=runs), timeout=timeout).splitlines()
    res = {}
    for ln in out:
        if ln.startswith("PF "):
            name, used, prof, after, y = json.loads(ln[3:])
            assert used == backend
            res[name] = (prof, bytes.fromhex(after), bytes.fromhex(y))
    errs = [ln[7:] for ln in out if ln.startswith("PF-ERR")]
    return res, errs


def _sum(t, backend, runs):
    """(digits_cnn's per-op ticks summed, predict() ticks, two profiles' per-op ticks)."""
    out = t.exec(SUM_CODE.format(backend=backend, runs=runs), timeout=300)
    s, w, twice = [ln.split(None, 3) for ln in out.splitlines() if ln.startswith("PF-SUM")][0][1:]
    return int(s), int(w), json.loads(twice)


def _check(models, res, errs):
    assert sorted(res) == sorted(models)
    for name, (elm, ops, x, y) in models.items():
        prof, after, y_dev = res[name]
        assert [(o, m) for o, m, _ in prof] == ops, name
        assert all(isinstance(dt, int) and dt >= 0 for _, _, dt in prof), name
        assert after == y and y_dev == y, f"{name}: output differs from the host reference"
    assert errs[0] == "runs must be >= 1"
    assert errs[1].startswith("input has 3 bytes") and "input must be int8 bytes" in errs[2], errs


@pytest.mark.parametrize("target, backend", [("unix", "c"), ("unix", "viper"), ("unix", "python"),
                                             ("stock", "python")])
def test_profile_local(request, models, target, backend):
    """The unix port's three backends, and stock MicroPython (no C module: predict's Python op loop)."""
    runs = {"c": 20, "viper": 5, "python": 1}[backend]
    t = request.getfixturevalue(f"{target}_target")
    res, errs = _run(t, models, backend, runs)
    _check(models, res, errs)
    if backend == "python":  # the pure-Python kernels allocate: GC pauses land on whichever op triggers them
        return
    # wall clock on a machine shared with other jobs: up to three tries; predict() adds its input copy and
    # bookkeeping, each op timed from Python pays a call that predict()'s C loop does not
    tries = []
    while len(tries) < 3 and not any(0.7 * w <= s <= 1.2 * w for s, w in tries):
        tries.append(_sum(t, backend, 100 if backend == "c" else 20)[:2])
    assert any(0.7 * w <= s <= 1.2 * w for s, w in tries), tries


@pytest.mark.qemu
def test_profile_icount_exact():
    """Cortex-M3 usermod under icount: one tick = 1000 instructions, the same on every run."""
    from edgeloop_host.targets import open_target

    one = {n: _entry(n, (REPO / "models" / n / f"{n}.elm").read_bytes()) for n in ("digits_cnn", "digits_mlp")}
    with open_target("qemu-arm", icount=True) as t:
        t.install_runtime()
        res, errs = _run(t, one, "c", 10)
        s, w, twice = _sum(t, "c", 20)
    _check(one, res, errs)
    # a tick is 1000 instructions: where in it the timing starts decides +-1
    assert all(abs(a - b) <= 1 for a, b in zip(*twice)), twice
    overhead = (w - s) * 1000 / 20  # instructions per predict() beyond its kernel calls
    assert 0 <= overhead <= 8000, overhead
    # digits_cnn's kernel calls: 59,072 MACs at 2 (the M3's best kernels) to 12 instructions per MAC
    # (its small layers pay per-call and per-output costs, BENCHMARKS.md)
    assert 2 <= s * 1000 / 20 / 59072 <= 12, s



def test_diag_profile_cli(tmp_path):
    """`edgeloop diag --profile`: per-op latency of the model on the board, through the real command."""
    import subprocess
    import sys

    elm = REPO / "models/digits_cnn/digits_cnn.elm"
    cmd = [sys.executable, "-m", "edgeloop_host.cli", "diag", "--board", "unix"]
    r = subprocess.run(cmd + ["--model", str(elm), "--profile", "--runs", "20", "--json"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)["profile"]
    assert p["runs"] == 20
    assert [(o, m) for o, m, _ in p["ops"]] == _entry("digits_cnn", elm.read_bytes())[1]
    assert all(us > 0 for _, m, us in p["ops"] if m), p
    r = subprocess.run(cmd + ["--model", str(elm), "--profile", "--runs", "20"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "profile     per op" in r.stdout and "DEPTHWISE_CONV_2D" in r.stdout, r.stdout
    for bad, msg in ((["--profile"], "--profile needs a model"),
                     (["--model", str(elm), "--profile", "--runs", "0"], "--profile needs --runs >= 1")):
        r = subprocess.run(cmd + bad, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert r.returncode == 1 and msg in r.stderr, (r.returncode, r.stderr)


@pytest.mark.qemu
def test_bench_models_m0(capsys):
    """benchmarks/bench_models.py end to end on the smallest board (qemu-m0, 160 KB heap), both builds:
    the outputs match the host reference (the script raises otherwise) and vibration_ae's 24 KB blob
    still fits next to the natmod."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("el_bench_models", REPO / "benchmarks" / "bench_models.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--boards", "qemu-m0", "--models", "digits_mlp", "vibration_ae", "--runs", "3"]) == 0
    out = capsys.readouterr().out
    rows = [ln.split("|")[3:-1] for ln in out.splitlines() if ln.startswith("| whole predict()")]
    assert len(rows) == 2 and "no fit" not in out, out
    for row in rows:  # M0 usermod, armv6m natmod: 4-15 instructions per MAC for these small models
        assert all(4 < float(v.strip().strip("*")) < 15 for v in row), row
