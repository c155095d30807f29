"""`edgeloop deploy`: take a board running MicroPython to running the edgeloop runtime with a model.

Detects the firmware (MicroPython version, native arch from `sys.implementation._mpy`, whether the
`_edgeloop` C module is built in), then copies what is missing or different:

    lib/edgeloop/*.mpy   the runtime precompiled for the board's arch (edgeloop_host.package)
    lib/_edgeloop.mpy    the kernel natmod for that arch, only if the firmware has no `_edgeloop`
    model.elm            the model (checked on the host first)      paths: boards.DEFAULT_PATHS,
    model.mf             its signed manifest (`edgeloop sign`)     or the board's board.json
    ota/trust.pub        the OTA public key (raw 32 bytes)

Files whose SHA-256 on the board (hashlib, one round trip for all of them) equals the local one are
not sent, so a second deploy copies nothing. Stale runtime files (a `.py` left from an older install
would shadow the `.mpy`) are removed. Paths are relative to the board's working directory (`/` on
ESP32/RP2040, `/flash` on the emulated boards), where `lib` is on sys.path.
"""
from __future__ import annotations

import ast
import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .targets import TargetError

MIN_MICROPYTHON = (1, 23, 0)     # mpy v6.3 (what mpy-cross 1.23..1.29 emit) and the `vfs` module
MPY_VERSION, MPY_SUB_VERSION = 6, 3

DEFAULT_PATHS = {
    "lib": "lib",
    "runtime": "lib/edgeloop",
    "natmod": "lib/_edgeloop.mpy",
    "model": "model.elm",
    "manifest": "model.mf",
    "pubkey": "ota/trust.pub",
}


class DeployError(RuntimeError):
    """Deploying cannot go on; the message says why and what to do."""


@dataclass
class FileAction:
    remote: str
    size: int
    action: str          # "copied" | "unchanged" | "removed"
    kind: str            # runtime | natmod | model | manifest | pubkey | stale


@dataclass
class DeployReport:
    board: dict
    arch: str
    runtime_flavour: str            # the package arch used ("py" = source)
    natmod: str | None              # "built-in", a path, or None (pure Python)
    files: list[FileAction] = field(default_factory=list)
    bytes_sent: int = 0
    seconds: float = 0.0
    fs_free_after: int | None = None
    backend: str | None = None
    model_ok: bool | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def copied(self) -> list[FileAction]:
        return [f for f in self.files if f.action == "copied"]

    def summary(self) -> str:
        b = self.board
        lines = [f"board       MicroPython {'.'.join(map(str, b['version']))} on {b['machine']} "
                 f"(arch {self.arch or 'none'}, mpy {b['mpy_version']}.{b['mpy_sub']}), cwd {b['cwd']}",
                 f"runtime     {self.runtime_flavour} build; kernels: "
                 + ("C module built into the firmware" if self.natmod == "built-in"
                    else f"natmod {self.natmod}" if self.natmod else "pure Python (no natmod for this arch)")]
        for f in self.files:
            lines.append(f"  {f.action:9s} {f.remote} ({f.size} B)")
        lines.append(f"sent        {len(self.copied)} file(s), {self.bytes_sent} B in {self.seconds:.1f} s; "
                     f"{sum(1 for f in self.files if f.action == 'unchanged')} unchanged"
                     + (f"; {self.fs_free_after} B free on the filesystem" if self.fs_free_after is not None else ""))
        if self.model_ok is not None:
            lines.append(f"model       loads on the board: {'yes' if self.model_ok else 'NO'}"
                         + (f", backend {self.backend}" if self.backend else ""))
        for w in self.warnings:
            lines.append(f"warning     {w}")
        return "\n".join(lines)


