# Viper kernels: native code compiled on the board by MicroPython's viper emitter, for firmware
# without the C module (stock ESP32 builds above all). Importing this module fails where the firmware
# has no viper emitter; backend.py then falls back to pure Python.
#
# The MAC-heavy ops (FULLY_CONNECTED, with dense or sparse weights, CONV_2D, DEPTHWISE_CONV_2D) run in viper, requantization
# included, with the same validation (pykernels.check_*) and bit-exact results as the C kernels. The
# other ops are cheap next to them and use the pure-Python kernels.
#
# Speed: the viper emitter keeps only three locals in registers, so a long kernel spills everything
# to the stack. The innermost loops therefore live in tiny functions (_dot, _dw_tap) whose hot values
# are their first arguments; a call costs ~430 instructions on a Cortex-M3, paid once per contiguous
# run (a whole filter row of a conv, a whole FULLY_CONNECTED row), against ~45 instructions per MAC.
#
# Viper ints are machine words (32-bit on the boards, 64-bit on the unix port), so the fixed-point
# multiply below is written in 16-bit limbs that never overflow either width.
import micropython
from array import array

from . import pykernels as _py

# CONV_2D-shaped argument words (el_kernels.h EL_CONV_*); FULLY_CONNECTED is mapped onto them.
_fc_as_conv = array("i", [0] * 24)
# Per-pixel int32 accumulators of DEPTHWISE_CONV_2D, grown on first use (then never reallocated).
_dw_acc = array("i", [0] * 64)


@micropython.viper
def _requant(acc: int, m: int, s: int) -> int:
    # TFLM MultiplyByQuantizedMultiplier(acc, m, s) for 0 <= m < 2^31, -31 <= s <= 30, int32 wrap.
    # (Only called from Python-level tests; the kernels inline the same code, since a viper-to-viper
    # call would box its int32 arguments on the heap.)
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    if s > 0:
        acc = (((acc << s) & wmask) ^ sbit) - sbit
    neg = acc < 0
    ua = uint(0 - acc) if neg else uint(acc)
    ub = uint(m)
    a0 = ua & 0xFFFF
    a1 = ua >> 16
    b0 = ub & 0xFFFF
    b1 = ub >> 16
    p0 = a0 * b0
    p1 = a0 * b1
    p2 = a1 * b0
    t = (p0 >> 16) + (p1 & 0xFFFF) + (p2 & 0xFFFF)
    w1 = t & 0xFFFF
    t = (t >> 16) + (p1 >> 16) + (p2 >> 16) + ((a1 * b1) << 0)
    # t now holds bits 32.. of the product (< 2^30), w1 bits 16..31; add the rounding constant
    c1 = uint(0x4000) if not neg else uint(0x3FFF)
    c0 = uint(0) if not neg else uint(0xFFFF)
    lo = (p0 & 0xFFFF) + c0
    mid = w1 + c1 + (lo >> 16)
    hi = t + (mid >> 16)
    mag = int((hi << 1) | ((mid & 0xFFFF) >> 15))
    x = 0 - mag if neg else mag
    if s < 0:
        e = 0 - s
        mask = (1 << e) - 1
        rem = x & mask
        thr = (mask >> 1) + (1 if x < 0 else 0)
        x = (x >> e) + (1 if rem > thr else 0)
    return x


@micropython.viper
def _dot(x: ptr8, w: ptr8, n: int, zp: int) -> int:
    # sum of (int8 x[i] - zp) * int8 w[i] for i < n; x and w are addresses
    acc = 0
    while n > 0:
        n -= 1
        acc += (((x[n] ^ 0x80) - 0x80) - zp) * ((w[n] ^ 0x80) - 0x80)
    return acc


