"""Ed25519 verification and SHA-512 on the device (issue 6): the C module / natmod path and the
pure-MicroPython path, against RFC 8032's test vectors and against the `cryptography` package on
random keys, messages and tampered signatures, on real MicroPython (unix port, stock wheel + natmod,
emulated Cortex-M3)."""
from __future__ import annotations

import ast
import hashlib
import os
import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeloop_host.ota.manifest import public_raw

# RFC 8032 section 7.1: TEST 1, 2, 3 and SHA(abc): (secret key, public key, message, signature)
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5"
     "f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eae"
     "b4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9"
     "716ed28dc027beceea1ec40a"),
    ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423"
     "643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c"
     "138ac17ad9bef1177331a704"),
]

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493


def _cryptography_verdict(pub: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def test_rfc8032_vectors_match_cryptography():
    for sk, pk, msg, sig in RFC8032:
        k = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sk))
        assert public_raw(k).hex() == pk
        assert k.sign(bytes.fromhex(msg)).hex() == sig


def random_cases(n: int, seed: int) -> list[tuple[bytes, bytes, bytes, bool]]:
    """Valid signatures and, in turn, a flipped bit in the signature / the key / the message, S + L,
    and a signature made by another key; each with cryptography's verdict."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        k = Ed25519PrivateKey.from_private_bytes(rnd.randbytes(32))
        pub = public_raw(k)
        msg = rnd.randbytes(rnd.choice([0, 1, 31, 32, 64, 80, 111, 112, 127, 128, 200, 300]))
        sig = bytearray(k.sign(msg))
        kind = i % 6
        if kind == 1:
            sig[rnd.randrange(64)] ^= 1 << rnd.randrange(8)
        elif kind == 2:
            pub = bytearray(pub)
            pub[rnd.randrange(32)] ^= 1 << rnd.randrange(8)
            pub = bytes(pub)
        elif kind == 3 and msg:
            msg = bytearray(msg)
            msg[rnd.randrange(len(msg))] ^= 1 << rnd.randrange(8)
            msg = bytes(msg)
        elif kind == 4:
            s = int.from_bytes(sig[32:], "little") + L
            if s < 2**256:
                sig[32:] = s.to_bytes(32, "little")
        elif kind == 5:
            sig = bytearray(Ed25519PrivateKey.from_private_bytes(rnd.randbytes(32)).sign(msg))
        sig = bytes(sig)
        out.append((pub, msg, sig, _cryptography_verdict(pub, msg, sig)))
    return out


def rfc_cases():
    return [(bytes.fromhex(pk), bytes.fromhex(m), bytes.fromhex(s), True) for _, pk, m, s in RFC8032]


# Encodings where RFC 8032 and OpenSSL (behind `cryptography`) differ: OpenSSL accepts a public key whose
# y is not reduced (y = p + 1, the identity) and x = 0 with the sign bit set; RFC 8032 5.1.3 says decoding
# fails, and both device paths follow the RFC. Public keys are provisioned by us, so this never matters
# for security; the test pins the behaviour.
IDENTITY = (1).to_bytes(32, "little")
RFC_STRICT = [
    ((P + 1).to_bytes(32, "little"), b"m", IDENTITY + bytes(32), False),
    ((1 | (1 << 255)).to_bytes(32, "little"), b"m", IDENTITY + bytes(32), False),
    (IDENTITY, b"m", IDENTITY + bytes(32), True),          # small-order key: valid per the equation
    (P.to_bytes(32, "little"), b"m", bytes(64), False),    # y = p
    (bytes(32), b"", bytes(64), False),
]

_VERIFY = """\
import edgeloop.ed25519 as E, time
t = time.ticks_us()
r = [E.verify(p, m, s, %(backend)r) for p, m, s in %(cases)r]
print(repr((r, time.ticks_diff(time.ticks_us(), t) // max(1, len(r)))))
"""


def run_verify(target, cases, backend, timeout=600):
    code = _VERIFY % {"backend": backend, "cases": [(p, m, s) for p, m, s, _ in cases]}
    got, us = ast.literal_eval(target.exec(code, timeout=timeout).strip().splitlines()[-1])
    want = [w for *_, w in cases]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{backend}: disagrees with the expected verdict on cases {bad[:10]}"
    return us


def test_unix_c_and_python_agree_with_cryptography(unix_target):
    assert unix_target.eval("__import__('edgeloop.ed25519').ed25519.has_c()")
    cases = rfc_cases() + RFC_STRICT + random_cases(600, seed=1)
    run_verify(unix_target, cases, "c")
    run_verify(unix_target, rfc_cases() + RFC_STRICT + random_cases(120, seed=2), "python")


def test_stock_python_and_natmod(stock_target):
    """The stock wheel has no C module: pure Python; then the natmod (x64) brings the C path."""
    cases = rfc_cases() + RFC_STRICT + random_cases(60, seed=3)
    run_verify(stock_target, cases, "auto")
    assert not stock_target.eval("__import__('edgeloop.ed25519').ed25519.has_c()")
    remote = stock_target.install_natmod("_edgeloop")
    try:
        assert stock_target.eval("__import__('edgeloop.ed25519').ed25519.has_c()")
        run_verify(stock_target, cases + random_cases(200, seed=4), "c")
    finally:
        stock_target.exec(f"import os\nos.remove({remote!r})")


@pytest.mark.qemu
def test_qemu_arm_c_and_python(qemu_arm_target):
    t = qemu_arm_target
    cases = rfc_cases() + RFC_STRICT + random_cases(36, seed=5)
    run_verify(t, cases, "c", timeout=300)
    run_verify(t, rfc_cases() + RFC_STRICT[:2] + random_cases(6, seed=6), "python", timeout=900)


_SHA = """\
from edgeloop import sha512 as S, ed25519 as E
import binascii
print(repr([(binascii.hexlify(S.sha512(d).digest()).decode(), binascii.hexlify(E.sha512(d)).decode())
            for d in %r]))
"""


@pytest.mark.parametrize("name", ["unix", "qemu-arm"])
def test_sha512_matches_hashlib(name, request):
    """Every length around the 128-byte block and padding boundaries, through both SHA-512 paths."""
    target = request.getfixturevalue(name.replace("-", "_") + "_target")
    rnd = random.Random(7)
    lengths = list(range(0, 260)) if name == "unix" else [0, 1, 55, 111, 112, 113, 127, 128, 129, 239, 240, 256]
    data = [rnd.randbytes(n) for n in lengths]
    got = ast.literal_eval(target.exec(_SHA % (data,), timeout=600).strip())
    for d, (py, c) in zip(data, got):
        assert py == c == hashlib.sha512(d).hexdigest(), len(d)


def test_host_c_sources_build_standalone(tmp_path, repo_root):
    """el_ed25519.c / el_sha512.c are portable C99 without MicroPython or libc calls: compile them
    for the host with -Wall -Werror and run 2000 random cases against cryptography."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = repo_root / "device/cmodule/edgeloop"
    main = tmp_path / "main.c"
    main.write_text(r"""
#include <stdio.h>
#include <string.h>
#include "el_ed25519.h"
static int hex(const char *s, unsigned char *o) { int n = (int)strlen(s) / 2;
  for (int i = 0; i < n; i++) { unsigned v; sscanf(s + 2 * i, "%2x", &v); o[i] = (unsigned char)v; } return n; }
int main(void) { static char line[4000]; unsigned char pub[32], sig[64], msg[1000];
  while (fgets(line, sizeof line, stdin)) { char p[80], s[140], m[1000]; m[0] = 0;
    if (sscanf(line, "%79s %139s %999s", p, s, m) < 2) continue;
    hex(p, pub); hex(s, sig); int n = strcmp(m, "-") ? hex(m, msg) : 0;
    printf("%d\n", el_ed25519_verify(sig, pub, msg, (size_t)n)); } return 0; }
""")
    exe = tmp_path / "ed"
    subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{src}", str(main),
                    str(src / "el_ed25519.c"), str(src / "el_sha512.c"), "-o", str(exe)], check=True)
    cases = rfc_cases() + RFC_STRICT + random_cases(2000, seed=8)
    inp = "".join(f"{p.hex()} {s.hex()} {m.hex() or '-'}\n" for p, m, s, _ in cases)
    out = subprocess.run([str(exe)], input=inp.encode(), capture_output=True, check=True).stdout.split()
    assert [bool(int(x)) for x in out] == [w for *_, w in cases]
