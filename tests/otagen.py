"""OTA test material: signing keys, FULLY_CONNECTED blobs of ~5 KB and ~100 KB with self-test vectors,
deliberately bad blobs, and manifests (no TensorFlow needed)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blobgen import random_mlp
from edgeloop_host import blob as blobcodec
from edgeloop_host.convert import add_self_test
from edgeloop_host.ota import manifest as M
from edgeloop_host.ota.faults import break_model

# ~5 KB and ~100 KB of weights (the sizes the issue asks the cut sweep to cover)
SMALL = [64, 40, 32, 10]
LARGE = [256, 240, 128, 32, 10]
MODEL_ID = 0x0E1A


def make_blob(widths, version: int, seed: int = 0, model_id: int = MODEL_ID, self_test: bool = True) -> bytes:
    g = random_mlp(np.random.default_rng(seed), widths)
    g.model_id, g.model_version = model_id, version
    if self_test:
        add_self_test(g)
    return blobcodec.encode(g)


def bad_blob(widths, version: int, seed: int = 0) -> bytes:
    """Loads, but fails its self-test."""
    return break_model(make_blob(widths, version, seed), version)


def raw_manifest(blob: bytes, key: Ed25519PrivateKey, **over) -> bytes:
    """A manifest with any field overridden (bypasses make_manifest's checks), signed by `key`."""
    fields = dict(model_id=int.from_bytes(blob[20:24], "little"), version=int.from_bytes(blob[24:28], "little"),
                  size=len(blob), sha256=hashlib.sha256(blob).digest(), key_id=M.key_id(M.public_raw(key)))
    fields.update(over)
    m = M.Manifest(**fields)
    m.signature = key.sign(m.body())
    return m.encode()


@dataclass
class Fleet:
    key: Ed25519PrivateKey
    pub: bytes
    other: Ed25519PrivateKey


def fleet() -> Fleet:
    k = Ed25519PrivateKey.generate()
    return Fleet(k, M.public_raw(k), Ed25519PrivateKey.generate())


def update_set(f: Fleet, widths) -> dict[str, tuple[bytes, bytes]]:
    """base v1, new v2, bad v3 (fails its self-test): name -> (blob, manifest)."""
    out = {}
    for name, version, blob in (("base", 1, make_blob(widths, 1, 1)), ("new", 2, make_blob(widths, 2, 2)),
                                ("bad", 3, bad_blob(widths, 3, 3))):
        out[name] = (blob, M.sign_blob(blob, f.key, version))
    return out
