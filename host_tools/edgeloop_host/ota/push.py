"""`edgeloop ota push`: send a blob + signed manifest to a board over its serial REPL, chunk by chunk.

Each chunk is one raw-REPL program that reads exactly n bytes from stdin (Ctrl-C disabled, a 3 s
silence aborts it), checks their CRC-32 and appends them to the inactive slot with
`Updater.write`, which commits them to flash. A push that dies (host killed, cable pulled) is resumed by
the next push of the same manifest: `Updater.begin` answers with the bytes the slot already holds.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

from .manifest import ManifestError, parse_manifest

OTA_ROOT = "ota"

_BEGIN = """\
from edgeloop import ota as _el_ota
_el_u = _el_ota.Updater(%(root)r)
print('EL_OTA', _el_u.begin(%(manifest)r))
"""

_CHUNK = """\
import sys, micropython
def _el_chunk(off, n, crc):
    from edgeloop import ota, backend
    b = bytearray(n)
    mv = memoryview(b)
    r = sys.stdin.buffer
    try:
        import select
        p = select.poll()
        p.register(sys.stdin, select.POLLIN)
    except (ImportError, AttributeError):
        p = None
    micropython.kbd_intr(-1)
    try:
        sys.stdout.write('EL_PUT_READY\\n')
        got = 0
        while got < n:
            if p is not None and not p.poll(3000):
                raise OSError('chunk timed out after %%d of %%d bytes' %% (got, n))
            got += r.readinto(mv[got:], n - got)
    finally:
        micropython.kbd_intr(3)
    if backend.crc32(b) != crc:
        raise OSError('chunk CRC mismatch')
    u = globals().get('_el_u') or ota.Updater(%(root)r)
    globals()['_el_u'] = u
    print('EL_OTA', u.write(off, b))
_el_chunk(%(off)d, %(n)d, %(crc)d)
del _el_chunk
"""

_FINISH = """\
from edgeloop import ota as _el_ota
_el_u = globals().get('_el_u') or _el_ota.Updater(%(root)r)
print('EL_OTA', _el_u.finish())
"""

_BOOT = """\
from edgeloop import ota as _el_ota
_el_u = _el_ota.Updater(%(root)r)
_el_s = _el_u.state()
_el_m = _el_u.load()
print('EL_OTA', repr({'before': _el_s.as_dict(), 'after': _el_u.state().as_dict(), 'version': _el_m.version,
                      'backend': _el_m.backend}))
