"""Build and run the libFuzzer harness over every kernel entry point.

    .venv/bin/python tests/fuzz/fuzz.py --runs 1000000 --jobs 2     # the recorded campaign
    .venv/bin/python tests/fuzz/fuzz.py --seconds 20                # what the test suite runs
    .venv/bin/python tests/fuzz/fuzz.py --write-seeds               # regenerate tests/fuzz/corpus

clang -fsanitize=fuzzer,address,undefined over device/cmodule/edgeloop/*.c (minus the MicroPython
binding) and tests/fuzz/el_fuzz.c. The committed seed corpus (valid cases of every kernel, built by
tests/kernel_cases.py) is copied into a scratch corpus so the run never writes into the repository.
Prints one summary line: executions, seconds, findings.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SRC = REPO / "device" / "cmodule" / "edgeloop"
SEEDS = HERE / "corpus"
FLAGS = ["-g", "-O1", "-std=c99", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
         "-fno-omit-frame-pointer"]
KERNEL_ORDER = ("fully_connected", "conv_2d", "depthwise_conv_2d", "average_pool_2d", "max_pool_2d", "add",
                "softmax", "logistic", "mean", "fully_connected_sparse")  # el_fuzz.c KERNELS[]


def cache_dir() -> Path:
    root = os.environ.get("EDGELOOP_CACHE") or str(Path.home() / ".cache" / "edgeloop")
    return Path(root) / "fuzz"


def build(cc: str = "clang") -> Path:
    if not shutil.which(cc):
        raise RuntimeError(f"{cc} not found")
    srcs = sorted(p for p in SRC.glob("*.c") if p.name != "mod_edgeloop.c") + [HERE / "el_fuzz.c"]
    h = hashlib.sha256(" ".join(FLAGS).encode())
    h.update(subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.encode())
    for p in srcs + sorted(SRC.glob("*.h")):
        h.update(p.name.encode() + p.read_bytes())
    out = cache_dir() / f"el_fuzz-{h.hexdigest()[:16]}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    cmd = [cc, *FLAGS, f"-I{SRC}", "-o", str(tmp), *map(str, srcs)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"fuzzer build failed:\n{' '.join(cmd)}\n{r.stderr[-4000:]}")
    os.replace(tmp, out)
    return out


def encode(kernel: str, args, blob: bytes, arena: bytes, align: int = 0) -> bytes:
    head = bytes([KERNEL_ORDER.index(kernel), len(args) % 64]) + struct.pack("<HH", len(blob), len(arena))
    return head + bytes([align, 0]) + struct.pack(f"<{len(args)}i", *args) + bytes(blob) + bytes(arena)


def write_seeds() -> int:
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "host_tools")]
    import numpy as np

    import kernel_cases as kc

    shutil.rmtree(SEEDS, ignore_errors=True)
    SEEDS.mkdir()
    rng = np.random.default_rng(2026)
    n = 0
    for kernel in KERNEL_ORDER:
        for i in range(3):
            c = kc.random_case(rng, kernel, realistic=i != 2, small=True)
            data = encode(c.kernel, c.args, c.blob, c.arena)
            (SEEDS / f"{kernel}-{i}.bin").write_bytes(data)
            n += 1
    return n


def run(runs: int | None, seconds: int | None, jobs: int, max_len: int = 4096) -> dict:
    exe = build()
    work = Path(tempfile.mkdtemp(prefix="el-fuzz-"))
    try:
        corpus = work / "corpus"
        shutil.copytree(SEEDS, corpus)
        artifacts = work / "artifacts"
        artifacts.mkdir()
        per_job = None if runs is None else -(-runs // jobs)
        opts = [f"-max_len={max_len}", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
                f"-artifact_prefix={artifacts}/", "-use_value_profile=1"]
        if seconds is not None:
            opts.append(f"-max_total_time={seconds}")
        if per_job is not None:
            opts.append(f"-runs={per_job}")
        t0 = time.monotonic()
        procs = []
        for j in range(jobs):
            log = open(work / f"job{j}.log", "w")
            procs.append((subprocess.Popen([str(exe), *opts, f"-seed={j + 1}", str(corpus)], stdout=log,
                                           stderr=subprocess.STDOUT), log))
        for p, log in procs:
            p.wait()
            log.close()
        secs = time.monotonic() - t0
        execs = 0
        cov = ft = 0
        crashed = []
        for j, (p, _) in enumerate(procs):
            text = (work / f"job{j}.log").read_text(errors="replace")
            m = re.findall(r"stat::number_of_executed_units:\s+(\d+)", text)
            execs += int(m[-1]) if m else 0
            c = re.findall(r"cov: (\d+) ft: (\d+)", text)
            if c:
                cov, ft = max(cov, int(c[-1][0])), max(ft, int(c[-1][1]))
            if p.returncode != 0:
                crashed.append((j, text[-3000:]))
        findings = sorted(p.name for p in artifacts.iterdir())
        if findings:  # keep them: the scratch directory goes away
            keep = cache_dir() / "findings"
            keep.mkdir(parents=True, exist_ok=True)
            for p in artifacts.iterdir():
                shutil.copy2(p, keep / p.name)
            findings = [str(keep / f) for f in findings]
        return {"executions": execs, "seconds": round(secs, 1), "jobs": jobs, "findings": findings,
                "coverage_edges": cov, "features": ft,
                "crash_logs": crashed, "binary": str(exe), "corpus_size": len(list(corpus.iterdir()))}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--write-seeds", action="store_true")
    a = ap.parse_args(argv)
    if a.write_seeds:
        print(f"wrote {write_seeds()} seeds to {SEEDS}")
        return 0
    if a.runs is None and a.seconds is None:
        a.seconds = 20
    r = run(a.runs, a.seconds, a.jobs)
    for j, text in r["crash_logs"]:
        print(f"--- job {j} ---\n{text}", file=sys.stderr)
    print(f"fuzz: {r['executions']} executions in {r['seconds']} s on {r['jobs']} job(s), coverage "
          f"{r['coverage_edges']} edges / {r['features']} features, corpus {r['corpus_size']} inputs, "
          f"findings: {len(r['findings'])} {r['findings']}")
    return 1 if r["findings"] or r["crash_logs"] else 0


if __name__ == "__main__":
    sys.exit(main())
