"""edgeloop vs TensorFlow Lite Micro, one row per model: blob bytes vs .tflite bytes, planned arena vs
TFLM's arena, and per-inference time of our unix-port runtime (C module) vs the tflite-micro interpreter
on CPython, measured side by side in one run; outputs checked identical on the way.

    .venv/bin/python benchmarks/bench_vs_tflm.py [--no-hidden] [--runs 2000] [--reps 5] [--icount]

Models: every zoo model (committed .tflite and .elm) and the hidden-style models the tests build
(tests/tflite_models.py WHOLE_MODELS, seed 3, per-channel "pc" and per-tensor "pt", converted here).
Timing: each repeat runs `runs` inferences of every model in one MicroPython process (time.ticks_us
around a `predict(x, out)` loop: input copied in, output copied out), then the same count in this
process around `set_input` / `invoke` / `get_output`; the figure is the median over the repeats.
--icount adds x86 instructions per inference of both sides, counted by valgrind (callgrind), which the
machine's load does not change: each side runs once with no inference and once per model with
N inferences of that model (everything else identical); the difference / N. CPython's count varies by
~4M instructions from process to process, so N is 2000 for models under 20 us (200 above).
"""
from __future__ import annotations

import argparse
import binascii
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host_tools"))
sys.path.insert(0, str(REPO / "tests"))

N_CHECK = 64  # inputs per model whose outputs are compared with TFLM's

DEVICE_CODE = """
import gc, time, binascii, edgeloop
from edgeloop import model as _model
edgeloop.load(open(%(names)r[0] + '.elm', 'rb').read(), 'c')  # first-load imports are not a model's heap
for name in %(names)r:
    m = ys = vx = vy = x = out = None
    _model._current = None  # load() keeps the last model: drop it so the heap delta is this model's
    data = open(name + '.elm', 'rb').read()
    xs = open(name + '.x', 'rb').read()
    gc.collect()
    a = gc.mem_alloc()
    m = edgeloop.load(data, 'c')
    gc.collect()
    heap = gc.mem_alloc() - a
    ni, no = m.input_size, m.output_size
    k = len(xs) // ni
    ys = bytearray(k * no)
    vx, vy = memoryview(xs), memoryview(ys)
    for i in range(k):
        m.predict(vx[i * ni:(i + 1) * ni], vy[i * no:(i + 1) * no])
    x, out = vx[:ni], bytearray(no)
    m.predict(x, out)
    n = %(runs)d
    t0 = time.ticks_us()
    for _ in range(n):
        m.predict(x, out)
    dt = time.ticks_diff(time.ticks_us(), t0)
    print('ROW', name, dt / n, heap, binascii.hexlify(ys).decode())
"""


def zoo_models() -> list[tuple[str, bytes, bytes]]:
    out = []
    for d in sorted((REPO / "models").iterdir()):
        tfl, elm = d / f"{d.name}.tflite", d / f"{d.name}.elm"
        if tfl.is_file() and elm.is_file():
            out.append((d.name, tfl.read_bytes(), elm.read_bytes()))
    return out


def hidden_models() -> list[tuple[str, bytes, bytes]]:
    import tflite_models as TM
    from edgeloop_host.convert import convert

    out = []
    for name, build in TM.WHOLE_MODELS.items():
        for per_channel in (True, False):
            tfl, _ = build(seed=3, per_channel=per_channel)
            out.append((f"{name}-{'pc' if per_channel else 'pt'}", tfl, convert(tfl)))
    return out


def check_inputs(tfl: bytes, n: int, seed: int = 0) -> np.ndarray:
    from edgeloop_host import oracle

    d = oracle.tflm_interpreter(tfl).get_input_details(0)
    shape = tuple(int(s) for s in d["shape"])
    return np.random.default_rng(seed).integers(-128, 128, (n,) + shape, dtype=np.int8)


def time_tflm(it, x: np.ndarray, runs: int) -> float:
    it.set_input(x, 0)
    it.invoke()
    t0 = time.perf_counter()
    for _ in range(runs):
        it.set_input(x, 0)
        it.invoke()
        it.get_output(0)
    return (time.perf_counter() - t0) / runs * 1e6