@micropython.viper
def _dw_tap(acc: ptr32, x: ptr8, w: ptr8, c: int, dm: int, zp: int):
    # one depthwise tap for every output channel: acc[ci*dm + j] += (x[ci] - zp) * w[ci*dm + j]
    while c > 0:
        c -= 1
        xv = ((x[c] ^ 0x80) - 0x80) - zp
        j = dm
        o = c * dm
        while j > 0:
            j -= 1
            acc[o + j] += xv * ((w[o + j] ^ 0x80) - 0x80)


@micropython.viper
def _sp_dot(w: ptr8, n: int, x: ptr8, zp: int) -> int:
    # n bytes of (u8 column delta, i8 value) pairs at w against int8 x: sum of value * (x[column] - zp)
    acc = 0
    col = 0
    i = 0
    while i < n:
        col += w[i]
        acc += (((x[col] ^ 0x80) - 0x80) - zp) * ((w[i + 1] ^ 0x80) - 0x80)
        i += 2
    return acc


@micropython.viper
def _fc_sparse(blob, arena, p: ptr32):
    # FULLY_CONNECTED with sparse weights over validated args `p` (layout EL_FCS_*, docs/FORMAT.md
    # encoding 1): one _sp_dot call per output row, requantization inline as in _conv.
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    b32 = ptr32(blob)
    c16 = ptr16(blob)
    a8 = ptr8(arena)
    xbase = int(ptr8(arena)) + p[0]
    out_off = p[1]
    batches = p[2]
    depth = p[3]
    units = p[4]
    in_zp = ((p[5] & wmask) ^ sbit) - sbit
    out_zp = ((p[6] & wmask) ^ sbit) - sbit
    lo = ((p[7] & wmask) ^ sbit) - sbit
    hi = ((p[8] & wmask) ^ sbit) - sbit
    w_off = p[9]
    b_off = ((p[10] & wmask) ^ sbit) - sbit
    m_i = p[11] >> 2
    s_i = p[12] >> 2
    per_channel = p[13] != 1
    cnt0 = w_off >> 1
    pairs0 = int(ptr8(blob)) + w_off + 4 * ((units + 1) >> 1)
    bt = 0
    while bt < batches:
        pw = pairs0
        yo = out_off + bt * units
        r = 0
        while r < units:
            nb = c16[cnt0 + r] << 2
            acc = int(_sp_dot(pw, nb, xbase + bt * depth, in_zp))  # type: ignore[arg-type]
            pw += nb
            if b_off != -1:
                acc += ((b32[(b_off >> 2) + r] & wmask) ^ sbit) - sbit
            q = r if per_channel else 0
            m = b32[m_i + q]
            s = ((b32[s_i + q] & wmask) ^ sbit) - sbit
            # ---- MultiplyByQuantizedMultiplier, as _requant above ----
            acc = ((acc & wmask) ^ sbit) - sbit
            if s > 0:
                acc = (((acc << s) & wmask) ^ sbit) - sbit
            neg = acc < 0
            ua = uint(0 - acc) if neg else uint(acc)
            ub = uint(m)
            a0 = ua & 0xFFFF
            a1 = ua >> 16
            b0 = ub & 0xFFFF
            b1 = ub >> 16
            p0 = a0 * b0
            p1 = a0 * b1
            p2 = a1 * b0
            t = (p0 >> 16) + (p1 & 0xFFFF) + (p2 & 0xFFFF)
            w1 = t & 0xFFFF
            t = (t >> 16) + (p1 >> 16) + (p2 >> 16) + a1 * b1
            c1 = uint(0x4000) if not neg else uint(0x3FFF)
            c0 = uint(0) if not neg else uint(0xFFFF)
            lo16 = (p0 & 0xFFFF) + c0
            mid = w1 + c1 + (lo16 >> 16)
            hi32 = t + (mid >> 16)
            mag = int((hi32 << 1) | ((mid & 0xFFFF) >> 15))
            v = 0 - mag if neg else mag
            if s < 0:
                e = 0 - s
                mask = (1 << e) - 1
                rem = v & mask
                thr = (mask >> 1) + (1 if v < 0 else 0)
                v = (v >> e) + (1 if rem > thr else 0)
            v += out_zp
            if v < lo:
                v = lo
            if v > hi:
                v = hi
            a8[yo + r] = v
            r += 1
        bt += 1


