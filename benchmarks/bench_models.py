"""Instructions per MAC of every zoo model, per layer and for the whole predict() call, on every kernel
build of the emulated boards.

    .venv/bin/python benchmarks/bench_models.py [--boards qemu-arm qemu-rv32 qemu-m0] [--models digits_cnn]
                                                [--runs 100]

Under `qemu -icount shift=0` (benchmarks/board_builds.py) a time.ticks_us() difference on the board is
kilo-instructions, identical on every run. Per layer: edgeloop.profile.profile() runs each op `runs`
times back to back, in inference order on the inference's data, through the same kernel call predict()
makes; the figure is ticks * 1000 / runs / the op's MACs (pools, MEAN and other MAC-less ops: the
instructions per call, in brackets). Whole model: `runs` back-to-back predict() calls (input copy, op
dispatch and latency bookkeeping included) over the model's MACs. Both include the timing loop's
iteration (a few dozen instructions). Builds: the firmware's user C module and the natmods that load on
each board (qemu-arm, Cortex-M3: armv7m and armv6m, i.e. the M0+ instruction stream; qemu-rv32: rv32imc;
qemu-m0, a Cortex-M0: its usermod and the armv6m natmod). Before timing, each build's outputs for the
blob's self-test input and three random inputs must equal the host reference (edgeloop_host.reference),
and the op names and MACs the board reports must equal `edgeloop inspect`'s.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "host_tools"), str(REPO / "benchmarks")]

from board_builds import BOARD_BUILDS, GOALS, M0_BUILDS, kernel_module, open_board, upload  # noqa: E402

BUILDS = {**BOARD_BUILDS, "qemu-m0": M0_BUILDS}
MODELS = sorted(p.parent.name for p in (REPO / "models").glob("*/*.elm"))

# Heap order for qemu-m0 (160 KB): the natmod first (one ~30 KB block), then the blob in one allocation,
# then the runtime's small pieces. Importing edgeloop, then the natmod, then edgeloop.load(path) fails
# there for vibration_ae: 117 KB free, but no 24 KB hole for the blob's f.read() (BENCHMARKS.md).
DEVICE_CODE = """
import gc, os
m = None
try:
    gc.collect()
    mod = __import__({mod!r})
    gc.collect()
    buf = bytearray(os.stat('bm_{name}.elm')[6])
    with open('bm_{name}.elm', 'rb') as f:
        f.readinto(buf)
    import edgeloop, binascii
    from edgeloop import backend, profile
    backend.use_c_module(mod)
    m = edgeloop.load(buf, 'c')
except MemoryError:  # the model does not fit this build's heap (next to its runtime and natmod)
    buf = None
    gc.collect()
    print('BMX', gc.mem_free())
if m:
    xs = memoryview(open('bm_{name}.in', 'rb').read())
    n = m.input_size
    for i in range(0, len(xs), n):
        print('BMY', binascii.hexlify(m.predict(xs[i:i + n])).decode())
    for op, macs, dt in profile.profile(m, xs[:n], {runs}):
        print('BMO', op, macs, dt)
    print('BMP', profile.predict_ticks(m, xs[:n], {runs}))
