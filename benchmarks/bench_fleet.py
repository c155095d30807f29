"""Fleet rollout wall time (issue 7): `edgeloop_host.fleet.rollout` against a Mosquitto broker on loopback
and N MicroPython unix-port processes running the fleet agent (tests/fleetsim.py), canary 10%.
Prints the BENCHMARKS.md "Fleet rollout" table.

    .venv/bin/python benchmarks/bench_fleet.py [--devices 5,10,20] [--runs 3]

Per configuration one fleet is started (factory model v1) and rolled forward `--runs` times (v2, v3, ...);
the median run is reported. `total` is what rollout() takes from call to return, including discovery
(collecting the retained health reports: ~0.5 s of quiet) and the clean-up of the retained blob.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "host_tools"))

import fleetsim  # noqa: E402
import otagen  # noqa: E402
from edgeloop_host import fleet  # noqa: E402
from edgeloop_host.broker import Mosquitto  # noqa: E402
from edgeloop_host.ota import manifest as M  # noqa: E402
from edgeloop_host.toolchain import firmware_path  # noqa: E402


def bench(n: int, widths, runs: int, nodelay: bool, keys, fw: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_fleet_"))
    b = Mosquitto(tmp / "broker", nodelay=nodelay).start()
    lib = fleetsim.runtime_lib(tmp)
    base = otagen.make_blob(widths, 1, 1)
    devs = [fleetsim.Device(fw, lib, tmp, f"dev{i:02d}", b.port)
            .provision(keys.pub, base, M.sign_blob(base, keys.key, 1)).start() for i in range(n)]
    try:
        if not fleetsim.wait_for(lambda: len(fleet.status(b.url)) == n, 60, 0.3):
            raise SystemExit(f"{n} devices did not all report")
        out = []
        for v in range(2, runs + 2):
            blob = otagen.make_blob(widths, v, v)
            r = fleet.rollout(b.url, blob, M.sign_blob(blob, keys.key, v), canary=0.1, timeout=120,
                              log=lambda s: None)
            if not r.ok:
                raise SystemExit(f"rollout failed: {r.message}")
            out.append((r.seconds, r.phases["canary"], r.phases.get("rest", 0.0), len(blob), len(r.canaries)))
        return dict(zip(("total", "canary", "rest", "bytes", "canaries"),
                        sorted(out)[len(out) // 2]))
    finally:
        for d in devs:
            d.kill()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", default="5,10,20")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    keys = otagen.fleet()
    fw = firmware_path("unix")
    print("| devices | model | broker set_tcp_nodelay | canaries | canary phase s | rest phase s | total s |")
    print("|---:|---|---|---:|---:|---:|---:|")
    configs = [(n, name, w, True) for n in map(int, a.devices.split(","))
               for name, w in (("~5 KB", otagen.SMALL), ("~100 KB", otagen.LARGE))]
    configs.append((configs[0][0], "~100 KB", otagen.LARGE, False))
    for n, name, w, nodelay in configs:
        r = bench(n, w, a.runs, nodelay, keys, fw)
        print(f"| {n} | {name} ({r['bytes']:,} B) | {'yes' if nodelay else 'no (default)'} | {r['canaries']} | "
              f"{r['canary']:.2f} | {r['rest']:.2f} | {r['total']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
