"""Per-inference cost of each backend (C module, viper, pure Python) for every zoo model:
wall time on the MicroPython unix port (ratios in one process, one run), and deterministic instruction
counts on the emulated Cortex-M3 (qemu -icount shift=0: one virtual microsecond = 1,000 instructions).

    .venv/bin/python benchmarks/bench_backends.py [MODEL.elm ...] [--no-qemu]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host_tools"))

DEVICE_CODE = """
import time, gc, edgeloop
data = open(%(model)r, 'rb').read()
res = []
for name in %(backends)r:
    m = edgeloop.load(data, name)
    x = bytearray(m.input_size)
    for i in range(len(x)):
        x[i] = (i * 37) & 0xFF
    m.predict(x)
    runs = %(runs)r[name]
    best = None
    for rep in range(%(reps)d):
        t0 = time.ticks_us()
        i = 0
        while i < runs:
            m.predict(x)
            i += 1
        dt = time.ticks_diff(time.ticks_us(), t0) / runs
        best = dt if best is None or dt < best else best
    res.append('%%s=%%.2f' %% (name, best))
print('RESULT', ' '.join(res))
"""


def measure(target, model: Path, backends, runs, reps) -> dict[str, float]:
    target.put(model, "bench.elm")
    code = DEVICE_CODE % {"model": "bench.elm", "backends": tuple(backends), "runs": runs, "reps": reps}
    out = target.exec(code, timeout=3600)
    line = out.split("RESULT", 1)[1].split()
    return {k: float(v) for k, v in (item.split("=") for item in line)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--no-qemu", action="store_true")
    args = ap.parse_args(argv)
    from edgeloop_host.targets import open_target

    models = [Path(m) for m in args.models] or sorted(REPO.glob("models/*/*.elm"))
    backends = ("c", "viper", "python")
    print("unix port (x86-64), microseconds per inference, best of 3; ratios vs pure Python")
    print(f"{'model':<22}{'C':>10}{'viper':>10}{'python':>11}{'C x':>8}{'viper x':>9}")
    with open_target("unix") as t:
        t.install_runtime()
        for m in models:
            r = measure(t, m, backends, {"c": 2000, "viper": 200, "python": 20}, 3)
            print(f"{m.stem:<22}{r['c']:>10.1f}{r['viper']:>10.1f}{r['python']:>11.1f}"
                  f"{r['python'] / r['c']:>8.0f}{r['python'] / r['viper']:>9.1f}")
    if args.no_qemu:
        return 0
    print()
    print("emulated Cortex-M3 (qemu mps2-an385, -icount shift=0), thousands of instructions per inference")
    print(f"{'model':<22}{'C':>10}{'viper':>10}{'python':>11}{'C x':>8}{'viper x':>9}")
    with open_target("qemu-arm", icount=True) as t:
        t.install_runtime()
        for m in models:
            r = measure(t, m, backends, {"c": 20, "viper": 3, "python": 1}, 1)
            print(f"{m.stem:<22}{r['c']:>10.1f}{r['viper']:>10.1f}{r['python']:>11.1f}"
                  f"{r['python'] / r['c']:>8.0f}{r['python'] / r['viper']:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