@micropython.viper
def _conv(blob, arena, p: ptr32, per_channel: int):
    # CONV_2D over validated args `p` (layout EL_CONV_*); FULLY_CONNECTED arrives as a 1x1 conv.
    # ptr32 loads zero-extend on 64-bit viper: sign-extend every word that can be negative
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    b32 = ptr32(blob)
    a8 = ptr8(arena)
    xbase = int(ptr8(arena)) + p[0]
    wbase = int(ptr8(blob)) + p[20]
    out_off = p[1]
    in_h = p[2]
    in_w = p[3]
    in_c = p[4]
    out_h = p[5]
    out_w = p[6]
    out_c = p[7]
    k_h = p[8]
    k_w = p[9]
    sh = p[10]
    sw = p[11]
    dh = p[12]
    dw = p[13]
    pt = p[14]
    pl = p[15]
    in_zp = ((p[16] & wmask) ^ sbit) - sbit
    out_zp = ((p[17] & wmask) ^ sbit) - sbit
    lo = ((p[18] & wmask) ^ sbit) - sbit
    hi = ((p[19] & wmask) ^ sbit) - sbit
    b_off = ((p[21] & wmask) ^ sbit) - sbit
    m_i = p[22] >> 2
    s_i = p[23] >> 2
    row = k_w * in_c
    fsize = k_h * row
    oy = 0
    while oy < out_h:
        ox = 0
        while ox < out_w:
            yo = out_off + (oy * out_w + ox) * out_c
            ix0 = ox * sw - pl
            whole_rows = dw == 1 and ix0 >= 0 and ix0 + k_w <= in_w
            co = 0
            while co < out_c:
                acc = 0
                wco = wbase + co * fsize
                ky = 0
                while ky < k_h:
                    iy = oy * sh - pt + ky * dh
                    if iy >= 0 and iy < in_h:
                        if whole_rows:
                            # the filter row and the input row segment are contiguous (NHWC)
                            acc += int(_dot(xbase + (iy * in_w + ix0) * in_c, wco + ky * row, row, in_zp))  # type: ignore[arg-type]
                        else:
                            kx = 0
                            while kx < k_w:
                                ix = ix0 + kx * dw
                                if ix >= 0 and ix < in_w:
                                    acc += int(_dot(xbase + (iy * in_w + ix) * in_c,  # type: ignore[arg-type]
                                                    wco + (ky * k_w + kx) * in_c,  # type: ignore[arg-type]
                                                    in_c, in_zp))
                                kx += 1
                    ky += 1
                if b_off != -1:
                    acc += ((b32[(b_off >> 2) + co] & wmask) ^ sbit) - sbit
                q = co if per_channel else 0
                m = b32[m_i + q]
                s = ((b32[s_i + q] & wmask) ^ sbit) - sbit
                # ---- MultiplyByQuantizedMultiplier, as _requant above ----
                acc = ((acc & wmask) ^ sbit) - sbit
                if s > 0:
                    acc = (((acc << s) & wmask) ^ sbit) - sbit
                neg = acc < 0
                ua = uint(0 - acc) if neg else uint(acc)
                ub = uint(m)
                a0 = ua & 0xFFFF
                a1 = ua >> 16
                b0 = ub & 0xFFFF
                b1 = ub >> 16
                p0 = a0 * b0
                p1 = a0 * b1
                p2 = a1 * b0
                t = (p0 >> 16) + (p1 & 0xFFFF) + (p2 & 0xFFFF)
                w1 = t & 0xFFFF
                t = (t >> 16) + (p1 >> 16) + (p2 >> 16) + a1 * b1
                c1 = uint(0x4000) if not neg else uint(0x3FFF)
                c0 = uint(0) if not neg else uint(0xFFFF)
                lo16 = (p0 & 0xFFFF) + c0
                mid = w1 + c1 + (lo16 >> 16)
                hi32 = t + (mid >> 16)
                mag = int((hi32 << 1) | ((mid & 0xFFFF) >> 15))
                v = 0 - mag if neg else mag
                if s < 0:
                    e = 0 - s
                    mask = (1 << e) - 1
                    rem = v & mask
                    thr = (mask >> 1) + (1 if v < 0 else 0)
                    v = (v >> e) + (1 if rem > thr else 0)
                v += out_zp
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                a8[yo + co] = v
                co += 1
            ox += 1
        oy += 1


