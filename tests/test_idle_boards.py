"""An emulated board waiting for input sleeps (WFI, woken by the UART) instead of polling: qemu uses next
to no host CPU while the board idles in the raw REPL, also under -icount, and the board still answers
right after (benchmarks/bench_idle.py; the polling loop cost 19-29% of a core)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_idle.py"


def _bench():
    spec = importlib.util.spec_from_file_location("el_bench_idle", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.qemu
@pytest.mark.parametrize("board,icount", [("qemu-arm", False), ("qemu-arm", True), ("qemu-rv32", False),
                                          ("qemu-m0", False)])
def test_idle_board_sleeps_and_wakes_on_the_uart(board, icount):
    r = _bench().idle_cpu(board, seconds=2.0, icount=icount)   # raises if the board does not answer
    assert r["cpu_pct"] < 5.0, r
