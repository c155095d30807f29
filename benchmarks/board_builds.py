"""The kernel builds the instruction-count benchmarks measure on the emulated boards, and the board
plumbing they share (benchmarks/bench_kernels.py, benchmarks/bench_models.py).

Every board runs under `qemu -icount shift=0`: one instruction per virtual nanosecond, so a
time.ticks_us() difference on the board counts kilo-instructions, identically on every run."""
from __future__ import annotations

GOALS = {"armv7m": 2.5, "armv6m": 4.0, "rv32imc": 3.5}  # instructions per MAC, issue 3
# board: [(column name, natmod arch or None for the firmware's usermod, ISA of the goal)]. armv6m on the
# M3 board is the Cortex-M0+ instruction stream (the M3 runs ARMv6-M code unchanged).
BOARD_BUILDS = {
    "qemu-arm": [("M3 usermod", None, "armv7m"), ("armv7m natmod", "armv7m", "armv7m"),
                 ("armv6m natmod", "armv6m", "armv6m")],
    "qemu-rv32": [("RV32 usermod", None, "rv32imc"), ("rv32imc natmod", "rv32imc", "rv32imc")],
}
# qemu-m0: a real Cortex-M0 core (nRF51) with the usermod compiled for it (160 KB of heap); measured
# by benchmarks/bench_models.py only.
M0_BUILDS = [("M0 usermod", None, "armv6m"), ("M0 armv6m natmod", "armv6m", "armv6m")]


def open_board(board: str, runtime: bool = False):
    """The emulated board under icount (with the edgeloop runtime installed if `runtime`)."""
    from edgeloop_host.targets import open_target

    t = open_target(board, icount=True)
    if runtime:
        try:
            t.install_runtime()
        except Exception:
            t.close()
            raise
    return t


def upload(t, files) -> None:
    """Put (data, remote path) files one at a time: each upload gets a timeout for its size."""
    from edgeloop_host.targets import TargetError

    for data, path in files:
        try:
            t.put_bytes(data, path)
        except TargetError:  # a loaded host can starve the emulated UART: once more
            t.put_bytes(data, path)


def kernel_module(t, arch: str | None) -> str:
    """The module name to import for a build: `_edgeloop` (the usermod), or the natmod for `arch`
    installed as `_bk_<arch>`."""
    if not arch:
        return "_edgeloop"
    mod = f"_bk_{arch}"
    t.install_natmod(mod, arch=arch)
    return mod
