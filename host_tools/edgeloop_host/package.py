"""The device runtime as MicroPython users install it: precompiled `.mpy` files (mpy-cross, with the
board's -march so viper code becomes native code) plus a `package.json` that `mpremote mip install`
reads from a local directory or a URL."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from .toolchain import repo_root

RUNTIME_DIR = repo_root() / "device" / "edgeloop"
# mpy-cross -march per MicroPython native arch (sys.implementation._mpy >> 10), and "py" for source.
ARCHS = ("py", "x64", "armv6m", "armv7m", "armv7emsp", "xtensawin", "rv32imc")
# sys.implementation._mpy >> 10 -> arch name, as MicroPython numbers them (py/persistentcode.h)
MPY_ARCH_NAMES = {0: None, 1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
                  7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}
VERSION_FILE = RUNTIME_DIR / "__init__.py"


def runtime_version() -> str:
    for line in VERSION_FILE.read_text().splitlines():
        if line.startswith("VERSION"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("device/edgeloop/__init__.py has no VERSION")


def mpy_cross() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    return str(exe) if exe.exists() else "mpy-cross"


def build(arch: str, out_dir: Path) -> Path:
    """Write out_dir/<arch>/edgeloop/*.(m)py and out_dir/<arch>/package.json; returns the package.json."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
    dest = Path(out_dir) / arch
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "edgeloop").mkdir(parents=True)
    urls = []
    for src in sorted(RUNTIME_DIR.glob("*.py")):
        if arch == "py":
            name = f"edgeloop/{src.name}"
            shutil.copy(src, dest / name)
        else:
            name = f"edgeloop/{src.stem}.mpy"
            r = subprocess.run([mpy_cross(), f"-march={arch}", "-o", str(dest / name), str(src)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"mpy-cross failed on {src.name}: {r.stderr.strip()}")
        urls.append([name, name])
    pkg = {"urls": urls, "version": runtime_version()}
    (dest / "package.json").write_text(json.dumps(pkg, indent=1) + "\n")
    return dest / "package.json"


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="edgeloop package", description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", choices=ARCHS, help="default: all")
    ap.add_argument("-o", "--output", default="dist/mip")
    args = ap.parse_args(argv)
    for arch in args.arch or ARCHS:
        print(build(arch, Path(args.output)))
    return 0