ICOUNT_MP = """
import sys, edgeloop
ms = [edgeloop.Model(open(n + '.elm', 'rb').read(), 'c') for n in %(names)r]
outs = [bytearray(m.output_size) for m in ms]
xs = [bytearray(m.input_size) for m in ms]
k, n = %(k)d, %(n)d
for _ in range(n):
    ms[k].predict(xs[k], outs[k])
"""

ICOUNT_TFLM = """
import sys
sys.path.insert(0, %(host)r)
import numpy as np
from edgeloop_host import oracle
its = [oracle.tflm_interpreter(open(p, 'rb').read()) for p in %(paths)r]
xs = [np.zeros(it.get_input_details(0)['shape'], it.get_input_details(0)['dtype']) for it in its]
for it, x in zip(its, xs):
    it.set_input(x, 0); it.invoke(); it.get_output(0)
k, n = %(k)d, %(n)d
for _ in range(n):
    its[k].set_input(xs[k], 0); its[k].invoke(); its[k].get_output(0)
"""


def _callgrind(cmd: list[str], cwd: str, env=None) -> int:
    import subprocess

    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd], cwd=cwd,
                       env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"valgrind {cmd[0]} failed: {p.stderr[-500:]}")
    for line in p.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1])
    raise RuntimeError("valgrind printed no instruction count")


