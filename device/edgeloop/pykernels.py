# Pure-MicroPython int8 kernels: the fallback when the _edgeloop C module is absent.
# Same ABI, same validation and bit-exact results as device/cmodule/edgeloop/el_kernels.c.
import struct
from micropython import const

_INT32_MIN = const(-2147483648)
_INT32_MAX = const(2147483647)
_MAX_DIM = const(0x1000000)

# FULLY_CONNECTED argument words (el_kernels.h)
_FC_NARGS = const(14)


def _wrap32(v):
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def srdhm(a, b):
    # gemmlowp SaturatingRoundingDoublingHighMul
    if a == _INT32_MIN and b == _INT32_MIN:
        return _INT32_MAX
    ab = a * b
    n = ab + (1 << 30) if ab >= 0 else ab + 1 - (1 << 30)
    return n >> 31 if n >= 0 else -((-n) >> 31)


def rdbypot(x, exponent):
    # gemmlowp RoundingDivideByPOT
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x, multiplier, shift):
    # TFLM MultiplyByQuantizedMultiplier (double rounding)
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return rdbypot(srdhm(_wrap32(x << left), multiplier), right)


def _check(cond, msg):
    if not cond:
        raise ValueError(msg)


def _in_range(off, length, limit):
    return off >= 0 and length >= 0 and off + length <= limit


def _dim_ok(d):
    return 1 <= d <= _MAX_DIM


def fully_connected(blob, arena, a):
    _check(len(a) == _FC_NARGS, "wrong number of argument words")
    in_off, out_off, batches, depth, units, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off, nq = a
    _check(_dim_ok(batches) and _dim_ok(depth) and _dim_ok(units), "dimension out of range")
    nb, na = len(blob), len(arena)
    in_len = batches * depth
    out_len = batches * units
    _check(_in_range(in_off, in_len, na) and _in_range(out_off, out_len, na), "activation outside the arena")
    _check(not (in_off < out_off + out_len and out_off < in_off + in_len), "input and output activations overlap")
    _check(-128 <= in_zp <= 127 and -128 <= out_zp <= 127, "zero point outside -128..127")
    _check(-128 <= lo <= hi <= 127, "activation clamp invalid")
    _check(nq == 1 or nq == units, "invalid quantization multiplier, shift or channel count")
    _check(_in_range(w_off, units * depth, nb) and (b_off == -1 or _in_range(b_off, 4 * units, nb))
           and _in_range(m_off, 4 * nq, nb) and _in_range(s_off, 4 * nq, nb), "constant data outside the blob")
    _check((b_off == -1 or b_off & 3 == 0) and m_off & 3 == 0 and s_off & 3 == 0,
           "int32 constant data not 4-byte aligned")
    for q in range(nq):
        m = struct.unpack_from("<i", blob, m_off + 4 * q)[0]
        s = struct.unpack_from("<i", blob, s_off + 4 * q)[0]
        _check(m >= 0 and -31 <= s <= 30, "invalid quantization multiplier, shift or channel count")

    for bt in range(batches):
        xo = in_off + bt * depth
        x = [(v - 256 if v > 127 else v) - in_zp for v in arena[xo:xo + depth]]
        yo = out_off + bt * units
        for c in range(units):
            wo = w_off + c * depth
            acc = 0
            k = 0
            for w in blob[wo:wo + depth]:
                if w > 127:
                    w -= 256
                acc += x[k] * w
                k += 1
            if b_off != -1:
                acc += struct.unpack_from("<i", blob, b_off + 4 * c)[0]
            q = c if nq != 1 else 0
            m = struct.unpack_from("<i", blob, m_off + 4 * q)[0]
            s = struct.unpack_from("<i", blob, s_off + 4 * q)[0]
            v = mbqm(_wrap32(acc), m, s) + out_zp
            v = lo if v < lo else (hi if v > hi else v)
            arena[yo + c] = v & 0xFF


_CRC_NIBBLE = (
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
    0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
)


def crc32(data, crc=0):
    try:
        import binascii
        return binascii.crc32(data, crc)
    except (ImportError, AttributeError):
        pass
    crc ^= 0xFFFFFFFF
    t = _CRC_NIBBLE
    for b in data:
        crc ^= b
        crc = (crc >> 4) ^ t[crc & 15]
        crc = (crc >> 4) ^ t[crc & 15]
    return crc ^ 0xFFFFFFFF