PROBE = """
import sys, os
_i = sys.implementation
try:
    import _edgeloop
    _c = getattr(_edgeloop, 'BUILD', 'usermod')
except ImportError:
    _c = None
_w = os.getcwd()
try:
    _s = os.statvfs(_w)
    _f = (_s[0], _s[2], _s[3])
except Exception:
    _f = None
def _ls(d):
    try:
        return [(e[0], e[1]) for e in os.ilistdir(d)]
    except OSError:
        return None
try:
    import hashlib
    _h = hasattr(hashlib, 'sha256')
except ImportError:
    _h = False
try:
    import edgeloop as _e
    _e = (getattr(_e, '__file__', ''), getattr(_e, 'VERSION', None))
except Exception:
    _e = None
print(repr({'frozen_runtime': _e if _e and _e[0].startswith('.frozen') else None, 'name': _i.name, 'version': tuple(_i.version[:3]), 'mpy': getattr(_i, '_mpy', 0),
            'machine': getattr(_i, '_machine', sys.platform), 'platform': sys.platform, 'cmodule': _c,
            'cwd': _w, 'fs': _f, 'path': list(sys.path), 'runtime_dir': _ls(%r), 'hashlib': _h}))
del _i, _c, _w, _f, _ls, _h, _e
"""

HASHES = """
import os, hashlib, binascii
def _el_h(p):
    try:
        n = os.stat(p)[6]
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    with open(p, 'rb') as f:
        while True:
            k = f.readinto(b)
            if not k:
                break
            h.update(memoryview(b)[:k])
    return (n, binascii.hexlify(h.digest()).decode())
print(repr([_el_h(p) for p in %r]))
del _el_h
"""

CHECK = """
import edgeloop
print('EL-RUNTIME', edgeloop.VERSION)
try:
    _m = edgeloop.load(%r)
    print('EL-MODEL', _m.backend, _m.self_test() if getattr(_m, '_self_test', None) is not None else None)
    del _m
except Exception as e:
    print('EL-MODEL-ERROR', repr(e))
"""


def parse_mpy_header(data: bytes) -> tuple[int, int, str | None]:
    """(mpy version, sub-version, native arch name or None) from a .mpy file's header."""
    from .package import MPY_ARCH_NAMES

    if len(data) < 4 or data[0:1] != b"M":
        raise DeployError("not a .mpy file (no 'M' header)")
    return data[1], data[2] & 3, MPY_ARCH_NAMES.get(data[2] >> 2)


# Native code MicroPython loads on a board of each arch, best first (thumb: its own arch and older ones).
COMPATIBLE = {
    "armv7em": ("armv7em", "armv7m", "armv6m"),
    "armv7emsp": ("armv7emsp", "armv7em", "armv7m", "armv6m"),
    "armv7emdp": ("armv7emdp", "armv7emsp", "armv7em", "armv7m", "armv6m"),
    "armv7m": ("armv7m", "armv6m"),
}


def compatible(board_arch: str | None) -> tuple[str, ...]:
    return COMPATIBLE.get(board_arch, (board_arch,)) if board_arch else ()


def _arch_ok(natmod_arch: str, board_arch: str) -> bool:
    # MicroPython loads native code of its own arch, and armv6m code on the armv7m family.
    return natmod_arch == board_arch or (natmod_arch == "armv6m" and board_arch in
                                         ("armv7m", "armv7em", "armv7emsp", "armv7emdp"))


def probe(target, runtime_dir: str = DEFAULT_PATHS["runtime"]) -> dict:
    out = target.exec(PROBE % runtime_dir, timeout=30)
    try:
        info = ast.literal_eval(out.strip().splitlines()[-1])
    except (ValueError, SyntaxError, IndexError):
        raise DeployError(f"the board answered the probe with something unexpected: {out.strip()[-300:]!r}") from None
    from .package import MPY_ARCH_NAMES

    mpy = info["mpy"] or 0
    info["mpy_version"], info["mpy_sub"] = mpy & 0xFF, (mpy >> 8) & 3
    info["arch"] = MPY_ARCH_NAMES.get(mpy >> 10)
    return info


def _remote_hashes(target, paths: list[str]) -> dict[str, tuple[int, str] | None]:
    if not paths:
        return {}
    out = target.exec(HASHES % (paths,), timeout=60 + 10 * len(paths))
    return dict(zip(paths, ast.literal_eval(out.strip().splitlines()[-1])))


def _runtime_files(flavour: str) -> list[tuple[str, bytes]]:
    from . import package

    with tempfile.TemporaryDirectory(prefix="edgeloop-deploy-") as d:
        pj = package.build(flavour, Path(d))
        pkg_dir = pj.parent
        import json

        return [(name, (pkg_dir / name).read_bytes()) for name, _ in json.loads(pj.read_text())["urls"]]


