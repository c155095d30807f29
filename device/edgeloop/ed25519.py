# Ed25519 signature verification (RFC 8032, section 5.1.7) for OTA manifests.
# verify() uses the _edgeloop C module when present (fast), otherwise the pure-MicroPython code below on
# big ints (MicroPython's MPZ long ints). Only verification: the device holds public keys only.
# Both paths accept exactly what RFC 8032 accepts with the cofactorless equation [S]B = R + [k]A checked
# by re-encoding: S must be < L, A must decode (canonical y < p), R must equal the encoding of
# [S]B - [k]A (so a non-canonical R never verifies).
try:
    import _edgeloop as _c
except ImportError:
    _c = None  # type: ignore[assignment]

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = (2 * _D) % _P
_SQRTM1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_B = (_BX, _BY, 1, _BX * _BY % _P)


def has_c():
    return _c is not None and hasattr(_c, "ed25519_verify")


def verify(public_key, message, signature, backend="auto"):
    """True when `signature` (64 bytes) is a valid Ed25519 signature of `message` by `public_key`
    (32 bytes). backend: auto | c | python."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    if backend == "auto":
        backend = "c" if has_c() else "python"
    if backend == "c":
        if not has_c():
            raise ValueError("backend 'c' requested but _edgeloop has no ed25519_verify")
        return _c.ed25519_verify(signature, public_key, message)
    if backend != "python":
        raise ValueError("unknown backend %r (auto, c, python)" % (backend,))
    return _verify_py(bytes(public_key), bytes(message), bytes(signature))


def sha512(data):
    """SHA-512 digest of `data` (C module when present)."""
    if _c is not None and hasattr(_c, "sha512"):
        return _c.sha512(data)
    from .sha512 import sha512 as _h
    return _h(data).digest()


# ---- pure MicroPython ----------------------------------------------------------------------------
# Points in extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 5.1.4).

def _add(p, q):
    P = _P
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * _D2 % P * t2 % P
    d = 2 * z1 * z2 % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p):
    P = _P
    x1, y1, z1, _ = p
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    s = x1 + y1
    e = h - s * s % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _decode_point(s):
    """RFC 8032 5.1.3; None when `s` is not a valid encoding."""
    P = _P
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    u = (y * y - 1) % P
    v = (_D * y * y + 1) % P
    v3 = v * v % P * v % P
    x = u * v3 % P * pow(u * v3 % P * v3 % P * v % P, (P - 5) // 8, P) % P
    vx2 = v * x % P * x % P
    if vx2 != u:
        if vx2 != P - u:
            return None
        x = x * _SQRTM1 % P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _encode_point(p):
    P = _P
    x, y, z, _ = p
    zi = pow(z, P - 2, P)
    x = x * zi % P
    y = y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _verify_py(pub, msg, sig):
    s = int.from_bytes(sig[32:], "little")
    if s >= _L:
        return False
    a = _decode_point(pub)
    if a is None:
        return False
    k = int.from_bytes(sha512(sig[:32] + pub + msg), "little") % _L
    P = _P
    neg_a = ((P - a[0]) % P, a[1], a[2], (P - a[3]) % P)
    both = _add(_B, neg_a)
    q = (0, 1, 1, 0)
    for i in range(252, -1, -1):  # s, k < L < 2**253
        q = _double(q)
        bs = (s >> i) & 1
        bk = (k >> i) & 1
        if bs:
            q = _add(q, both if bk else _B)
        elif bk:
            q = _add(q, neg_a)
    return _encode_point(q) == sig[:32]