@micropython.viper
def _depthwise(blob, arena, p: ptr32, accbuf):
    # DEPTHWISE_CONV_2D over validated args `p` (layout EL_DW_*); accbuf: int32 scratch >= out_c.
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    b32 = ptr32(blob)
    a8 = ptr8(arena)
    accp = ptr32(accbuf)
    acca = int(ptr32(accbuf))
    xbase = int(ptr8(arena)) + p[0]
    wbase = int(ptr8(blob)) + p[21]
    out_off = p[1]
    in_h = p[2]
    in_w = p[3]
    in_c = p[4]
    out_h = p[5]
    out_w = p[6]
    out_c = p[7]
    k_h = p[8]
    k_w = p[9]
    sh = p[10]
    sw = p[11]
    dh = p[12]
    dw = p[13]
    pt = p[14]
    pl = p[15]
    dm = p[16]
    in_zp = ((p[17] & wmask) ^ sbit) - sbit
    out_zp = ((p[18] & wmask) ^ sbit) - sbit
    lo = ((p[19] & wmask) ^ sbit) - sbit
    hi = ((p[20] & wmask) ^ sbit) - sbit
    b_off = ((p[22] & wmask) ^ sbit) - sbit
    m_i = p[23] >> 2
    s_i = p[24] >> 2
    oy = 0
    while oy < out_h:
        ox = 0
        while ox < out_w:
            yo = out_off + (oy * out_w + ox) * out_c
            co = 0
            while co < out_c:
                accp[co] = 0
                co += 1
            ky = 0
            while ky < k_h:
                iy = oy * sh - pt + ky * dh
                if iy >= 0 and iy < in_h:
                    kx = 0
                    while kx < k_w:
                        ix = ox * sw - pl + kx * dw
                        if ix >= 0 and ix < in_w:
                            _dw_tap(acca, xbase + (iy * in_w + ix) * in_c,  # type: ignore[arg-type]
                                    wbase + (ky * k_w + kx) * out_c,  # type: ignore[arg-type]
                                    in_c, dm, in_zp)
                        kx += 1
                ky += 1
            co = 0
            while co < out_c:
                acc = ((accp[co] & wmask) ^ sbit) - sbit
                if b_off != -1:
                    acc += ((b32[(b_off >> 2) + co] & wmask) ^ sbit) - sbit
                m = b32[m_i + co]
                s = ((b32[s_i + co] & wmask) ^ sbit) - sbit
                # ---- MultiplyByQuantizedMultiplier, as _requant above ----
                acc = ((acc & wmask) ^ sbit) - sbit
                if s > 0:
                    acc = (((acc << s) & wmask) ^ sbit) - sbit
                neg = acc < 0
                ua = uint(0 - acc) if neg else uint(acc)
                ub = uint(m)
                a0 = ua & 0xFFFF
                a1 = ua >> 16
                b0 = ub & 0xFFFF
                b1 = ub >> 16
                p0 = a0 * b0
                p1 = a0 * b1
                p2 = a1 * b0
                t = (p0 >> 16) + (p1 & 0xFFFF) + (p2 & 0xFFFF)
                w1 = t & 0xFFFF
                t = (t >> 16) + (p1 >> 16) + (p2 >> 16) + a1 * b1
                c1 = uint(0x4000) if not neg else uint(0x3FFF)
                c0 = uint(0) if not neg else uint(0xFFFF)
                lo16 = (p0 & 0xFFFF) + c0
                mid = w1 + c1 + (lo16 >> 16)
                hi32 = t + (mid >> 16)
                mag = int((hi32 << 1) | ((mid & 0xFFFF) >> 15))
                v = 0 - mag if neg else mag
                if s < 0:
                    e = 0 - s
                    mask = (1 << e) - 1
                    rem = v & mask
                    thr = (mask >> 1) + (1 if v < 0 else 0)
                    v = (v >> e) + (1 if rem > thr else 0)
                v += out_zp
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                a8[yo + co] = v
                co += 1
            ox += 1
        oy += 1