def _natmod_for(arch: str, natmod: str | Path | None) -> tuple[bytes, str] | None:
    """The natmod bytes for `arch` (a user file, or our build), or None if there is none."""
    if natmod:
        data = Path(natmod).read_bytes()
        ver, sub, nat_arch = parse_mpy_header(data)
        if nat_arch is None:
            raise DeployError(f"{natmod} holds no native code (not a natmod)")
        if not _arch_ok(nat_arch, arch):
            raise DeployError(f"{natmod} is a natmod for {nat_arch}, but this board runs {arch or 'no native code'} "
                              f"code: build it with `make -C device/natmod ARCH={arch}` (see docs/TOOLCHAIN.md)")
        if (ver, sub) != (MPY_VERSION, MPY_SUB_VERSION):
            raise DeployError(f"{natmod} is mpy v{ver}.{sub}; this runtime needs v{MPY_VERSION}.{MPY_SUB_VERSION}")
        return data, str(natmod)
    from . import toolchain

    cand = next((a for a in compatible(arch) if a in toolchain.NATMOD_ARCHS), None)
    if cand is None:
        return None
    path = toolchain.firmware_path(toolchain.natmod_name(cand))
    return path.read_bytes(), f"{cand} ({path.name}, built here)"


def _blocks(n: int, bs: int) -> int:
    return max(1, -(-n // bs)) * bs


def deploy(target, model: str | Path | None = None, manifest: str | Path | None = None,
           pubkey: str | Path | None = None, natmod: str | Path | None = None,
           paths: dict | None = None, check: bool = True, log=None) -> DeployReport:
    """Bring the board behind `target` (targets.SerialTarget / QemuTarget / LocalTarget) up to date."""
    t0 = time.monotonic()
    paths = {**DEFAULT_PATHS, **(paths or {})}
    say = log or (lambda msg: None)
    info = probe(target, paths["runtime"])
    if info["name"] != "micropython":
        raise DeployError(f"the board runs {info['name']}, not MicroPython")
    version = tuple(info["version"])
    if version < MIN_MICROPYTHON:
        raise DeployError(f"firmware too old: MicroPython {'.'.join(map(str, version))} (mpy "
                          f"v{info['mpy_version']}.{info['mpy_sub']}); edgeloop needs MicroPython "
                          f"{'.'.join(map(str, MIN_MICROPYTHON))} or newer: flash a current release "
                          "(micropython.org/download) or our custom firmware (board_configs/*/README.md)")
    arch = info["arch"]
    report = DeployReport(board=info, arch=arch or "", runtime_flavour="py", natmod=None)
    from . import package

    native_ok = info["mpy_version"] == MPY_VERSION and info["mpy_sub"] == MPY_SUB_VERSION
    usable = [a for a in compatible(arch) if a in package.ARCHS]
    if usable and native_ok:
        flavour = usable[0]
    else:
        flavour = "py"
        if arch and not native_ok:
            report.warnings.append(f"firmware mpy v{info['mpy_version']}.{info['mpy_sub']} differs from "
                                   f"v{MPY_VERSION}.{MPY_SUB_VERSION}: the runtime is copied as source")
    report.runtime_flavour = flavour
    say(f"board: MicroPython {'.'.join(map(str, version))}, arch {arch}, cwd {info['cwd']}")

    # -- what should be on the board
    want: list[tuple[str, bytes, str]] = []
    frozen = info.get("frozen_runtime")
    if frozen and frozen[1] == package.runtime_version():
        report.runtime_flavour = f"frozen into the firmware (edgeloop {frozen[1]})"
    else:
        if frozen:
            report.warnings.append(f"the firmware has edgeloop {frozen[1]} frozen in, which shadows lib/: "
                                   f"rebuild the firmware for runtime {package.runtime_version()}")
        for name, data in _runtime_files(flavour):
            want.append((f"{paths['lib']}/{name}", data, "runtime"))
    if info["cmodule"] == "usermod":
        report.natmod = "built-in"
        if natmod:
            _natmod_for(arch, natmod)   # still refuse a natmod for the wrong arch
            report.warnings.append(f"the firmware has _edgeloop built in: {natmod} not copied")
    else:
        nm = _natmod_for(arch, natmod) if (native_ok and arch) else None
        if natmod and not nm:
            raise DeployError(f"this board's firmware cannot load natmods (arch {arch}, mpy "
                              f"v{info['mpy_version']}.{info['mpy_sub']})")
        if nm:
            want.append((paths["natmod"], nm[0], "natmod"))
            report.natmod = nm[1]
        else:
            report.warnings.append(f"no natmod for arch {arch or 'none'} here: the pure-Python kernels are used"
                                   + (" (for ESP32 build one with ESP-IDF: board_configs/esp32_generic/README.md)"
                                      if arch == "xtensawin" else ""))
    if model:
        from . import blob

        try:
            data = blob.read_checked(model)
        except ValueError as e:
            raise DeployError(str(e)) from None
        want.append((paths["model"], data, "model"))
    if manifest:
        want.append((paths["manifest"], Path(manifest).read_bytes(), "manifest"))
    if pubkey:
        want.append((paths["pubkey"], _pubkey_bytes(pubkey), "pubkey"))

    # -- what is there
    remote = _remote_hashes(target, [r for r, _, _ in want]) if info["hashlib"] else {}
    runtime_names = {r.rsplit("/", 1)[1] for r, _, k in want if k == "runtime"}
    stale = [f"{paths['runtime']}/{n}" for n, typ in (info["runtime_dir"] or [])
             if typ == 0x8000 and n not in runtime_names]

    todo = []
    for r, data, kind in want:
        have = remote.get(r)
        if have and have[1] == hashlib.sha256(data).hexdigest():
            report.files.append(FileAction(r, len(data), "unchanged", kind))
        else:
            todo.append((r, data, kind, have))

    # -- room for it?
    if info["fs"] and todo:
        bs, blocks, bfree = info["fs"]
        need = sum(_blocks(len(d), bs) for _, d, _, _ in todo)
        freed = sum(_blocks(h[0], bs) for *_, h in todo if h)
        free = bs * bfree
        if need - freed > free - 2 * bs:
            raise DeployError(f"not enough filesystem space on the board: {need - freed} B more needed, "
                              f"{free} B free of {bs * blocks} B ({info['cwd']}); remove files "
                              f"(`mpremote connect PORT fs ls`, `fs rm`) or deploy a smaller model")

    # -- copy
    for r in stale:
        target.exec(f"import os\nos.remove({r!r})", timeout=30)
        report.files.append(FileAction(r, 0, "removed", "stale"))
    if todo:
        say(f"copying {len(todo)} file(s), {sum(len(d) for _, d, _, _ in todo)} B")
        target.reset()   # a fresh heap for the receiver (the probe imported the runtime)
        put_many = getattr(target, "put_many", None)
        if put_many is not None:    # one compressed stream for all files (targets.QemuTarget)
            put_many([(data, r) for r, data, _, _ in todo])
        else:
            for r, data, _, _ in todo:
                target.put_bytes(data, r)
    for r, data, kind, _ in todo:
        report.files.append(FileAction(r, len(data), "copied", kind))
        report.bytes_sent += len(data)
    if todo or stale:
        target.reset()   # modules imported before would shadow the new files
    if info["fs"]:
        try:
            st = target.eval(f"__import__('os').statvfs({info['cwd']!r})")
            report.fs_free_after = st[0] * st[3]
        except TargetError:
            pass
    if check:
        out = target.exec(CHECK % paths["model"] if model else "import edgeloop\nprint('EL-RUNTIME', edgeloop.VERSION)",
                          timeout=120)
        for line in out.splitlines():
            if line.startswith("EL-MODEL-ERROR"):
                report.model_ok = False
                report.warnings.append(f"the model does not load on the board: {line.split(' ', 1)[1]}")
            elif line.startswith("EL-MODEL "):
                _, backend, st = line.split()
                report.model_ok = st != "False"
                report.backend = backend
                if st == "False":
                    report.warnings.append("the model's self-test FAILED on the board")
    report.seconds = time.monotonic() - t0
    return report


def _pubkey_bytes(path) -> bytes:
    """The raw 32-byte Ed25519 public key the device verifies with (from PEM or raw); other files as they are."""
    data = Path(path).read_bytes()
    try:
        from .ota import load_public_key
    except ImportError:
        return data
    try:
        return load_public_key(path)
    except Exception as e:
        raise DeployError(f"{path}: not an Ed25519 public key: {e}") from None
