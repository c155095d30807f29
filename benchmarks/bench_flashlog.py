"""Flash log wear (issue 7) on the MicroPython unix port with our C module: a real littlefs (vfs.VfsLfs2)
over a counting block device with 4 KB erase blocks (SPI NOR on ESP32 / RP2040), 128 blocks = a 512 KB
partition, 8 KB segments, the log filled to its bound first (so segment deletions are counted). Prints
bytes programmed, program calls and block erases per record for each sync batching, and the years a
512 KB partition of 100k-cycle flash lasts at one record per second (littlefs spreads erases over all
blocks: 128 * 100k erases in total).

    .venv/bin/python benchmarks/bench_flashlog.py
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host_tools"))

from edgeloop_host.targets import open_target  # noqa: E402


def main() -> None:
    t = open_target("unix", device_dir=ROOT / "device")
    try:
        t.install_runtime()
        t.put(ROOT / "tests/device/faultbdev.py", "faultbdev.py")
        t.put(ROOT / "tests/device/flashlog_sweep.py", "flashlog_sweep.py")
        print("| payload B | frame B | sync every | B programmed / record | programs / record "
              "| 4 KB erases / record | years (512 KB, 100k cycles, 1 rec/s) |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for payload in (64, 200):
            for se in (1, 4, 16, 32, 64, 128):
                out = t.exec("import flashlog_sweep as S\n"
                             f"print('EL-OUT', repr(S.wear(payload_len={payload}, nrec=1024, sync_every={se},"
                             " max_segments=48)))", timeout=600)
                r = ast.literal_eval(out.split("EL-OUT", 1)[1].strip())
                years = 128 * 100_000 / (r["erases_per_rec"] * 365 * 86400)
                print(f"| {payload} | {payload + 12} | {se} | {r['prog_bytes_per_rec']:.0f} | "
                      f"{r['progs_per_rec']:.2f} | {r['erases_per_rec']:.4f} | {years:.1f} |", flush=True)
    finally:
        t.close()


if __name__ == "__main__":
    main()
