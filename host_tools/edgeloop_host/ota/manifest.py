"""Ed25519 keys and the signed manifest (docs/OTA.md): 80-byte body + 64-byte signature of the body.

    body  <4sHHIIIIIIQ32s8s  magic b"ELMF", manifest version 1, body size 80, model_id, model_version,
          blob size, min runtime (major<<16 | minor<<8 | patch), blob format version, flags (0),
          expiry (Unix seconds, 0 = none), SHA-256 of the blob, key id (SHA-256(public key)[:8])
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAGIC = b"ELMF"
VERSION = 1
BODY_FMT = "<4sHHIIIIIIQ32s8s"
BODY_SIZE = struct.calcsize(BODY_FMT)   # 80
SIZE = BODY_SIZE + 64                   # 144
assert BODY_SIZE == 80


class ManifestError(ValueError):
    """A manifest or key problem; the message names it."""



def runtime_version_int(v: str) -> int:
    try:
        a, b, c = (int(x) for x in v.split("."))
    except ValueError:
        raise ManifestError(f"runtime version {v!r} is not MAJOR.MINOR.PATCH") from None
    if not (0 <= a < 65536 and 0 <= b < 256 and 0 <= c < 256):
        raise ManifestError(f"runtime version {v!r} out of range")
    return (a << 16) | (b << 8) | c


def key_id(public_raw: bytes) -> bytes:
    return hashlib.sha256(public_raw).digest()[:8]


def public_raw(key) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate_keys(stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write STEM.key (PKCS#8 PEM private key, mode 0600) and STEM.pub (PEM public key)."""
    stem = Path(stem)
    priv, pub = stem.with_name(stem.name + ".key"), stem.with_name(stem.name + ".pub")
    for p in (priv, pub):
        if p.exists():
            raise ManifestError(f"{p} exists: not overwriting a key")
    k = Ed25519PrivateKey.generate()
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
    pub.write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def load_private_key(path) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ManifestError(f"{path}: {e.strerror}") from None
    try:
        k = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ManifestError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(k, Ed25519PrivateKey):
        raise ManifestError(f"{path}: not an Ed25519 key")
    return k


def load_public_key(path) -> bytes:
    """Raw 32-byte public key from a PEM public key, a PEM private key, or a raw 32-byte file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ManifestError(f"{path}: {e.strerror}") from None
    if len(data) == 32:
        return data
    try:
        if b"PRIVATE KEY" in data:
            k = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            k = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise ManifestError(f"{path}: not a PEM Ed25519 key or raw 32-byte key ({e})") from None
    if not isinstance(k, Ed25519PublicKey):
        raise ManifestError(f"{path}: not an Ed25519 key")
    return public_raw(k)


@dataclass
class Manifest:
    model_id: int
    version: int
    size: int
    sha256: bytes
    min_runtime: int = runtime_version_int("0.1.0")
    format_version: int = 1
    expiry: int = 0
    key_id: bytes = bytes(8)
    flags: int = 0
    signature: bytes = bytes(64)

    def body(self) -> bytes:
        return struct.pack(BODY_FMT, MAGIC, VERSION, BODY_SIZE, self.model_id, self.version, self.size,
                           self.min_runtime, self.format_version, self.flags, self.expiry,
                           self.sha256, self.key_id)

    def encode(self) -> bytes:
        return self.body() + self.signature

    def verify(self, public: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(self.signature, self.body())
            return True
        except InvalidSignature:
            return False


def make_manifest(blob: bytes, key: Ed25519PrivateKey, version: int | None = None, *,
                  min_runtime: str = "0.1.0", expiry: int = 0, model_id: int | None = None,
                  format_version: int | None = None) -> Manifest:
    """Sign `blob` (checked to decode). `version` defaults to, and must equal, the blob's model_version."""
    hdr_ver, hdr_id, hdr_fmt = _blob_header(blob)
    if version is None:
        version = hdr_ver
    if version != hdr_ver:
        raise ManifestError(f"the blob is version {hdr_ver}, not {version}: convert it with "
                            f"--model-version {version}")
    if not 0 < version < 2**32:
        raise ManifestError(f"version {version} out of range 1..2^32-1")
    m = Manifest(model_id=hdr_id if model_id is None else model_id, version=version, size=len(blob),
                 sha256=hashlib.sha256(blob).digest(), min_runtime=runtime_version_int(min_runtime),
                 format_version=hdr_fmt if format_version is None else format_version,
                 expiry=expiry, key_id=key_id(public_raw(key)))
    m.signature = key.sign(m.body())
    return m


def sign_blob(blob: bytes, key: Ed25519PrivateKey, version: int | None = None, **kw) -> bytes:
    return make_manifest(blob, key, version, **kw).encode()


def _blob_header(blob: bytes) -> tuple[int, int, int]:
    from .. import blob as blobcodec

    try:
        blobcodec.decode(blob)
    except ValueError as e:
        raise ManifestError(f"not a valid model blob: {e}") from None
    fmt, = struct.unpack_from("<H", blob, 4)
    model_id, model_version = struct.unpack_from("<II", blob, 20)
    return model_version, model_id, fmt


def parse_manifest(data: bytes) -> Manifest:
    if len(data) != SIZE:
        raise ManifestError(f"manifest has {len(data)} bytes, a v1 manifest has {SIZE}")
    (magic, ver, body, model_id, version, size, min_rt, fmt, flags, expiry, sha, kid) = \
        struct.unpack_from(BODY_FMT, data)
    if magic != MAGIC or ver != VERSION or body != BODY_SIZE:
        raise ManifestError("not an edgeloop v1 manifest")
    return Manifest(model_id, version, size, sha, min_rt, fmt, expiry, kid, flags, data[BODY_SIZE:])
