"""edgeloop vs TensorFlow Lite Micro, one row per model: blob bytes vs .tflite bytes, planned arena vs
TFLM's arena, and per-inference time of our unix-port runtime (C module) vs the tflite-micro interpreter
on CPython, measured side by side in one run; outputs checked identical on the way.

    .venv/bin/python benchmarks/bench_vs_tflm.py [--no-hidden] [--runs 2000] [--reps 5]

Models: every zoo model (committed .tflite and .elm) and the hidden-style models the tests build
(tests/tflite_models.py WHOLE_MODELS, seed 3, per-channel "pc" and per-tensor "pt", converted here).
Timing: each repeat runs `runs` inferences of every model in one MicroPython process (time.ticks_us
around a `predict(x, out)` loop: input copied in, output copied out), then the same count in this
process around `set_input` / `invoke` / `get_output`; the figure is the median over the repeats.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-hidden", action="store_true", help="zoo models only")
    ap.add_argument("--runs", type=int, default=2000, help="inferences per timed loop")
    ap.add_argument("--reps", type=int, default=5, help="timed repeats (the median is reported)")
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
    if not ok:
        print("OUTPUTS DIFFER from TFLM", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
