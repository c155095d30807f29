"""Instructions per MAC of the edgeloop kernels through MicroPython, per build, for four layer shapes
(benchmarks/bench_layers.py): FULLY_CONNECTED 256x256, 1x1 CONV_2D 32->32 on 16x16, 3x3 CONV_2D 16->16 on
16x16 (SAME), 3x3 DEPTHWISE_CONV_2D on 16x16x32 (SAME).

    .venv/bin/python benchmarks/bench_kernels.py [--boards qemu-arm qemu-rv32] [--runs 3] [--no-unix]

Emulated boards run under `qemu -icount shift=0`: one instruction per virtual nanosecond, so
time.ticks_us() differences on the board count kilo-instructions, identically on every run. Each figure
is (ticks over `runs` calls) * 1000 / runs / MACs: the whole call from Python, argument checks included.
Builds: the user C module of the board's firmware and the natmods that load there (qemu-arm, Cortex-M3:
armv7m and armv6m, which the M3 runs unchanged, i.e. the Cortex-M0+ instruction stream; qemu-rv32:
rv32imc). Every output is checked against the host build of the same C sources (tests/clib.py).
The unix port line times the C module against the pure-Python kernels in one MicroPython process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "host_tools"), str(REPO / "tests"), str(REPO / "benchmarks")]

from bench_layers import LAYERS, make_case  # noqa: E402
from board_builds import BOARD_BUILDS, GOALS, kernel_module, open_board, upload  # noqa: E402

DEVICE_CODE = """
import time
from array import array
def _bk(modname, kernel, name, args, runs):
    mod = __import__(modname)
    blob = open('bk_' + name + '.blob', 'rb').read()
    arena = bytearray(open('bk_' + name + '.arena', 'rb').read())
    k = getattr(mod, kernel)
    a = array('i', args)
    k(blob, arena, a)
    t0 = time.ticks_us()
    for _ in range(runs):
        k(blob, arena, a)
    dt = time.ticks_diff(time.ticks_us(), t0)
    return dt, arena
"""


def host_outputs(cases):
    import clib

    lib = clib.load()
    out = {}
    for name, c in cases.items():
        arena = bytearray(c.arena)
        if lib.call(c.kernel, c.args, c.blob, arena) != 0:
            raise RuntimeError(f"host library rejected {name}")
        out[name] = c.output(arena)
    return out


def bench_board(board: str, cases, expect, runs: int) -> dict[str, dict[str, float]]:
    res: dict[str, dict[str, float]] = {}
    with open_board(board) as t:
        upload(t, [f for name, c in cases.items()
                   for f in ((c.blob, f"bk_{name}.blob"), (bytes(c.arena), f"bk_{name}.arena"))])
        for col, arch, _ in BOARD_BUILDS[board]:
            mod = kernel_module(t, arch)
            for name, c in cases.items():
                t.reset()
                code = DEVICE_CODE + (
                    f"dt, arena = _bk({mod!r}, {c.kernel!r}, {name!r}, {list(c.args)!r}, {runs})\n"
                    f"import _edgeloop as E\n"
                    f"print('BK', dt, E.crc32(memoryview(arena)[{c.out[0]}:{c.out[0] + c.out[1]}]))\n")
                line = [ln for ln in t.exec(code, timeout=600).splitlines() if ln.startswith("BK")][-1]
                _, dt, crc = line.split()
                if int(crc) != zlib.crc32(expect[name]):
                    raise RuntimeError(f"{board} {col} {name}: output differs from the host library")
                res.setdefault(name, {})[col] = int(dt) * 1000 / runs / LAYERS[name]
    return res


def bench_unix(cases, runs: int) -> dict[str, tuple[float, float]]:
    """Microseconds per call, C module and pure Python, on the unix port (one process)."""
    import tempfile

    from edgeloop_host.toolchain import firmware_path

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, c in cases.items():
            Path(tmp, f"bk_{name}.blob").write_bytes(c.blob)
            Path(tmp, f"bk_{name}.arena").write_bytes(bytes(c.arena))
        code = DEVICE_CODE + "from edgeloop import pykernels\nimport sys\nsys.modules['pyk'] = pykernels\n"
        for name, c in cases.items():
            code += (f"dc, _ = _bk('_edgeloop', {c.kernel!r}, {name!r}, {list(c.args)!r}, {runs})\n"
                     f"dp, _ = _bk('pyk', {c.kernel!r}, {name!r}, {list(c.args)!r}, 1)\n"
                     f"print('BK', {name!r}, dc / {runs}, dp)\n")
        env = dict(os.environ, MICROPYPATH=f"{REPO / 'device'}:.frozen")
        out = subprocess.run([str(firmware_path("unix")), "-X", "heapsize=16M", "-c", code], cwd=tmp, env=env,
                             capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("BK"):
            _, name, dc, dp = line.split()
            res[name] = (float(dc), float(dp))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="*", default=list(BOARD_BUILDS), choices=list(BOARD_BUILDS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-unix", action="store_true")
    a = ap.parse_args(argv)
    cases = {name: make_case(name) for name in LAYERS}
    expect = host_outputs(cases)
    table: dict[str, dict[str, float]] = {name: {} for name in LAYERS}
    cols = []
    for board in a.boards:
        for name, row in bench_board(board, cases, expect, a.runs).items():
            table[name].update(row)
        cols += BOARD_BUILDS[board]
    print("instructions per MAC (qemu -icount shift=0, whole kernel call from MicroPython, outputs checked)")
    print(f"{'layer':26s}{'MACs':>9s}" + "".join(f"{c:>16s}" for c, _, _ in cols))
    for name in LAYERS:
        print(f"{name:26s}{LAYERS[name]:9d}" + "".join(f"{table[name][c]:16.3f}" for c, _, _ in cols))
    print(f"{'goal':35s}" + "".join(f"{'<= ' + str(GOALS[isa]):>16s}" for _, _, isa in cols))
    if not a.no_unix:
        print("\nunix port (x86-64), same process: C module vs pure-Python kernels, microseconds per call")
        print(f"{'layer':26s}{'C':>12s}{'Python':>14s}{'ratio':>10s}")
        for name, (dc, dp) in bench_unix(cases, max(a.runs, 20)).items():
            print(f"{name:26s}{dc:12.1f}{dp:14.0f}{dp / dc:9.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
