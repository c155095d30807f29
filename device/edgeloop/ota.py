# Over-the-air model updates that cannot brick the device (docs/OTA.md).
#
#   u = ota.Updater("ota")                 # directory on the filesystem; key in ota/trust.pub
#   off = u.begin(manifest)                # verify the signed manifest; resume offset of the download
#   u.write(off, chunk) ...                # blob bytes into the inactive slot (each chunk committed)
#   u.finish()                             # size, SHA-256, format checks, then the slot becomes pending
#   m = u.load()                           # at boot: tries a pending model (self-test), confirms or reverts
#
# Two slots (s0.elm / s1.elm, each with its manifest s0.mf / s1.mf) and a state record stored twice
# (state0 / state1, sequence number + CRC-32). Nothing refers to a slot before its content is verified;
# the active slot is never written. Every rejection raises OTAError with a `code` and leaves the
# active model untouched.
import os
import struct
from micropython import const

from . import backend
from . import ed25519

NONE = const(0xFF)
_MF_BODY = const(80)
_MF_SIZE = const(144)
_ST_SIZE = const(36)
_CHUNK = const(1024)

# state.result codes: what happened to the last update
RESULTS = ("none", "confirmed", "reverted: self-test failed", "reverted: too many boot attempts",
           "reverted: model did not load", "rolled back by command")
R_NONE = const(0)
R_CONFIRMED = const(1)
R_SELFTEST = const(2)
R_ATTEMPTS = const(3)
R_LOAD = const(4)
R_ROLLBACK = const(5)


class OTAError(ValueError):
    """An update was rejected. `code` is one of: garbage, signature, wrong_key, downgrade, too_large,
    incompatible, expired, truncated, sha256, invalid_model, mismatch, no_key, no_model, state."""

    def __init__(self, code, msg):
        super().__init__("%s: %s" % (code, msg))
        self.code = code


def runtime_version():
    from . import VERSION
    a, b, c = (int(x) for x in VERSION.split("."))
    return (a << 16) | (b << 8) | c


def _vstr(v):
    return "%d.%d.%d" % (v >> 16, (v >> 8) & 0xFF, v & 0xFF)


def _sha256():
    import hashlib
    return hashlib.sha256()


def key_id(public_key):
    return _sha256_bytes(public_key)[:8]


def _sha256_bytes(data):
    h = _sha256()
    h.update(data)
    return h.digest()


def _hex(b):
    import binascii
    return binascii.hexlify(b).decode()


class Manifest:
    """A parsed manifest (docs/OTA.md, 144 bytes: 80-byte body + Ed25519 signature of the body)."""

    def __init__(self, data):
        data = bytes(data)
        if len(data) != _MF_SIZE:
            raise OTAError("garbage", "manifest has %d bytes, a v1 manifest has %d" % (len(data), _MF_SIZE))
        (magic, ver, body, self.model_id, self.version, self.size, self.min_runtime, self.format_version,
         flags, self.expiry, self.sha256, self.key_id) = struct.unpack("<4sHHIIIIIIQ32s8s", data)
        if magic != b"ELMF":
            raise OTAError("garbage", "bad magic %r: not an edgeloop manifest" % magic)
        if ver != 1 or body != _MF_BODY:
            raise OTAError("garbage", "manifest version %d / body size %d unknown (this runtime reads 1 / 80)"
                           % (ver, body))
        if flags:
            raise OTAError("garbage", "unknown manifest flags 0x%x" % flags)
        self.raw = data
        self.body = data[:_MF_BODY]
        self.signature = data[_MF_BODY:]


class State:
    __slots__ = ("seq", "active", "pending", "attempts", "confirmed", "counter", "active_version",
                 "pending_version", "last_version", "result")

    def __init__(self):
        self.seq = 0
        self.active = NONE
        self.pending = NONE
        self.attempts = 0
        self.confirmed = 0
        self.counter = 0
        self.active_version = 0
        self.pending_version = 0
        self.last_version = 0
        self.result = R_NONE

    def pack(self):
        b = struct.pack("<4sIBBBBIIIIB3x", b"ELOS", self.seq, self.active, self.pending, self.attempts,
                        self.confirmed, self.counter, self.active_version, self.pending_version,
                        self.last_version, self.result)
        return b + struct.pack("<I", backend.crc32(b))

    @staticmethod
    def unpack(b):
        if len(b) != _ST_SIZE or b[:4] != b"ELOS":
            return None
        if struct.unpack_from("<I", b, 32)[0] != backend.crc32(memoryview(b)[:32]):
            return None
        s = State()
        (_, s.seq, s.active, s.pending, s.attempts, s.confirmed, s.counter, s.active_version,
         s.pending_version, s.last_version, s.result) = struct.unpack_from("<4sIBBBBIIIIB", b, 0)
        if s.active not in (0, 1, NONE) or s.pending not in (0, 1, NONE) or (
                s.pending != NONE and s.pending == s.active) or s.result >= len(RESULTS):
            return None
        return s

    def as_dict(self):
        d = {}
        for k in State.__slots__:
            v = getattr(self, k)
            d[k] = None if (k in ("active", "pending") and v == NONE) else v
        d["result"] = RESULTS[self.result]
        return d