def icounts(models, runs: list[int]) -> list[tuple[str, float, float]]:
    """(name, our instructions per inference, TFLM's) for (name, tflite, elm) models, `runs[k]` inferences
    of model k, through valgrind."""
    import os
    import shutil
    import tempfile

    from edgeloop_host import toolchain

    if shutil.which("valgrind") is None:
        raise RuntimeError("--icount needs valgrind (apt-get install valgrind)")
    mp = str(toolchain.firmware_path("unix"))
    names = [name for name, _, _ in models]
    with tempfile.TemporaryDirectory(prefix="el-icount-") as d:
        shutil.copytree(REPO / "device" / "edgeloop", Path(d) / "lib" / "edgeloop")
        paths = []
        for name, tfl, elm in models:
            (Path(d) / f"{name}.elm").write_bytes(elm)
            (Path(d) / f"{name}.tflite").write_bytes(tfl)
            paths.append(str(Path(d) / f"{name}.tflite"))
        env = dict(os.environ, MICROPYPATH=str(Path(d) / "lib"))

        def ours(k, n):
            (Path(d) / "ic.py").write_text(ICOUNT_MP % {"names": names, "k": k, "n": n})
            return _callgrind([mp, "ic.py"], d, env)

        def tflm(k, n):
            (Path(d) / "ict.py").write_text(ICOUNT_TFLM % {"host": str(REPO / "host_tools"), "paths": paths,
                                                          "k": k, "n": n})
            return _callgrind([sys.executable, "ict.py"], d, dict(os.environ, PYTHONHASHSEED="0"))

        base_ours, base_tflm = ours(0, 0), tflm(0, 0)
        return [(name, (ours(k, runs[k]) - base_ours) / runs[k], (tflm(k, runs[k]) - base_tflm) / runs[k])
                for k, name in enumerate(names)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-hidden", action="store_true", help="zoo models only")
    ap.add_argument("--runs", type=int, default=2000, help="inferences per timed loop")
    ap.add_argument("--reps", type=int, default=5, help="timed repeats (the median is reported)")
    ap.add_argument("--icount", action="store_true", help="also count instructions with valgrind (~3 min)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.reps < 1:
        ap.error("--runs and --reps must be >= 1")
    from edgeloop_host import footprint, oracle
    from edgeloop_host.targets import open_target

    models = zoo_models() + ([] if args.no_hidden else hidden_models())
    rows = []
    for name, tfl, elm in models:
        xs = check_inputs(tfl, N_CHECK)
        rows.append({"name": name, "tfl": tfl, "elm": elm, "xs": xs, "parts": footprint.blob_parts(elm),
                     "tflm": footprint.tflm_arena(tfl), "y_tflm": oracle.tflm_run(tfl, xs),
                     "ours_us": [], "tflm_us": []})

    interpreters = [oracle.tflm_interpreter(r["tfl"]) for r in rows]
    with open_target("unix") as t:
        t.install_runtime()
        for r in rows:
            t.put_bytes(r["elm"], r["name"] + ".elm")
            t.put_bytes(r["xs"].tobytes(), r["name"] + ".x")
        code = DEVICE_CODE % {"names": [r["name"] for r in rows], "runs": args.runs}
        for rep in range(args.reps):  # alternate the two sides so both see the same machine load
            out = t.exec(code, timeout=3600)
            got = {}
            for line in out.splitlines():
                if line.startswith("ROW "):
                    _, name, us, heap, ys = line.split()
                    got[name] = (float(us), int(heap), binascii.unhexlify(ys))
            for r, it in zip(rows, interpreters):
                us, heap, ys = got[r["name"]]
                r["ours_us"].append(us)
                r["heap"] = heap
                y = np.frombuffer(ys, np.int8).reshape(len(r["xs"]), -1)
                r["identical"] = bool(np.array_equal(y, r["y_tflm"].reshape(len(r["xs"]), -1)))
                r["tflm_us"].append(time_tflm(it, r["xs"][0], args.runs))

    print("Bytes: blob as shipped (with META / SELF) and the model alone (required sections) vs .tflite")
    print(f"{'model':<16}{'.tflite':>9}{'blob':>8}{'ratio':>7}{'model':>8}{'ratio':>7}{'META':>7}{'SELF':>6}")
    for r in rows:
        p, n = r["parts"], len(r["tfl"])
        print(f"{r['name']:<16}{n:>9}{p['total']:>8}{p['total'] / n:>7.3f}{p['model']:>8}{p['model'] / n:>7.3f}"
              f"{p['meta']:>7}{p['self_test']:>6}")
    print()
    print("Arena bytes: ours (planned, in the blob) vs TFLM head (activation tensors) = compared; "
          "TFLM tail / total and our load-time heap (arena + runtime objects) for reference")
    print(f"{'model':<16}{'ours':>7}{'TFLM head':>10}{'ratio':>7}{'TFLM tail':>10}{'TFLM total':>11}"
          f"{'our heap':>9}")
    for r in rows:
        a = r["tflm"]
        print(f"{r['name']:<16}{r['parts']['arena']:>7}{a['head']:>10}{r['parts']['arena'] / a['head']:>7.3f}"
              f"{a['tail']:>10}{a['total']:>11}{r['heap']:>9}")
    print()
    print(f"Time per inference on x86 (us, median of {args.reps} x {args.runs}): MicroPython unix port + C module "
          "vs tflite-micro on CPython")
    print(f"{'model':<16}{'ours':>9}{'TFLM':>9}{'ratio':>7}{'ours min':>9}{'TFLM min':>9}  identical")
    ok = True
    for r in rows:
        o, f = statistics.median(r["ours_us"]), statistics.median(r["tflm_us"])
        ok &= r["identical"]
        print(f"{r['name']:<16}{o:>9.2f}{f:>9.2f}{o / f:>7.3f}{min(r['ours_us']):>9.2f}{min(r['tflm_us']):>9.2f}"
              f"  {'yes' if r['identical'] else 'NO'} ({len(r['xs'])} inputs)")
    if args.icount:
        print()
        print("x86 instructions per inference (valgrind): ours = predict(x, out) on the unix port, "
              "TFLM = set_input + invoke + get_output on CPython")
        print(f"{'model':<16}{'ours':>10}{'TFLM':>10}{'ratio':>7}")
        runs = [2000 if statistics.median(r["tflm_us"]) < 20 else 200 for r in rows]
        for name, o, f in icounts([(r["name"], r["tfl"], r["elm"]) for r in rows], runs):
            print(f"{name:<16}{o:>10.0f}{f:>10.0f}{o / f:>7.3f}")
    if not ok:
        print("OUTPUTS DIFFER from TFLM", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
