"""Sparse weights (docs/FORMAT.md, encoding 1): blob bytes and instructions per MAC.

    .venv/bin/python benchmarks/bench_sparse.py [--boards qemu-arm qemu-rv32] [--runs 3] [--no-icount]

1. Blob bytes of the committed digits_mlp pruned to 0/50/75/90% (int8 magnitude pruning of its .tflite,
   sparse.prune_tflite), converted with --sparse never / auto / always, and each layer's weight bytes.
2. A 256x256 FULLY_CONNECTED with 50/75/90% zero weights: the sparse kernel against the dense kernel on
   the same weights, through MicroPython under `qemu -icount shift=0` (one instruction per virtual ns,
   as benchmarks/bench_kernels.py counts): instructions per call, per nonzero MAC and per nominal MAC
   (65,536), argument and stream checks included; and the viper kernels as a loaded model binds them
   (checked once at load). Every output is checked against the host library.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "host_tools"), str(REPO / "tests"), str(REPO / "benchmarks")]

from bench_kernels import BOARD_BUILDS, host_outputs  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.75, 0.9)
FC_SPARSITIES = (0.5, 0.75, 0.9)
UNITS = DEPTH = 256


def blob_sizes() -> list[tuple]:
    from edgeloop_host import blob, sparse
    from edgeloop_host.convert import convert

    tfl = (REPO / "models" / "digits_mlp" / "digits_mlp.tflite").read_bytes()
    rows = []
    for s in SPARSITIES:
        pruned = sparse.prune_tflite(tfl, s)
        sizes = {m: convert(pruned, sparse_mode=m) for m in ("never", "auto", "always")}
        g = blob.decode(sizes["always"])
        layers = [(g.tensors[op.tensor("weights")].nbytes, sparse.size(g.tensors[op.tensor("weights")].data))
                  for op in g.ops]
        rows.append((s, {m: len(b) for m, b in sizes.items()}, layers))
    return rows


def fc_cases() -> dict:
    """{name: (case, nonzero MACs)}: sparse and dense kernels on the same pruned 256x256 weights."""
    import kernel_cases as kc
    from edgeloop_host import sparse

    out = {}
    for s in FC_SPARSITIES:
        rng = np.random.default_rng(20261128)
        c = kc.fully_connected_sparse(rng, 1, DEPTH, UNITS, s)
        a = c.args
        w = sparse.decode(c.blob[a[9]:a[9] + a[14]], UNITS, DEPTH)
        dense_blob = bytearray(c.blob) + bytes((-len(c.blob)) % 4)
        w_off = len(dense_blob)
        dense_blob += w.tobytes()
        dense = kc.Case("fully_connected", a[:9] + [w_off] + a[10:14], bytes(dense_blob), c.arena, c.out)
        nnz = int(np.count_nonzero(w))
        pct = int(round(100 * s))
        out[f"sparse_{pct}"] = (c, nnz)
        out[f"dense_{pct}"] = (dense, nnz)
    return out


def _timed(t, setup: str, name: str, c, runs: int, expect: bytes, what: str) -> int:
    """Instructions per call of `k(blob, arena, a)` after `setup` defines k; the output is checked."""
    setup = "".join("    " + ln + "\n" for ln in setup.splitlines())
    code = (  # inside a function, as benchmarks/bench_kernels.py times the kernels: locals, no dict lookups
        "import time\nfrom array import array\n"
        "def _bk():\n"
        f"    blob = open('bs_{name}.blob', 'rb').read()\n"
        f"    arena = bytearray(open('bs_{name}.arena', 'rb').read())\n"
        f"    a = array('i', {list(c.args)!r})\n" + setup +
        "    k(blob, arena, a)\n    t0 = time.ticks_us()\n"
        f"    for _ in range({runs}):\n        k(blob, arena, a)\n"
        "    return time.ticks_diff(time.ticks_us(), t0), arena\n"
        "dt, arena = _bk()\nimport _edgeloop as E\n"
        f"print('BK', dt, E.crc32(memoryview(arena)[{c.out[0]}:{c.out[0] + c.out[1]}]))\n"
        "del arena\nimport gc\ngc.collect()\n")
    t.reset()
    line = [ln for ln in t.exec(code, timeout=900).splitlines() if ln.startswith("BK")][-1]
    _, dt, crc = line.split()
    if int(crc) != zlib.crc32(expect):
        raise RuntimeError(f"{what}: output differs from the host library")
    return int(dt) * 1000 // runs


def viper_col(board: str) -> str:
    return {"qemu-arm": "M3 viper", "qemu-rv32": "RV32 viper"}[board]


def bench_board(board: str, cases: dict, expect: dict, runs: int) -> dict[str, dict[str, int]]:
    """{case: {build column: instructions per call}}. One case's files on the board at a time (the
    emulated /flash is small)."""
    from edgeloop_host.targets import TargetError, open_target

    res: dict[str, dict[str, int]] = {}
    with open_target(board, icount=True, device_dir=REPO / "device") as t:
        t.install_runtime()
        mods = {}
        for col, arch, _ in BOARD_BUILDS[board]:
            mods[col] = "_edgeloop"
            if arch:
                mods[col] = f"_bs_{arch}"
                t.install_natmod(mods[col], arch=arch)
        for name, (c, _) in cases.items():
            for data, path in ((c.blob, f"bs_{name}.blob"), (bytes(c.arena), f"bs_{name}.arena")):
                try:
                    t.put_bytes(data, path)
                except TargetError:  # a loaded host can starve the emulated UART: once more
                    t.put_bytes(data, path)
            for col, mod in mods.items():
                res.setdefault(name, {})[col] = _timed(
                    t, f"k = getattr(__import__({mod!r}), {c.kernel!r})\n", name, c, runs, expect[name],
                    f"{board} {col} {name}")
            # viper: the kernel as a loaded model binds it (validated once at load, as model.py does)
            opcode = 0x109 if c.kernel == "fully_connected_sparse" else 9
            res[name][viper_col(board)] = _timed(
                t, f"from edgeloop import viperkernels as vk\nk = vk.bind({opcode}, blob, arena, a)\n", name, c,
                runs, expect[name], f"{board} viper {name}")
            t.exec(f"import os\nos.remove('bs_{name}.blob')\nos.remove('bs_{name}.arena')")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="*", default=list(BOARD_BUILDS), choices=list(BOARD_BUILDS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-icount", action="store_true", help="blob sizes only")
    a = ap.parse_args(argv)

    print("digits_mlp (64-32-10) blob bytes, pruned to each sparsity (int8 magnitude pruning)")
    print(f"{'zeros':>6} {'never':>7} {'auto':>7} {'always':>7}  auto/never  layer weights dense -> sparse")
    for s, sizes, layers in blob_sizes():
        lay = ", ".join(f"{d} -> {sp}" for d, sp in layers)
        print(f"{100 * s:5.0f}% {sizes['never']:7d} {sizes['auto']:7d} {sizes['always']:7d}  "
              f"{sizes['auto'] / sizes['never']:9.3f}   {lay}")
    if a.no_icount:
        return 0

    cases = fc_cases()
    expect = host_outputs({k: c for k, (c, _) in cases.items()})
    table: dict[str, dict[str, int]] = {k: {} for k in cases}
    cols = []
    for board in a.boards:
        for name, row in bench_board(board, cases, expect, a.runs).items():
            table[name].update(row)
        cols += [c for c, _, _ in BOARD_BUILDS[board]] + [viper_col(board)]
    print(f"\nFULLY_CONNECTED {DEPTH}x{UNITS}, instructions per call (qemu -icount shift=0, through MicroPython, "
          "outputs checked)")
    print(f"{'zeros':>6} {'nonzero MACs':>13} {'build':>16} {'dense':>9} {'sparse':>9} {'dense/MAC':>10} "
          f"{'sparse/nzMAC':>13} {'sparse/MAC':>11} {'speedup':>8}")
    for s in FC_SPARSITIES:
        pct = int(round(100 * s))
        nnz = cases[f"sparse_{pct}"][1]
        for col in cols:
            d, sp = table[f"dense_{pct}"][col], table[f"sparse_{pct}"][col]
            print(f"{pct:5d}% {nnz:13d} {col:>16} {d:9d} {sp:9d} {d / (DEPTH * UNITS):10.2f} {sp / nnz:13.2f} "
                  f"{sp / (DEPTH * UNITS):11.2f} {d / sp:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
