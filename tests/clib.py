"""The edgeloop C kernels built as a host shared library (build (c) of "one source, three builds").

    lib = clib.load()              # cc -O2 -shared -fPIC device/cmodule/edgeloop/*.c, cached
    lib = clib.load("ubsan")       # the same with UndefinedBehaviorSanitizer (aborts on any UB)
    status = lib.call("conv_2d", args, blob, arena)   # arena: bytearray, written in place

Every .c file of device/cmodule/edgeloop except the MicroPython binding (mod_edgeloop.c) goes in, so
the library is exactly the portable kernel source the firmware and the natmods compile. Builds are
cached in $EDGELOOP_CACHE/clib/<variant>-<sha256 of sources, flags and compiler>.so.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC_DIR = REPO / "device" / "cmodule" / "edgeloop"
EXCLUDE = {"mod_edgeloop.c"}

WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wvla", "-DEL_HOST_TESTS"]
VARIANTS = {
    # name: (compiler, flags, extra environment the loading process needs)
    "O2": ("cc", ["-O2"]),
    # the portable C micro-kernels (what a port without our assembly, e.g. xtensawin, runs) on x86-64
    "generic": ("cc", ["-O2", "-DEL_FORCE_GENERIC"]),
    "ubsan": ("cc", ["-O1", "-g", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                     "-fno-omit-frame-pointer"]),
    # Needs libasan preloaded into the process (see asan_env()); used by a subprocess test.
    "asan": ("cc", ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-fno-omit-frame-pointer"]),
}

# Kernel names (C function el_<name>) in the order of el_kernels.h.
KERNELS = ("fully_connected", "conv_2d", "depthwise_conv_2d", "average_pool_2d", "max_pool_2d", "add",
           "softmax", "logistic", "mean", "fully_connected_sparse")

STATUS = ("ok", "wrong number of argument words", "dimension out of range", "activation outside the arena",
          "constant data outside the blob", "int32 constant data not 4-byte aligned",
          "input and output activations overlap", "zero point outside -128..127", "activation clamp invalid",
          "invalid quantization multiplier, shift or channel count",
          "invalid stride, dilation, padding or filter size", "op parameter out of range",
          "values outside the range TFLM computes", "sparse weight counts or column indices out of range")


def sources() -> list[Path]:
    return sorted(p for p in SRC_DIR.glob("*.c") if p.name not in EXCLUDE)


def cache_dir() -> Path:
    root = os.environ.get("EDGELOOP_CACHE") or str(Path.home() / ".cache" / "edgeloop")
    return Path(root) / "clib"


def _compiler_id(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else cc


def build(variant: str = "O2") -> Path:
    """Compile (or reuse) the shared library of `variant`; returns its path."""
    cc, flags = VARIANTS[variant]
    if not shutil.which(cc):
        raise RuntimeError(f"no C compiler `{cc}`")
    srcs = sources()
    h = hashlib.sha256()
    h.update(" ".join([_compiler_id(cc), *WARN, *flags]).encode())
    for p in srcs + sorted(SRC_DIR.glob("*.h")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    out = cache_dir() / f"{variant}-{h.hexdigest()[:16]}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        cmd = [cc, *WARN, *flags, "-shared", "-fPIC", f"-I{SRC_DIR}", "-o", tmp, *map(str, srcs)]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"host library build failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def asan_env() -> dict[str, str]:
    """Environment for a process that loads the "asan" variant (libasan must come first)."""
    libasan = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True,
                             check=True).stdout.strip()
    return {"LD_PRELOAD": libasan, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"}


class KernelLib:
    def __init__(self, path: Path):
        self.path = path
        self.dll = ctypes.CDLL(str(path))
        sig = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
               ctypes.c_size_t]
        for name in KERNELS:
            f = getattr(self.dll, "el_" + name)
            f.argtypes = sig
            f.restype = ctypes.c_int
        for name, args in (("el_srdhm", [ctypes.c_int32, ctypes.c_int32]),
                           ("el_rdbypot", [ctypes.c_int32, ctypes.c_int]),
                           ("el_mbqm", [ctypes.c_int32, ctypes.c_int32, ctypes.c_int]),
                           ("el_exp_neg", [ctypes.c_int32, ctypes.c_int]),
                           ("el_logistic_fp", [ctypes.c_int32, ctypes.c_int])):
            f = getattr(self.dll, name)
            f.argtypes = args
            f.restype = ctypes.c_int32

    def call(self, kernel: str, args, blob: bytes, arena: bytearray, blob_align: int = 0) -> int:
        """Run el_<kernel>; returns the status code. `arena` is updated in place. The blob is copied
        into a 16-aligned buffer (plus `blob_align` bytes of misalignment), like a board's heap."""
        words = (ctypes.c_int32 * max(len(args), 1))(*[int(v) for v in args])
        bbuf = ctypes.create_string_buffer(len(blob) + 16 + blob_align)
        base = (-ctypes.addressof(bbuf)) % 16 + blob_align
        ctypes.memmove(ctypes.addressof(bbuf) + base, bytes(blob), len(blob))
        abuf = (ctypes.c_char * max(len(arena), 1)).from_buffer(arena) if len(arena) else None
        f = getattr(self.dll, "el_" + kernel)
        return f(words, len(args), ctypes.addressof(bbuf) + base, len(blob),
                 ctypes.addressof(abuf) if abuf is not None else None, len(arena))


_loaded: dict[str, KernelLib] = {}


def load(variant: str = "O2") -> KernelLib:
    if variant not in _loaded:
        _loaded[variant] = KernelLib(build(variant))
    return _loaded[variant]
