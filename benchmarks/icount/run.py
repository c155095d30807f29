"""Instructions per MAC of the edgeloop kernels on bare-metal qemu (-icount shift=0), per ISA.

    .venv/bin/python benchmarks/icount/run.py [--arch armv7m armv6m rv32imc] [--case fc ...]

The kernel sources are compiled with each natmod's compiler and CPU flags (-O2), linked with a tiny
startup (no MicroPython), and run on qemu mps2-an385 (armv7m, and armv6m code, which the M3 runs
unchanged) or qemu virt (rv32imc). Every output is checked against the host library (tests/clib.py).
This is the fast loop for tuning the kernels; benchmarks/bench_kernels.py measures the same layers
through MicroPython (usermod and natmods) for the record.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SRC = Path(os.environ.get("EL_ICOUNT_SRC", REPO / "device" / "cmodule" / "edgeloop"))  # experiments: a copy
KERNEL_SOURCES = ["el_kernels.c", "el_gemm.c", "el_fc.c", "el_fc_sparse.c", "el_conv.c", "el_depthwise.c", "el_pool.c", "el_mean.c", "el_add.c",
                  "el_softmax.c", "el_logistic.c"]
COMMON = ["-Os", "-fno-tree-loop-distribute-patterns", "-ffreestanding", "-nostdlib", "-std=c99", "-Wall",
          "-Werror", "-g"]
ARCHS = {
    "armv7m": ("arm-none-eabi-gcc", ["-mthumb", "-mcpu=cortex-m3"], "arm"),
    "armv6m": ("arm-none-eabi-gcc", ["-mthumb", "-mcpu=cortex-m0"], "arm"),
    "rv32imc": ("riscv64-unknown-elf-gcc", ["-march=rv32imc", "-mabi=ilp32", "-mno-relax"], "rv32"),
}

sys.path[:0] = [str(REPO / "tests"), str(REPO / "host_tools"), str(REPO / "benchmarks")]


def layer_cases():
    from bench_layers import LAYERS, make_case

    return [(name, make_case(name), macs) for name, macs in LAYERS.items()]


def _c_bytes(data: bytes) -> str:
    return ",".join(str(b) for b in data)


def write_cases(cases, path: Path) -> None:
    lines = ["struct el_case { const char *name; el_kernel_fn fn; const int32_t *args; size_t nargs;",
             "  const uint8_t *blob; size_t blob_len; int8_t *arena; size_t arena_len; size_t out_off, out_len; };"]
    for i, (name, c, _) in enumerate(cases):
        lines.append(f"static const int32_t a{i}[] = {{{','.join(str(v) for v in c.args)}}};")
        lines.append(f"static const uint8_t b{i}[{max(len(c.blob), 1)}] __attribute__((aligned(4))) = {{{_c_bytes(c.blob) or '0'}}};")
        lines.append(f"static int8_t r{i}[] __attribute__((aligned(4))) = {{{','.join(str((v ^ 0x80) - 0x80) for v in c.arena)}}};")
    lines.append("static const struct el_case el_cases[] = {")
    for i, (name, c, _) in enumerate(cases):
        lines.append(f'  {{"{name}", el_{c.kernel}, a{i}, {len(c.args)}, b{i}, {len(c.blob)}, r{i}, sizeof r{i}, '
                     f"{c.out[0]}, {c.out[1]}}},")
    lines.append("};")
    path.write_text("\n".join(lines) + "\n")


def build(arch: str, work: Path) -> Path:
    cc, flags, kind = ARCHS[arch]
    srcs = [str(SRC / f) for f in KERNEL_SOURCES] + [str(HERE / "harness.c")]
    if kind == "arm":
        srcs += [str(HERE / "arm_start.c")]
        ld = HERE / "arm.ld"
    else:
        srcs += [str(HERE / "rv32_start.S"), str(HERE / "rv32_io.c")]
        ld = HERE / "rv32.ld"
    out = work / f"icount-{arch}.elf"
    extra = os.environ.get("EL_ICOUNT_CFLAGS", "").split()  # experiments, e.g. -DEL_PROFILE_...
    cmd = [cc, *flags, *COMMON, *extra, f"-I{SRC}", f"-I{work}", "-T", str(ld), "-o", str(out), *srcs, "-lgcc"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"build failed for {arch}:\n{r.stderr[-3000:]}")
    return out


def run_elf(arch: str, elf: Path, timeout: float = 600) -> dict[str, tuple[int, int, int]]:
    if ARCHS[arch][2] == "arm":
        cmd = ["qemu-system-arm", "-machine", "mps2-an385", "-nographic", "-monitor", "null", "-semihosting",
               "-icount", "shift=0", "-kernel", str(elf)]
    else:
        cmd = ["qemu-system-riscv32", "-machine", "virt", "-bios", "none", "-nographic", "-monitor", "null",
               "-icount", "shift=0", "-kernel", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr  # semihosting output goes to stderr
    res = {}
    for line in out.splitlines():
        if line.startswith("EL "):
            _, name, n, crc, st = line.split()
            res[name] = (int(n), int(crc), int(st))
    if "EL-DONE" not in out:
        raise RuntimeError(f"{arch}: the harness did not finish: {out[-2000:]}")
    return res


def measure(archs, only=None) -> dict[str, dict[str, float]]:
    import clib

    cases = [c for c in layer_cases() if not only or c[0] in only]
    lib = clib.load()
    expect = {}
    for name, c, _ in cases:
        arena = bytearray(c.arena)
        assert lib.call(c.kernel, c.args, c.blob, arena) == 0
        expect[name] = zlib.crc32(c.output(arena))
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_cases(cases, work / "cases.h")
        for arch in archs:
            res = run_elf(arch, build(arch, work))
            for name, c, macs in cases:
                n, crc, st = res[name]
                if (st != 0 or crc != expect[name]) and not os.environ.get("EL_ICOUNT_NOCHECK"):
                    raise RuntimeError(f"{arch} {name}: status {st}, output crc {crc} != host {expect[name]}")
                table.setdefault(name, {})[arch] = n / macs
    return table


def check(archs, n: int, seed: int = 1) -> int:
    """Run n random small cases of every kernel on each ISA; every output must match the host library."""
    import numpy as np

    import clib
    import kernel_cases as kc

    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        for kernel in kc.KERNELS:
            c = kc.random_case(rng, kernel, realistic=bool(i % 3), small=i % 2 == 0)
            cases.append((f"{kernel}#{i}", c, 1))
    lib = clib.load()
    expect = {}
    for name, c, _ in cases:
        arena = bytearray(c.arena)
        st = lib.call(c.kernel, c.args, c.blob, arena)
        expect[name] = (zlib.crc32(c.output(arena)), st)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_cases(cases, work / "cases.h")
        for arch in archs:
            res = run_elf(arch, build(arch, work))
            for name, c, _ in cases:
                _, crc, st = res[name]
                if (crc, st) != expect[name]:
                    bad += 1
                    print(f"MISMATCH {arch} {name}: crc/status {crc}/{st} != host {expect[name]} {c.info}")
            print(f"{arch}: {len(cases)} random cases checked")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="*", default=list(ARCHS))
    ap.add_argument("--case", nargs="*")
    ap.add_argument("--check", type=int, metavar="N", help="check N random cases per kernel instead")
    a = ap.parse_args(argv)
    if a.check:
        return 1 if check(a.arch, a.check) else 0
    table = measure(a.arch, a.case)
    print(f"{'layer':28s}" + "".join(f"{x:>10s}" for x in a.arch) + "   (instructions per MAC, bit-exact)")
    for name, row in table.items():
        print(f"{name:28s}" + "".join(f"{row[x]:10.3f}" for x in a.arch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
