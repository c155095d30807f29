"""Per-inference time of a model on the MicroPython unix port: the C module vs the pure-Python fallback,
measured side by side in one MicroPython process (so the ratio is what matters, not the absolute figure).

    .venv/bin/python benchmarks/bench_backends.py [models/digits_mlp/digits_mlp.elm] [--runs 2000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DEVICE_CODE = """
import time, edgeloop
data = open(%(model)r, 'rb').read()
res = {}
for name in ('c', 'python'):
    m = edgeloop.load(data, name)
    x = bytearray(m.input_size)
    runs = %(runs)d if name == 'c' else max(%(runs)d // 100, 20)
    for i in range(len(x)):
        x[i] = (i * 37) & 0xFF
    m.predict(x)
    best = None
    for rep in range(3):
        t0 = time.ticks_us()
        for _ in range(runs):
            m.predict(x)
        dt = time.ticks_diff(time.ticks_us(), t0) / runs
        best = dt if best is None or dt < best else best
    res[name] = best
print('RESULT', res['c'], res['python'])
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=str(REPO / "models/digits_mlp/digits_mlp.elm"))
    ap.add_argument("--runs", type=int, default=2000)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "host_tools"))
    from edgeloop_host.toolchain import firmware_path

    binary = firmware_path("unix")
    code = DEVICE_CODE % {"model": os.path.abspath(args.model), "runs": args.runs}
    env = dict(os.environ, MICROPYPATH=f"{REPO / 'device'}:.frozen")
    out = subprocess.run([str(binary), "-X", "heapsize=8M", "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    c_us, py_us = (float(v) for v in out.split("RESULT")[1].split())
    print(f"model {args.model}")
    print(f"unix port, C module (_edgeloop usermod): {c_us:10.1f} us per inference")
    print(f"unix port, pure-Python fallback        : {py_us:10.1f} us per inference")
    print(f"ratio python / C                       : {py_us / c_us:10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