def _exists(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _sync():
    if hasattr(os, "sync"):
        os.sync()


class Updater:
    """OTA state machine over the directory `root` (created if absent).

    public_key: 32 raw bytes (default: read `root`/trust.pub). slot_size: the largest blob accepted.
    max_attempts: boots a pending model gets before the runtime reverts by itself. app_confirm: when
    True a pending model that passes its self-test stays on trial until the app calls confirm().
    now: a callable giving Unix seconds for manifest expiry (None: use time.time() when the clock is
    set, else reject a manifest that has an expiry). crypto: auto | c | python (Ed25519 backend).
    factory: (blob path, manifest path) of a model installed by `edgeloop deploy`; a board with no OTA
    state installs it into a slot through the normal verified path on its first load()."""

    def __init__(self, root="ota", public_key=None, slot_size=256 * 1024, max_attempts=3,
                 app_confirm=False, now=None, crypto="auto", factory=("model.elm", "model.mf")):
        self.root = root.rstrip("/") or "/"
        try:
            os.mkdir(self.root)
        except OSError:
            pass
        if public_key is None:
            try:
                with open(self._p("trust.pub"), "rb") as f:
                    public_key = f.read()
            except OSError:
                public_key = None
        if public_key is not None and len(public_key) != 32:
            raise OTAError("no_key", "the provisioned public key must be 32 bytes, not %d" % len(public_key))
        self.public_key = public_key
        self.slot_size = slot_size
        self.max_attempts = max_attempts
        self.app_confirm = app_confirm
        self.now = now
        self.crypto = crypto
        self.factory = factory
        self._verified = None   # manifest bytes verified in this session
        self._trial = None      # state of a model on trial awaiting confirm()

    def _p(self, name):
        return self.root + "/" + name

    # ---- state ------------------------------------------------------------------------------------
    def state(self):
        """The newest valid state record (a fresh one when none is valid)."""
        best = None
        for i in (0, 1):
            try:
                with open(self._p("state%d" % i), "rb") as f:
                    s = State.unpack(f.read())
            except OSError:
                s = None
            if s is not None and (best is None or s.seq > best.seq):
                best = s
        return best if best is not None else State()

    def _write_state(self, s):
        s.seq += 1
        with open(self._p("state%d" % (s.seq & 1)), "wb") as f:
            f.write(s.pack())
        _sync()

    # ---- manifest checks --------------------------------------------------------------------------
    def check_manifest(self, data):
        """Parse and verify a manifest against the key, the slot size, this runtime, the clock and the
        security counter. Returns the Manifest; raises OTAError."""
        m = Manifest(data)
        if self.public_key is None:
            raise OTAError("no_key", "no public key provisioned (%s missing)" % self._p("trust.pub"))
        kid = key_id(self.public_key)
        if m.key_id != kid:
            raise OTAError("wrong_key", "manifest is signed by key %s, this device trusts key %s"
                           % (_hex(m.key_id), _hex(kid)))
        if not ed25519.verify(self.public_key, m.body, m.signature, self.crypto):
            raise OTAError("signature", "bad signature: the manifest was altered or not signed by the "
                           "trusted key")
        self._check_policy(m)
        return m

    def _check_policy(self, m):
        s = self.state()
        if m.version <= s.counter:
            raise OTAError("downgrade", "version %d is not above the security counter %d (downgrade or "
                           "replay)" % (m.version, s.counter))
        if m.size > self.slot_size:
            raise OTAError("too_large", "blob of %d bytes does not fit a %d-byte slot" % (m.size, self.slot_size))
        if m.min_runtime > runtime_version():
            raise OTAError("incompatible", "model needs runtime %s, this is %s"
                           % (_vstr(m.min_runtime), _vstr(runtime_version())))
        from .blob import FORMAT_VERSION
        if m.format_version > FORMAT_VERSION or m.format_version < 1:
            raise OTAError("incompatible", "blob format version %d, this runtime reads 1..%d"
                           % (m.format_version, FORMAT_VERSION))
        if m.expiry:
            now = self._now()
            if now is None:
                raise OTAError("expired", "manifest expires but the device clock is not set")
            if now >= m.expiry:
                raise OTAError("expired", "manifest expired at %d (now %d)" % (m.expiry, now))

    def _now(self):
        if self.now is not None:
            return self.now()
        import time
        try:
            t = time.time()
            if time.gmtime(0)[0] == 2000:   # MicroPython's embedded epoch
                t += 946684800
        except (AttributeError, OSError):
            return None
        return t if t > 1704067200 else None   # a clock before 2024 is not set

    # ---- download ---------------------------------------------------------------------------------
    def _target_slot(self, s):
        return 1 if s.active == 0 else 0

    def begin(self, manifest):
        """Start or resume a download. Returns the offset to send from (the blob size when the same
        update is already pending)."""
        m = self.check_manifest(manifest)
        s = self.state()
        slot = self._target_slot(s)
        mf, data = self._p("s%d.mf" % slot), self._p("s%d.elm" % slot)
        same = False
        try:
            with open(mf, "rb") as f:
                same = f.read() == m.raw
        except OSError:
            pass
        if s.pending == slot:
            if same:
                self._verified = m.raw
                return m.size
            s.pending = NONE   # a newer update replaces an untried one: forget it before touching the slot
            s.attempts = 0
            self._write_state(s)
        if not same:
            with open(data, "wb"):
                pass
            with open(mf, "wb") as f:
                f.write(m.raw)
            _sync()
        self._verified = m.raw
        return min(max(_exists(data), 0), m.size)

    def _download(self):
        s = self.state()
        slot = self._target_slot(s)
        try:
            with open(self._p("s%d.mf" % slot), "rb") as f:
                m = Manifest(f.read())
        except OSError:
            raise OTAError("state", "no download in progress: call begin() first")
        return s, slot, m

    def write(self, offset, data):
        """Append `data` at `offset` (= the bytes already received) and commit it. Returns the new offset."""
        s, slot, m = self._download()
        if s.pending == slot:
            raise OTAError("state", "update already complete and pending")
        path = self._p("s%d.elm" % slot)
        have = max(_exists(path), 0)
        if offset != have:
            raise OTAError("state", "chunk at offset %d, the slot holds %d bytes" % (offset, have))
        if have + len(data) > m.size:
            raise OTAError("too_large", "download exceeds the %d bytes the manifest announced" % m.size)
        with open(path, "ab") as f:
            f.write(data)
        return have + len(data)

    def finish(self):
        """Verify the received blob and make it the pending model. Raises OTAError (the slot stays
        inactive)."""
        s, slot, m = self._download()
        if s.pending == slot:
            return m.version
        if m.raw != self._verified:   # resumed after a reboot: verify the stored manifest again
            m = self.check_manifest(m.raw)
        else:
            self._check_policy(m)
        _sync()
        buf = self._read_verified(slot, m)
        from .model import Model
        try:
            model = Model(buf, "python")
        except ValueError as e:
            raise OTAError("invalid_model", "the blob does not load: %s" % e)
        if model.model_id != m.model_id or model.version != m.version:
            raise OTAError("mismatch", "blob is model %d version %d, manifest says %d version %d"
                           % (model.model_id, model.version, m.model_id, m.version))
        if model._self_test is None:
            raise OTAError("invalid_model", "the blob has no self-test vector: it could not prove itself")
        del model, buf
        s.pending = slot
        s.pending_version = m.version
        s.attempts = 0
        self._write_state(s)
        return m.version

    def _read_verified(self, slot, m):
        """Read the slot into RAM and check size and SHA-256 against its manifest."""
        path = self._p("s%d.elm" % slot)
        n = _exists(path)
        if n != m.size:
            raise OTAError("truncated", "slot holds %d of the %d bytes announced" % (max(n, 0), m.size))
        buf = bytearray(n)
        with open(path, "rb") as f:
            mv = memoryview(buf)
            got = 0
            while got < n:
                k = f.readinto(mv[got:got + 4096])
                if not k:
                    break
                got += k
        if got != n:
            raise OTAError("truncated", "read %d of %d bytes" % (got, n))
        h = _sha256()
        for i in range(0, n, _CHUNK):
            h.update(mv[i:i + _CHUNK])
        if h.digest() != m.sha256:
            raise OTAError("sha256", "SHA-256 of the received blob does not match the manifest")
        return buf

    # ---- boot -------------------------------------------------------------------------------------
    def _slot_manifest(self, slot):
        with open(self._p("s%d.mf" % slot), "rb") as f:
            return Manifest(f.read())

    def _open(self, slot, backend_name):
        from .model import Model
        m = self._slot_manifest(slot)
        return Model(self._read_verified(slot, m), backend_name)

    def install_file(self, blob_path, manifest):
        """begin / write / finish from a blob file (a factory model, or one copied by other means)."""
        off = self.begin(manifest)
        with open(blob_path, "rb") as f:
            f.seek(off)
            while True:
                b = f.read(4096)
                if not b:
                    break
                off = self.write(off, b)
        return self.finish()

    def load(self, backend="auto"):
        """Boot-time load: try a pending model (counted attempt, self-test), confirm or revert, and return
        the Model to run. Raises OTAError("no_model") when nothing is installed."""
        s = self.state()
        if s.active == NONE and s.pending == NONE and s.seq == 0 and self.factory:
            try:
                with open(self.factory[1], "rb") as f:
                    mf = f.read()
                os.stat(self.factory[0])
            except OSError:
                mf = None
            if mf is not None:
                self.install_file(self.factory[0], mf)
                s = self.state()
        if s.pending != NONE:
            if s.attempts >= self.max_attempts:
                self._revert(s, R_ATTEMPTS)
            else:
                s.attempts += 1
                self._write_state(s)   # counted before anything runs: a crash on trial still counts
                try:
                    model = self._open(s.pending, backend)
                except (OSError, ValueError, MemoryError):
                    model = None
                ok = False
                if model is not None:
                    try:
                        ok = model.self_test()
                    except Exception:   # a hard fault or reset instead is counted by `attempts`
                        ok = False
                if model is None:
                    self._revert(s, R_LOAD)
                elif not ok:
                    self._revert(s, R_SELFTEST)
                elif self.app_confirm:
                    self._trial = s
                    return model
                else:
                    self._confirm(s)
                    return model
        if s.active == NONE:
            raise OTAError("no_model", "no model installed")
        return self._open(s.active, backend)

    def confirm(self):
        """App confirmation of the model on trial (app_confirm=True)."""
        s = self.state()
        if s.pending == NONE:
            return False
        self._confirm(s)
        return True

    def _confirm(self, s):
        s.active = s.pending
        s.active_version = s.pending_version
        if s.pending_version > s.counter:
            s.counter = s.pending_version
        s.last_version = s.pending_version
        s.result = R_CONFIRMED
        s.pending = NONE
        s.attempts = 0
        s.confirmed = 1
        self._write_state(s)

    def rollback(self, backend="auto"):
        """Operator rollback (a fleet rollout halted at its canaries): make the model that was active
        before the current one active again and return it. The other slot must verify (size, SHA-256
        against its manifest), hold an *older* version than the active one (every update is newer than
        the security counter, so an older one there was confirmed before: never a reverted or half-
        downloaded update) and pass its self-test. The security counter stays: the version rolled back
        from cannot be installed again, a fixed model needs a new version."""
        s = self.state()
        if s.active == NONE:
            raise OTAError("no_model", "no model installed")
        other = 1 - s.active
        try:
            m = self._slot_manifest(other)
        except (OSError, OTAError):
            m = None
        if m is None or m.version >= s.active_version:
            raise OTAError("no_model", "no previous model to roll back to (slot %d holds %s)" % (
                other, "nothing" if m is None else "version %d, not older than %d" % (m.version, s.active_version)))
        try:
            model = self._open(other, backend)
            ok = model.self_test()
        except (OSError, ValueError, MemoryError) as e:
            raise OTAError("no_model", "previous model (version %d) does not load: %s" % (m.version, e))
        if not ok:
            raise OTAError("invalid_model", "previous model (version %d) fails its self-test" % m.version)
        s.last_version = s.active_version
        s.result = R_ROLLBACK
        s.active = other
        s.active_version = m.version
        s.pending = NONE
        s.attempts = 0
        self._write_state(s)
        return model

    def _revert(self, s, why):
        s.last_version = s.pending_version
        s.result = why
        s.pending = NONE
        s.attempts = 0
        self._write_state(s)

    def status(self):
        """State plus the download in progress, as a dict."""
        s = self.state()
        d = s.as_dict()
        slot = self._target_slot(s)
        try:
            m = self._slot_manifest(slot)
            d["download"] = {"slot": slot, "version": m.version, "size": m.size,
                             "have": max(_exists(self._p("s%d.elm" % slot)), 0),
                             "manifest_sha256": _hex(_sha256_bytes(m.raw))}
        except (OSError, OTAError):
            d["download"] = None
        return d
