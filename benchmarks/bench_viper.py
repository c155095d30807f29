"""The viper backend alone, every zoo model: microseconds per inference on the unix port (best of 3
runs of 200) and thousands of instructions on the emulated Cortex-M3 (qemu -icount shift=0,
deterministic), with the MAC ops that allocate when run with the heap locked (should be none).

    .venv/bin/python benchmarks/bench_viper.py [--device-dir DIR] [--no-qemu]

--device-dir runs another copy of the runtime (DIR/edgeloop/), e.g. a `git worktree` of an older
commit's device/, for a before/after comparison on the same firmware.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "host_tools"), str(REPO / "benchmarks"), str(REPO / "tests")]

from bench_backends import measure  # noqa: E402
from test_viper import HEAP_CHECK  # noqa: E402


def run(target, models, runs: int, reps: int, device_dir: Path | None) -> None:
    if device_dir is not None:
        target.device_dir = device_dir
    target.install_runtime()
    for m in models:
        t = measure(target, m, ("viper",), {"viper": runs}, reps)["viper"]
        target.put(m, f"heap_{m.name}")
        out = target.exec(HEAP_CHECK % ([f"heap_{m.name}"],), timeout=600)
        bad = out.split("HEAP", 1)[1].split(" ", 2)[2].strip()
        print(f"{m.stem:<22}{t:>12.1f}   {bad}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device-dir", type=Path)
    ap.add_argument("--no-qemu", action="store_true")
    args = ap.parse_args(argv)
    from edgeloop_host.targets import open_target

    models = sorted(REPO.glob("models/*/*.elm"))
    print("unix port (x86-64), viper, microseconds per inference, best of 3; ops allocating under heap_lock")
    with open_target("unix") as t:
        run(t, models, 200, 3, args.device_dir)
    if not args.no_qemu:
        print("emulated Cortex-M3 (qemu mps2-an385, -icount shift=0), viper, thousands of instructions")
        with open_target("qemu-arm", icount=True) as t:
            run(t, models, 3, 1, args.device_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
