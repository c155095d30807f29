# Pure-MicroPython int8 kernels: the fallback when the _edgeloop C module is absent.
# Same ABI (blob, arena, args), same validation in the same order with the same messages, and
# bit-exact results, as the C kernels in device/cmodule/edgeloop/ (argument layouts: el_kernels.h).
# Correctness over speed. Also runs on CPython (the host tests compare it with the C host library).
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

_INT32_MIN = const(-2147483648)
_INT32_MAX = const(2147483647)
_MAX_DIM = const(0x1000000)
_MAX_GEOM = const(0xFFFF)
_MAX_EXTENT = const(0x40000000)
_POOL_MAX_AREA = const(0x800000)
_SM_MAX_DEPTH = const(4095)

# Status messages (el_kernels.c)
E_NARGS = "wrong number of argument words"
E_DIM = "dimension out of range"
E_ARENA = "activation outside the arena"
E_BLOB = "constant data outside the blob"
E_ALIGN = "int32 constant data not 4-byte aligned"
E_OVERLAP = "input and output activations overlap"
E_ZP = "zero point outside -128..127"
E_CLAMP = "activation clamp invalid"
E_QUANT = "invalid quantization multiplier, shift or channel count"
E_GEOM = "invalid stride, dilation, padding or filter size"
E_PARAM = "op parameter out of range"
E_RANGE = "values outside the range TFLM computes"
E_SPARSE = "sparse weight counts or column indices out of range"

# Argument word counts (el_kernels.h)
_FC_NARGS = const(14)
_FCS_NARGS = const(15)
_FCS_MAX_FEATURES = const(0xFFFF)
_CONV_NARGS = const(24)
_DW_NARGS = const(25)
_POOL_NARGS = const(15)
_ADD_NARGS = const(16)
_SM_NARGS = const(7)
_LOG_NARGS = const(7)
_MEAN_NARGS = const(9)


# ---- fixed point (el_fixedpoint.h), int32 wrap-around made explicit ----

def _wrap32(v):
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def srdhm(a, b):
    # gemmlowp SaturatingRoundingDoublingHighMul == floor((a*b + 2^30) / 2^31) but for MIN*MIN
    if a == _INT32_MIN and b == _INT32_MIN:
        return _INT32_MAX
    return (a * b + 0x40000000) >> 31


def rdbypot(x, exponent):
    # gemmlowp RoundingDivideByPOT
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x, multiplier, shift):
    # TFLM MultiplyByQuantizedMultiplier (double rounding)
    if shift > 0:
        return srdhm(_wrap32(x << shift), multiplier)
    return rdbypot(srdhm(x, multiplier), -shift)


def _sat_shl(x, exponent):
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return _INT32_MAX
    if x < -threshold:
        return _INT32_MIN
    return _wrap32(x << exponent)


def _rounding_half_sum(a, b):
    s = a + b
    t = s + (1 if s >= 0 else -1)
    return -((-t) >> 1) if t < 0 else t >> 1


def _exp_on_interval(a):
    # exp(a) for a in [-1/4, 0), Q0.31
    ct = 1895147668
    x = _wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_4 = rdbypot(x4, 2)
    poly = rdbypot(_wrap32(srdhm(_wrap32(x4_4 + x3), 715827883) + x2), 1)
    return _wrap32(ct + srdhm(ct, _wrap32(x + poly)))


_BARREL = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def exp_on_negative_values(a, integer_bits):
    fb = 31 - integer_bits
    quarter = 1 << (fb - 2)
    amq = _wrap32((a & (quarter - 1)) - quarter)
    result = _exp_on_interval(_sat_shl(amq, integer_bits))
    remainder = _wrap32(amq - a)
    for e in range(-2, 5):
        if integer_bits > e and remainder & (1 << (fb + e)):
            result = srdhm(result, _BARREL[e + 2])
    return _INT32_MAX if a == 0 else result


def _one_over_one_plus_x(a):
    hd = _rounding_half_sum(a, _INT32_MAX)
    x = _wrap32(1515870810 + srdhm(hd, -1010580540))
    for _ in range(3):
        x = _wrap32(x + _sat_shl(srdhm(x, _wrap32((1 << 29) - srdhm(hd, x))), 2))
    return _sat_shl(x, 1)