"""

_STATUS = """\
from edgeloop import ota as _el_ota
print('EL_OTA', repr(_el_ota.Updater(%(root)r).status()))
"""


class PushError(RuntimeError):
    """The board rejected the update, or the transfer failed; the message says which."""


@dataclass
class PushResult:
    version: int
    size: int
    resumed_at: int
    chunks: int
    seconds: float
    log: list[str] = field(default_factory=list)


def _device_error(e) -> str:
    from ..run import last_exception_line

    return last_exception_line(getattr(e, "traceback", "") or str(e))


def _run(target, code: str, timeout: float = 120.0, stdin: bytes | None = None) -> str:
    from ..targets import TargetError

    try:
        if stdin is None:
            out = target.exec(code, timeout=timeout)
        else:
            out = target._exec_raw(code, timeout, stdin=stdin)
    except TargetError as e:
        line = _device_error(e)
        if "OTAError" in line:
            raise PushError(f"the board rejected the update: {line.split('OTAError:', 1)[1].strip()}") from None
        if "ImportError" in line and "ota" in line:
            raise PushError("the board has no edgeloop runtime with OTA: install it first "
                            "(`edgeloop ota push --install-runtime ...`)") from None
        raise PushError(f"on the board: {line}") from None
    for ln in out.splitlines():
        if ln.startswith("EL_OTA "):
            return ln[len("EL_OTA "):]
    raise PushError(f"the board did not answer: {out.strip()[-300:]!r}")


def ensure_runtime(target, pubkey: bytes | None = None, install: bool = False, root: str = OTA_ROOT) -> None:
    """Install the runtime (if asked or missing `edgeloop.ota`) and provision the public key if the board
    has none. A different key already on the board is never replaced."""
    has = target.exec("try:\n import edgeloop.ota\n print('yes')\nexcept ImportError:\n print('no')",
                      timeout=60).strip().endswith("yes")
    if install or not has:
        if not install:
            raise PushError("the board has no edgeloop runtime with OTA: add --install-runtime")
        target.install_runtime()
    if pubkey is not None:
        cur = target.exec("try:\n with open(%r,'rb') as f: print(f.read().hex())\nexcept OSError:\n print('')"
                          % f"{root}/trust.pub", timeout=30).strip()
        if cur and bytes.fromhex(cur) != pubkey:
            raise PushError(f"the board already trusts another key ({root}/trust.pub): not replacing it")
        if not cur:
            target.put_bytes(pubkey, f"{root}/trust.pub")


def push(target, blob: bytes, manifest: bytes, chunk: int = 4096, root: str = OTA_ROOT,
         stop_after: int | None = None, progress=None) -> PushResult:
    """Send `blob` + `manifest`; returns when the board holds it verified as its pending model.
    `stop_after` (tests): stop after that many chunks, as a dropped connection would."""
    try:
        m = parse_manifest(manifest)
    except ManifestError as e:
        raise PushError(f"manifest: {e}") from None
    if m.size != len(blob):
        raise PushError(f"the manifest is for a {m.size}-byte blob, this blob has {len(blob)} bytes")
    t0 = time.monotonic()
    off = int(_run(target, _BEGIN % {"root": root, "manifest": manifest}, timeout=300))
    res = PushResult(m.version, len(blob), off, 0, 0.0)
    if off:
        res.log.append(f"resuming at byte {off} of {len(blob)}")
    retries = 0
    while off < len(blob):
        if stop_after is not None and res.chunks >= stop_after:
            res.seconds = time.monotonic() - t0
            return res
        data = blob[off:off + chunk]
        code = _CHUNK % {"root": root, "off": off, "n": len(data), "crc": zlib.crc32(data)}
        try:
            new = int(_run(target, code, timeout=60 + len(data) / 2000, stdin=data))
        except PushError as e:
            if "CRC mismatch" in str(e) or "timed out" in str(e):
                retries += 1
                if retries <= 3:
                    continue
            raise
        if new != off + len(data):
            raise PushError(f"the board is at byte {new}, expected {off + len(data)}")
        off = new
        res.chunks += 1
        if progress:
            progress(off, len(blob))
    _run(target, _FINISH % {"root": root}, timeout=600)
    res.seconds = time.monotonic() - t0
    return res


def boot(target, root: str = OTA_ROOT, reset: bool = True) -> dict:
    """What the board does at start-up: `Updater.load()` (a pending model is tried, confirmed or rolled
    back). Soft-resets first so that the model is loaded by a fresh interpreter, as after a reboot."""
    import ast

    if reset:
        target.reset()
    return ast.literal_eval(_run(target, _BOOT % {"root": root}, timeout=600))


def status(target, root: str = OTA_ROOT) -> dict:
    import ast

    return ast.literal_eval(_run(target, _STATUS % {"root": root}, timeout=120))


def describe_boot(r: dict) -> str:
    before, after = r["before"], r["after"]
    if before["pending"] is None:
        return f"running version {r['version']} (nothing pending)"
    tried = before["pending_version"]
    if after["result"] == "confirmed" and after["active_version"] == tried:
        return (f"version {tried} passed its self-test: confirmed, now running it (security counter "
                f"{after['counter']})")
    if after["pending"] is not None:
        return f"version {tried} on trial (attempt {after['attempts']}), waiting for the app to confirm it"
    return f"version {tried} {after['result']}: rolled back, running version {r['version']}"