"""


class Model:
    """A zoo model on the host: blob, op names and MACs (edgeloop inspect), inputs and reference outputs."""

    def __init__(self, name: str):
        from edgeloop_host import blob, inspect, reference

        self.name = name
        self.elm = (REPO / "models" / name / f"{name}.elm").read_bytes()
        g = blob.decode(self.elm)
        self.ops = [(op.name, inspect.op_macs(g, op)) for op in g.ops]
        self.macs = sum(m for _, m in self.ops)
        n = int(np.prod(g.input().shape))
        rng = np.random.default_rng(len(name))
        x = rng.integers(-128, 128, (4, n), dtype=np.int8)
        if g.self_test is not None:  # the first input, the one timed: the blob's self-test vector
            x[0] = np.asarray(g.self_test[0], dtype=np.int8).reshape(-1)
        self.x = x
        y = reference.run(g, x.reshape((4, *g.input().shape[1:])))
        self.y = [bytes(np.asarray(r, dtype=np.int8).reshape(-1).tobytes()) for r in y]


def bench_board(board: str, models: list[Model], runs: int) -> dict:
    """{(model, column): (per-op ticks, predict ticks), or None where the model does not fit} for every
    build of `board`."""
    res = {}
    with open_board(board, runtime=True) as t:
        upload(t, [f for m in models for f in ((m.elm, f"bm_{m.name}.elm"), (m.x.tobytes(), f"bm_{m.name}.in"))])
        for col, arch, _ in BUILDS[board]:
            mod = kernel_module(t, arch)
            for m in models:
                t.reset()
                out = t.exec(DEVICE_CODE.format(mod=mod, name=m.name, runs=runs), timeout=1800).splitlines()
                nofit = [ln.split()[1] for ln in out if ln.startswith("BMX")]
                if nofit:
                    res[(m.name, col)] = None
                    print(f"# {board} {col} {m.name}: does not fit ({len(m.elm)} B blob, {nofit[0]} B heap free)",
                          file=sys.stderr, flush=True)
                    continue
                ys = [bytes.fromhex(ln.split()[1]) for ln in out if ln.startswith("BMY")]
                if ys != m.y:
                    raise RuntimeError(f"{board} {col} {m.name}: outputs differ from the host reference")
                ops = [ln.split()[1:] for ln in out if ln.startswith("BMO")]
                if [(o, int(k)) for o, k, _ in ops] != m.ops:
                    raise RuntimeError(f"{board} {col} {m.name}: ops/MACs {ops} differ from edgeloop inspect {m.ops}")
                whole = int([ln for ln in out if ln.startswith("BMP")][-1].split()[1])
                res[(m.name, col)] = ([int(dt) for _, _, dt in ops], whole)
                print(f"# {board} {col} {m.name}: outputs match, {whole * 1000 / runs / m.macs:.2f} instr/MAC",
                      file=sys.stderr, flush=True)
    return res


def cell(ticks: int | None, runs: int, macs: int, goal: float) -> str:
    """Instructions per MAC (bold: goal met), or [instructions per call] for an op without MACs."""
    if ticks is None:
        return "no fit"
    if not macs:
        return f"[{ticks * 1000 / runs:.0f}]"
    v = ticks * 1000 / runs / macs
    return f"**{v:.2f}**" if v <= goal else f"{v:.2f}"


def table(models: list[Model], cols: list, res: dict, runs: int) -> str:
    lines = []
    for m in models:
        def row(label: str, macs: int, ticks) -> str:  # ticks(per-op ticks, predict ticks) -> ticks
            cells = [cell(None if res[(m.name, c)] is None else ticks(*res[(m.name, c)]), runs, macs, GOALS[g])
                     for c, _, g in cols]
            return f"| {label:<24} | {macs:>6} | " + " | ".join(f"{v:>16}" for v in cells) + " |"

        lines += [f"\n{m.name}: {m.macs} MACs, {len(m.ops)} ops, {runs} runs",
                  f"| {'layer':<24} | {'MACs':>6} | " + " | ".join(f"{c:>16}" for c, _, _ in cols) + " |",
                  "|---|---:|" + "---:|" * len(cols)]
        lines += [row(f"{i} {op}", macs, lambda ops, _, i=i: ops[i]) for i, (op, macs) in enumerate(m.ops)]
        lines.append(row("sum of layers", m.macs, lambda ops, _: sum(ops)))
        lines.append(row("whole predict()", m.macs, lambda _, whole: whole))
        lines.append(f"| {'goal':<24} | {'':>6} | "
                     + " | ".join(f"{'<= ' + str(GOALS[isa]):>16}" for _, _, isa in cols) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="*", default=list(BUILDS), choices=list(BUILDS))
    ap.add_argument("--models", nargs="*", default=MODELS, choices=MODELS)
    ap.add_argument("--runs", type=int, default=100)
    a = ap.parse_args(argv)
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    models = [Model(n) for n in a.models]
    res, cols = {}, []
    for board in a.boards:
        res.update(bench_board(board, models, a.runs))
        cols += BUILDS[board]
    print("instructions per MAC (qemu -icount shift=0; bold: goal met; [instructions per call] for ops without "
          "MACs; outputs checked against the host reference)")
    print(table(models, cols, res, a.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