def logistic_fp(a, integer_bits):
    abs_input = a if a > 0 else _wrap32(-a)
    pos = _one_over_one_plus_x(exp_on_negative_values(_wrap32(-abs_input), integer_bits))
    if a == 0:
        return 1 << 30
    return pos if a > 0 else _wrap32(_INT32_MAX - pos)


def _clz32(x):
    n = 0
    while n < 32 and not (x << n) & 0x80000000:
        n += 1
    return n


# ---- validation helpers (el_common.h) ----

def _check(cond, msg):
    if not cond:
        raise ValueError(msg)


def _in_range(off, length, limit):
    return off >= 0 and length >= 0 and off + length <= limit


def _dim_ok(d):
    return 1 <= d <= _MAX_DIM


def _geom_ok(v, lo):
    return lo <= v <= _MAX_GEOM


def _overlap(a, na, b, nb):
    return a < b + nb and b < a + na


def _clamp_ok(lo, hi):
    return -128 <= lo <= hi <= 127


def _int8(v):
    return -128 <= v <= 127


def _extent_ok(out, stride, k, dilation, pad):
    return (out - 1) * stride + (k - 1) * dilation + pad <= _MAX_EXTENT


def _i32(blob, off):
    return struct.unpack_from("<i", blob, off)[0]


def _i32s(blob, off, n):
    return struct.unpack_from("<%di" % n, blob, off)


def _check_quant(blob, m_off, s_off, n):
    nb = len(blob)
    _check(_in_range(m_off, 4 * n, nb) and _in_range(s_off, 4 * n, nb), E_BLOB)
    _check(m_off & 3 == 0 and s_off & 3 == 0, E_ALIGN)
    mult = _i32s(blob, m_off, n)
    shift = _i32s(blob, s_off, n)
    for q in range(n):
        _check(mult[q] >= 0 and -31 <= shift[q] <= 30, E_QUANT)
    return mult, shift


def _check_bias(blob, b_off, n):
    if b_off == -1:
        return None
    _check(_in_range(b_off, 4 * n, len(blob)), E_BLOB)
    _check(b_off & 3 == 0, E_ALIGN)
    return _i32s(blob, b_off, n)


def _s8(buf, off, n):
    # int8 values of buf[off:off + n] as a list
    return [v - 256 if v > 127 else v for v in buf[off:off + n]]


def _store(arena, off, v, lo, hi):
    v = lo if v < lo else (hi if v > hi else v)
    arena[off] = v & 0xFF


def _check_io(arena, in_off, in_len, out_off, out_len, in_zp, out_zp, lo, hi):
    # the arena, zero point and clamp checks every MAC kernel makes, in the C kernels' order
    na = len(arena)
    _check(_in_range(in_off, in_len, na) and _in_range(out_off, out_len, na), E_ARENA)
    _check(not _overlap(in_off, in_len, out_off, out_len), E_OVERLAP)
    _check(_int8(in_zp) and _int8(out_zp), E_ZP)
    _check(_clamp_ok(lo, hi), E_CLAMP)


def _check_weights(blob, w_off, w_len, b_off, m_off, s_off, nb, nq):
    # weights in the blob, then bias (nb values) and nq multipliers/shifts: (bias, mult, shift)
    _check(_in_range(w_off, w_len, len(blob)), E_BLOB)
    bias = _check_bias(blob, b_off, nb)
    mult, shift = _check_quant(blob, m_off, s_off, nq)
    return bias, mult, shift


def _requant(acc, m, s, zp, lo, hi):
    v = _wrap32(mbqm(_wrap32(acc), m, s) + zp)
    return lo if v < lo else (hi if v > hi else v)


# ---- FULLY_CONNECTED ----

def check_fully_connected(blob, arena, a):
    # Every check of the C kernel, in its order; returns the constants the computation reads.
    _check(len(a) == _FC_NARGS, E_NARGS)
    in_off, out_off, batches, depth, units, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off, nq = a
    _check(_dim_ok(batches) and _dim_ok(depth) and _dim_ok(units), E_DIM)
    _check_io(arena, in_off, batches * depth, out_off, batches * units, in_zp, out_zp, lo, hi)
    _check(nq == 1 or nq == units, E_QUANT)
    return _check_weights(blob, w_off, units * depth, b_off, m_off, s_off, units, nq)