def bind(opcode, blob, arena, a):
    """A kernel for this one op of a loaded model: validated once here, then called on every inference
    with a private copy of its argument words (so nothing can change them after the check)."""
    if opcode == 9:
        _py.check_fully_connected(blob, arena, a)
        p = _fc_words(a)
        per_channel = 0 if a[13] == 1 else 1
        return lambda b, ar, x: _conv(blob, arena, p, per_channel)  # type: ignore[arg-type]
    if opcode == 3:
        _py.check_conv_2d(blob, arena, a)
        p = array("i", a)
        return lambda b, ar, x: _conv(blob, arena, p, 1)  # type: ignore[arg-type]
    if opcode == 0x109:
        _py.check_fully_connected_sparse(blob, arena, a)
        p = array("i", a)
        return lambda b, ar, x: _fc_sparse(blob, arena, p)  # type: ignore[arg-type]
    if opcode == 4:
        _py.check_depthwise_conv_2d(blob, arena, a)
        p = array("i", a)
        acc = array("i", [0] * a[7])
        return lambda b, ar, x: _depthwise(blob, arena, p, acc)  # type: ignore[arg-type]
    return None


def conv_2d(blob, arena, a):
    _py.check_conv_2d(blob, arena, a)
    _conv(blob, arena, a, 1)  # type: ignore[arg-type]


def depthwise_conv_2d(blob, arena, a):
    global _dw_acc
    _py.check_depthwise_conv_2d(blob, arena, a)
    if len(_dw_acc) < a[7]:
        _dw_acc = array("i", [0] * a[7])
    _depthwise(blob, arena, a, _dw_acc)  # type: ignore[arg-type]


def _fc_words(a, p=None):
    # FULLY_CONNECTED words mapped onto CONV_2D's: [batches, 1, depth] in, 1x1 filter, [batches, 1, units] out
    if p is None:
        p = array("i", [0] * 24)
    # [batches, 1, depth] input, 1x1 filter, [batches, 1, units] output
    p[0] = a[0]
    p[1] = a[1]
    p[2] = a[2]
    p[3] = 1
    p[4] = a[3]
    p[5] = a[2]
    p[6] = 1
    p[7] = a[4]
    p[8] = p[9] = p[10] = p[11] = p[12] = p[13] = 1
    p[14] = p[15] = 0
    p[16] = a[5]
    p[17] = a[6]
    p[18] = a[7]
    p[19] = a[8]
    p[20] = a[9]
    p[21] = a[10]
    p[22] = a[11]
    p[23] = a[12]
    return p


def fully_connected(blob, arena, a):
    _py.check_fully_connected(blob, arena, a)
    _conv(blob, arena, _fc_words(a, _fc_as_conv), 0 if a[13] == 1 else 1)  # type: ignore[arg-type]


def fully_connected_sparse(blob, arena, a):
    _py.check_fully_connected_sparse(blob, arena, a)
    _fc_sparse(blob, arena, a)  # type: ignore[arg-type]


# The remaining ops cost little next to the MACs: the pure-Python kernels serve them.
average_pool_2d = _py.average_pool_2d
max_pool_2d = _py.max_pool_2d
mean = _py.mean
add = _py.add
softmax = _py.softmax
logistic = _py.logistic
crc32 = _py.crc32
