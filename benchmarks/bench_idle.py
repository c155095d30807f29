"""CPU use of an idle emulated board: qemu's user+system CPU time over a window while the board sits
in the raw REPL waiting for stdin, as % of one host core, per board (and under -icount shift=0).
Before and after the window the board must answer an exec (a sleeping board still wakes on the UART).

    .venv/bin/python benchmarks/bench_idle.py [--boards qemu-arm qemu-rv32 qemu-m0] [--seconds 10] [--icount]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host_tools"))

from edgeloop_host.targets import BOARDS, QemuMachine  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children) in seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / _TICK   # utime stime cutime cstime


def ask(machine: QemuMachine, code: str, timeout: float = 30.0) -> tuple[str, float]:
    """Run `code` in the board's raw REPL; returns its output and the round-trip seconds."""
    from mpremote.transport_serial import SerialTransport

    t = SerialTransport(machine.pty, baudrate=115200)
    try:
        t.enter_raw_repl(soft_reset=False)
        t0 = time.monotonic()
        out = t.exec_raw(code, timeout=timeout)[0].decode()
        secs = time.monotonic() - t0
        t.exit_raw_repl()
    finally:
        t.close()
    return out, secs


def idle_cpu(board: str, seconds: float, icount: bool = False) -> dict:
    with QemuMachine(board, icount=icount) as m:
        out, _ = ask(m, "print(6 * 7)")
        if out.strip() != "42":
            raise RuntimeError(f"{board}: unexpected answer {out!r}")
        time.sleep(1.0)                      # let the REPL reach its stdin wait
        c0, t0 = cpu_seconds(m.proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(m.proc.pid), time.monotonic()
        out, rtt = ask(m, "import time\nprint(time.ticks_ms() >= 0)")
        if out.strip() != "True":
            raise RuntimeError(f"{board}: no answer after idling: {out!r}")
        return {"board": board, "icount": icount, "cpu_pct": 100.0 * (c1 - c0) / (t1 - t0),
                "exec_ms": 1000.0 * rtt}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=list(BOARDS), choices=list(BOARDS))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--icount", action="store_true", help="also measure under -icount shift=0")
    args = ap.parse_args(argv)
    if args.seconds <= 0:
        ap.error("--seconds must be positive")
    print(f"| board | qemu flags | idle CPU % of a core ({args.seconds:g} s) | exec after idling, ms |")
    print("|---|---|---:|---:|")
    for board in args.boards:
        for icount in ((False, True) if args.icount else (False,)):
            r = idle_cpu(board, args.seconds, icount)
            flags = "-icount shift=0" if icount else "(none)"
            print(f"| {board} | {flags} | {r['cpu_pct']:.1f} | {r['exec_ms']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