def fully_connected(blob, arena, a):
    bias, mult, shift = check_fully_connected(blob, arena, a)
    in_off, out_off, batches, depth, units, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off, nq = a
    for bt in range(batches):
        x = [v - in_zp for v in _s8(arena, in_off + bt * depth, depth)]
        yo = out_off + bt * units
        for c in range(units):
            acc = 0
            k = 0
            for w in blob[w_off + c * depth:w_off + (c + 1) * depth]:
                if w > 127:
                    w -= 256
                acc += x[k] * w
                k += 1
            if bias is not None:
                acc += bias[c]
            q = c if nq != 1 else 0
            arena[yo + c] = _requant(acc, mult[q], shift[q], out_zp, lo, hi) & 0xFF


# ---- FULLY_CONNECTED, sparse weights (docs/FORMAT.md encoding 1; el_fc_sparse.c) ----

def _check_sparse_stream(blob, w_off, w_len, units, depth):
    # counts add up to the stream's length; no row's columns (the sums of its deltas) reach depth
    head = 4 * ((units + 1) // 2)
    _check(w_len >= head, E_SPARSE)
    counts = struct.unpack_from("<%dH" % units, blob, w_off)
    _check(head + 4 * sum(counts) == w_len, E_SPARSE)
    p = w_off + head
    for nw in counts:
        col = 0
        for i in range(p, p + 4 * nw, 2):
            col += blob[i]
        _check(col < depth, E_SPARSE)
        p += 4 * nw
    return counts


def check_fully_connected_sparse(blob, arena, a):
    _check(len(a) == _FCS_NARGS, E_NARGS)
    in_off, out_off, batches, depth, units, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off, nq, w_len = a
    _check(_dim_ok(batches) and _dim_ok(depth) and _dim_ok(units) and depth <= _FCS_MAX_FEATURES
           and units <= _FCS_MAX_FEATURES, E_DIM)
    _check_io(arena, in_off, batches * depth, out_off, batches * units, in_zp, out_zp, lo, hi)
    _check(nq == 1 or nq == units, E_QUANT)
    _check(_in_range(w_off, w_len, len(blob)), E_BLOB)
    _check(w_off & 3 == 0, E_ALIGN)
    bias, mult, shift = _check_weights(blob, w_off, w_len, b_off, m_off, s_off, units, nq)
    counts = _check_sparse_stream(blob, w_off, w_len, units, depth)
    return bias, mult, shift, counts


def fully_connected_sparse(blob, arena, a):
    bias, mult, shift, counts = check_fully_connected_sparse(blob, arena, a)
    in_off, out_off, batches, depth, units, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off, nq, w_len = a
    pairs = w_off + 4 * ((units + 1) // 2)
    for bt in range(batches):
        x0 = in_off + bt * depth
        yo = out_off + bt * units
        p = pairs
        for c in range(units):
            acc = 0
            col = x0
            end = p + 4 * counts[c]
            for i in range(p, end, 2):
                col += blob[i]
                w = blob[i + 1]
                if w:  # escape and padding pairs carry 0
                    xv = arena[col]
                    acc += ((xv - 256 if xv > 127 else xv) - in_zp) * (w - 256 if w > 127 else w)
            p = end
            if bias is not None:
                acc += bias[c]
            q = c if nq != 1 else 0
            arena[yo + c] = _requant(acc, mult[q], shift[q], out_zp, lo, hi) & 0xFF


# ---- CONV_2D / DEPTHWISE_CONV_2D ----

def _check_conv_geometry(a):
    for i in range(2, 8):
        _check(_dim_ok(a[i]), E_DIM)
    _check(_geom_ok(a[8], 1) and _geom_ok(a[9], 1) and _geom_ok(a[10], 1) and _geom_ok(a[11], 1)
           and _geom_ok(a[12], 1) and _geom_ok(a[13], 1) and _geom_ok(a[14], 0) and _geom_ok(a[15], 0),
           E_GEOM)
    _check(_extent_ok(a[5], a[10], a[8], a[12], a[14]) and _extent_ok(a[6], a[11], a[9], a[13], a[15]),
           E_GEOM)


def check_conv_2d(blob, arena, a):
    _check(len(a) == _CONV_NARGS, E_NARGS)
    _check_conv_geometry(a)
    (in_off, out_off, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, sh, sw, dh, dw, pt, pl,
     in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off) = a
    _check_io(arena, in_off, in_h * in_w * in_c, out_off, out_h * out_w * out_c, in_zp, out_zp, lo, hi)
    return _check_weights(blob, w_off, out_c * k_h * k_w * in_c, b_off, m_off, s_off, out_c, out_c)


def _taps(oy, ox, a, fstride):
    # (filter offset, input offset) of each in-bounds tap of output pixel (oy, ox): the rest are
    # skipped, as TFLM does; fstride is the filter's stride per tap (in_c for CONV_2D, out_c for DEPTHWISE)
    in_h, in_w, in_c, k_h, k_w, sh, sw, dh, dw, pt, pl = a[2], a[3], a[4], a[8], a[9], a[10], a[11], a[12], \
        a[13], a[14], a[15]
    iy0 = oy * sh - pt
    ix0 = ox * sw - pl
    taps = []
    for ky in range(k_h):
        iy = iy0 + ky * dh
        if 0 <= iy < in_h:
            for kx in range(k_w):
                ix = ix0 + kx * dw
                if 0 <= ix < in_w:
                    taps.append(((ky * k_w + kx) * fstride, (iy * in_w + ix) * in_c))
    return taps


def conv_2d(blob, arena, a):
    bias, mult, shift = check_conv_2d(blob, arena, a)
    (in_off, out_off, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, sh, sw, dh, dw, pt, pl,
     in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off) = a
    in_len = in_h * in_w * in_c
    fsize = k_h * k_w * in_c
    x = [v - in_zp for v in _s8(arena, in_off, in_len)]
    for oy in range(out_h):
        for ox in range(out_w):
            taps = _taps(oy, ox, a, in_c)
            yo = out_off + (oy * out_w + ox) * out_c
            for co in range(out_c):
                acc = 0 if bias is None else bias[co]
                wbase = w_off + co * fsize
                for fo, xo in taps:
                    ws = _s8(blob, wbase + fo, in_c)
                    for ci in range(in_c):
                        acc += x[xo + ci] * ws[ci]
                arena[yo + co] = _requant(acc, mult[co], shift[co], out_zp, lo, hi) & 0xFF


def check_depthwise_conv_2d(blob, arena, a):
    _check(len(a) == _DW_NARGS, E_NARGS)
    _check_conv_geometry(a)
    (in_off, out_off, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, sh, sw, dh, dw, pt, pl,
     dm, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off) = a
    _check(_dim_ok(dm) and in_c * dm == out_c, E_DIM)
    _check_io(arena, in_off, in_h * in_w * in_c, out_off, out_h * out_w * out_c, in_zp, out_zp, lo, hi)
    return _check_weights(blob, w_off, k_h * k_w * out_c, b_off, m_off, s_off, out_c, out_c)


def depthwise_conv_2d(blob, arena, a):
    bias, mult, shift = check_depthwise_conv_2d(blob, arena, a)
    (in_off, out_off, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, sh, sw, dh, dw, pt, pl,
     dm, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off) = a
    in_len = in_h * in_w * in_c
    x = [v - in_zp for v in _s8(arena, in_off, in_len)]
    w = _s8(blob, w_off, k_h * k_w * out_c)
    for oy in range(out_h):
        for ox in range(out_w):
            taps = _taps(oy, ox, a, out_c)
            yo = out_off + (oy * out_w + ox) * out_c
            for co in range(out_c):
                ci = co // dm
                acc = 0 if bias is None else bias[co]
                for fo, xo in taps:
                    acc += x[xo + ci] * w[fo + co]
                arena[yo + co] = _requant(acc, mult[co], shift[co], out_zp, lo, hi) & 0xFF


# ---- AVERAGE_POOL_2D / MAX_POOL_2D ----

def _pool(arena, a, average):
    _check(len(a) == _POOL_NARGS, E_NARGS)
    in_off, out_off, in_h, in_w, c, out_h, out_w, sh, sw, f_h, f_w, pt, pl, lo, hi = a
    for d in (in_h, in_w, c, out_h, out_w):
        _check(_dim_ok(d), E_DIM)
    _check(_geom_ok(sh, 1) and _geom_ok(sw, 1) and _geom_ok(f_h, 1) and _geom_ok(f_w, 1)
           and _geom_ok(pt, 0) and _geom_ok(pl, 0)
           and _extent_ok(out_h, sh, f_h, 1, pt) and _extent_ok(out_w, sw, f_w, 1, pl), E_GEOM)
    if average:
        _check(f_h * f_w <= _POOL_MAX_AREA and pt < f_h and pl < f_w
               and (out_h - 1) * sh - pt < in_h and (out_w - 1) * sw - pl < in_w, E_GEOM)
    in_len = in_h * in_w * c
    out_len = out_h * out_w * c
    na = len(arena)
    _check(_in_range(in_off, in_len, na) and _in_range(out_off, out_len, na), E_ARENA)
    _check(not _overlap(in_off, in_len, out_off, out_len), E_OVERLAP)
    _check(_clamp_ok(lo, hi), E_CLAMP)

    x = _s8(arena, in_off, in_len)
    yo = out_off
    for oy in range(out_h):
        iy0 = oy * sh - pt
        fy0 = -iy0 if iy0 < 0 else 0
        fy1 = min(f_h, in_h - iy0)
        for ox in range(out_w):
            ix0 = ox * sw - pl
            fx0 = -ix0 if ix0 < 0 else 0
            fx1 = min(f_w, in_w - ix0)
            for ch in range(c):
                if average:
                    acc = 0
                    count = 0
                    for fy in range(fy0, fy1):
                        r = (iy0 + fy) * in_w
                        for fx in range(fx0, fx1):
                            acc += x[(r + ix0 + fx) * c + ch]
                            count += 1
                    # C division truncates towards zero
                    if acc > 0:
                        v = (acc + count // 2) // count
                    else:
                        v = -((-(acc - count // 2)) // count)
                else:
                    v = -128
                    for fy in range(fy0, fy1):
                        r = (iy0 + fy) * in_w
                        for fx in range(fx0, fx1):
                            t = x[(r + ix0 + fx) * c + ch]
                            if t > v:
                                v = t
                _store(arena, yo, v, lo, hi)
                yo += 1


def average_pool_2d(blob, arena, a):
    _pool(arena, a, True)


def max_pool_2d(blob, arena, a):
    _pool(arena, a, False)


# ---- ADD ----

def add(blob, arena, a):
    _check(len(a) == _ADD_NARGS, E_NARGS)
    in1, in2, out, size, zp1, zp2, zpo, ls, m1, s1, m2, s2, mo, so, lo, hi = a
    _check(_dim_ok(size), E_DIM)
    na = len(arena)
    _check(_in_range(in1, size, na) and _in_range(in2, size, na) and _in_range(out, size, na), E_ARENA)
    _check(not _overlap(in1, size, out, size) and not _overlap(in2, size, out, size), E_OVERLAP)
    _check(_int8(zp1) and _int8(zp2) and _int8(zpo), E_ZP)
    _check(_clamp_ok(lo, hi), E_CLAMP)
    _check(0 <= ls <= 31 and m1 >= 0 and m2 >= 0 and mo >= 0 and -31 <= s1 <= 0 and -31 <= s2 <= 0
           and -31 <= so <= 0, E_QUANT)
    x1 = _s8(arena, in1, size)
    x2 = _s8(arena, in2, size)
    for i in range(size):
        v1 = rdbypot(srdhm(_wrap32((x1[i] - zp1) << ls), m1), -s1)
        v2 = rdbypot(srdhm(_wrap32((x2[i] - zp2) << ls), m2), -s2)
        v = _wrap32(rdbypot(srdhm(_wrap32(v1 + v2), mo), -so) + zpo)
        _store(arena, out + i, v, lo, hi)


# ---- SOFTMAX ----

def softmax(blob, arena, a):
    _check(len(a) == _SM_NARGS, E_NARGS)
    in_off, out_off, rows, depth, mult, ls, diff_min = a
    _check(_dim_ok(rows) and _dim_ok(depth) and depth <= _SM_MAX_DEPTH, E_DIM)
    n = rows * depth
    na = len(arena)
    _check(_in_range(in_off, n, na) and _in_range(out_off, n, na), E_ARENA)
    _check(not _overlap(in_off, n, out_off, n), E_OVERLAP)
    _check(mult >= 0 and 0 <= ls <= 31, E_QUANT)
    _check(diff_min <= 0, E_PARAM)
    exps = {}  # type: dict  # diff -> exp(scaled diff), Q0.31: at most 256 distinct differences
    for r in range(rows):
        x = _s8(arena, in_off + r * depth, depth)
        mx = max(x)
        if mx < -128:
            mx = -128
        total = 0
        for v in x:
            d = v - mx
            if d >= diff_min:
                e = exps.get(d)
                if e is None:
                    e = exp_on_negative_values(srdhm(_wrap32(d << ls), mult), 5)
                    exps[d] = e
                total = _wrap32(total + rdbypot(e, 12))
        _check(total > 0, E_RANGE)
        hpo = _clz32(total)
        nbou = 12 - hpo
        scale = _one_over_one_plus_x(_wrap32(((total << hpo) & 0xFFFFFFFF) - 0x80000000))
        exponent = nbou + 23
        _check(0 <= exponent <= 31, E_RANGE)
        o = out_off + r * depth
        for c in range(depth):
            d = x[c] - mx
            v = -128
            if d >= diff_min:
                v = rdbypot(srdhm(scale, exps[d]), exponent) - 128
                v = -128 if v < -128 else (127 if v > 127 else v)
            arena[o + c] = v & 0xFF


# ---- LOGISTIC ----

def _logistic_one(x, zp, radius, mult, shift):
    inp = x - zp
    if inp <= -radius:
        return -128
    if inp >= radius:
        return 127
    q0 = logistic_fp(mbqm(inp, mult, shift), 4)
    v = rdbypot(q0, 23) - 128
    return -128 if v < -128 else (127 if v > 127 else v)


def logistic(blob, arena, a):
    _check(len(a) == _LOG_NARGS, E_NARGS)
    in_off, out_off, size, zp, radius, mult, shift = a
    _check(_dim_ok(size), E_DIM)
    na = len(arena)
    _check(_in_range(in_off, size, na) and _in_range(out_off, size, na), E_ARENA)
    _check(not _overlap(in_off, size, out_off, size), E_OVERLAP)
    _check(_int8(zp), E_ZP)
    _check(radius >= 0, E_PARAM)
    _check(mult >= 0 and -31 <= shift <= 30, E_QUANT)
    table = {}  # type: dict
    for i in range(size):
        u = arena[in_off + i]
        v = table.get(u)
        if v is None:
            v = _logistic_one(u - 256 if u > 127 else u, zp, radius, mult, shift) & 0xFF
            table[u] = v
        arena[out_off + i] = v


# ---- MEAN over H and W ----

def mean(blob, arena, a):
    _check(len(a) == _MEAN_NARGS, E_NARGS)
    in_off, out_off, h, w, c, in_zp, out_zp, mult, shift = a
    _check(_dim_ok(h) and _dim_ok(w) and _dim_ok(c), E_DIM)
    n = h * w
    na = len(arena)
    _check(_in_range(in_off, n * c, na) and _in_range(out_off, c, na), E_ARENA)
    _check(not _overlap(in_off, n * c, out_off, c), E_OVERLAP)
    _check(_int8(in_zp) and _int8(out_zp), E_ZP)
    _check(mult >= 0 and -31 <= shift <= 30, E_QUANT)
    x = _s8(arena, in_off, n * c)
    for ch in range(c):
        s = 0
        for i in range(ch, n * c, c):
            s += x[i]
        v = _wrap32(mbqm(_wrap32(s - in_zp * n), mult, shift) + out_zp)
        _store(arena, out_off + ch, v, -128, 127)


# ---- CRC-32 ----

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
