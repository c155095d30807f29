# Runs ON the device (MicroPython): drive edgeloop.ota and report outcomes as plain values the host test
# compares. Every rejection must leave the active model and the state record exactly as they were.
import os
import hashlib

from edgeloop import ota


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        os.remove(path + "/" + n)
    os.rmdir(path)


def install(u, blob, manifest, chunk=4096, limit=None):
    """begin / write / finish; `limit` stops after that many bytes (a truncated download)."""
    off = u.begin(manifest)
    n = len(blob) if limit is None else limit
    mv = memoryview(blob)
    while off < n:
        off = u.write(off, mv[off:min(off + chunk, n)])
    return u.finish()


def fingerprint(u):
    """(state tuple, sha256 of the active slot's blob and manifest, loaded model version)."""
    s = u.state()
    h = hashlib.sha256()
    if s.active != ota.NONE:
        h.update(rd(u._p("s%d.elm" % s.active)))
        h.update(rd(u._p("s%d.mf" % s.active)))
    m = u.load()
    return ((s.active, s.pending, s.counter, s.active_version, s.confirmed), h.digest(), m.version)


def outcome(fn):
    try:
        return ("ok", fn())
    except ota.OTAError as e:
        return (e.code, str(e))


def attempt(u, blob, manifest, **kw):
    """Try an update; returns (code, message, active-untouched?)."""
    before = fingerprint(u)
    code, msg = outcome(lambda: install(u, blob, manifest, **kw))
    after = fingerprint(u)
    return code, msg, before == after


def flips(u, manifest, step=1):
    """Every single-bit flip of a manifest through begin(): {code: count} (nothing must be accepted)."""
    b = bytearray(manifest)
    codes = {}
    for bit in range(0, len(b) * 8, step):
        b[bit >> 3] ^= 1 << (bit & 7)
        code, _ = outcome(lambda: u.check_manifest(b))
        codes[code] = codes.get(code, 0) + 1
        b[bit >> 3] ^= 1 << (bit & 7)
    return codes
