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
# Requantization is one function too (_requant_store), called once per output pixel / FC row.
#
# Allocation-free: viper-to-viper calls box their arguments as objects, which costs nothing for
# objects and small ints (addresses and int8 sums included); the bound kernel is a closure of two values.
#
# Viper ints are machine words (32-bit on the boards, 64-bit on the unix port), so the fixed-point
# multiply below is written in 16-bit limbs that never overflow either width.
import micropython
from array import array
from micropython import const

from . import pykernels as _py

# Requantization words (`rq`, one array per bound op): the kernels accumulate a run of outputs' int32
# sums into rq[_RQ:], set rq[_YO], then one _requant_store call requantizes and stores the whole run.
_YO = const(0)  # arena offset of the run's first output
_N = const(1)  # outputs per run (out_c, or units)
_ZP = const(2)  # output zero point
_LO = const(3)  # activation clamp
_HI = const(4)
_B = const(5)  # int32 word index of the bias in the blob, or -1
_M = const(6)  # word index of the multipliers
_S = const(7)  # word index of the shifts
_PC = const(8)  # 1: one multiplier/shift per output; 0: one for all
_RQ = const(9)  # first accumulator


def _rq_words(n, out_zp, lo, hi, b_off, m_off, s_off, per_channel):
    rq = array("i", [0] * (_RQ + n))
    rq[_N] = n
    rq[_ZP] = out_zp
    rq[_LO] = lo
    rq[_HI] = hi
    rq[_B] = -1 if b_off == -1 else b_off >> 2
    rq[_M] = m_off >> 2
    rq[_S] = s_off >> 2
    rq[_PC] = per_channel
    return rq


@micropython.viper
def _requant_store(k):
    # arena[yo + i] = clamp(MultiplyByQuantizedMultiplier(acc[i] + bias[i], m, s) + zp) for i < n.
    # TFLM's fixed-point multiply for 0 <= m < 2^31, -31 <= s <= 30 with int32 wrap, in 16-bit limbs.
    # k is the kernel's (blob, arena, p, rq) tuple: one object argument, nothing boxed. One call per
    # pixel / FC row. ptr32 loads zero-extend on 64-bit viper: words that can be negative are
    # sign-extended.
    v = 0  # the first three locals live in registers: the loop's hottest
    acc = 0
    t = uint(0)
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    rq = ptr32(k[3])
    b32 = ptr32(k[0])
    a8 = ptr8(k[1])
    yo = rq[_YO]
    n = rq[_N]
    out_zp = ((rq[_ZP] & wmask) ^ sbit) - sbit
    lo = ((rq[_LO] & wmask) ^ sbit) - sbit
    hi = ((rq[_HI] & wmask) ^ sbit) - sbit
    b_i = ((rq[_B] & wmask) ^ sbit) - sbit
    m_i = rq[_M]
    s_i = rq[_S]
    pc = rq[_PC]
    co = 0
    while co < n:
        acc = rq[_RQ + co]
        if b_i != -1:
            acc += b32[b_i + co]
        q = co if pc else 0
        m = b32[m_i + q]
        s = ((b32[s_i + q] & wmask) ^ sbit) - sbit
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
        # t holds bits 32.. of the product (< 2^30), w1 bits 16..31; add the rounding constant
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


# The kernels take one tuple (blob, arena, p, rq): p the validated argument words, rq as above.


@micropython.viper
def _fc_sparse(k):
    # FULLY_CONNECTED with sparse weights (layout EL_FCS_*, docs/FORMAT.md encoding 1): one _sp_dot
    # call per output row, one _requant_store per batch row.
    r = 0  # with k, the first locals live in registers: the per-row ones
    pw = 0
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    blob = k[0]
    arena = k[1]
    p = ptr32(k[2])
    rq = ptr32(k[3])
    c16 = ptr16(blob)
    xbase = int(ptr8(arena)) + p[0]
    out_off = p[1]
    batches = p[2]
    depth = p[3]
    units = p[4]
    in_zp = ((p[5] & wmask) ^ sbit) - sbit
    cnt0 = p[9] >> 1
    pairs0 = int(ptr8(blob)) + p[9] + 4 * ((units + 1) >> 1)
    bt = 0
    while bt < batches:
        pw = pairs0
        r = 0
        while r < units:
            nb = c16[cnt0 + r] << 2
            rq[_RQ + r] = int(_sp_dot(pw, nb, xbase + bt * depth, in_zp))  # type: ignore[arg-type]
            pw += nb
            r += 1
        rq[_YO] = out_off + bt * units
        _requant_store(k)
        bt += 1


@micropython.viper
def _conv(k):
    # CONV_2D (layout EL_CONV_*); FULLY_CONNECTED arrives as a 1x1 conv. One _requant_store per pixel.
    acc = 0  # with k, the first locals live in registers: the per-output ones
    ky = 0
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    blob = k[0]
    arena = k[1]
    p = ptr32(k[2])
    rq = ptr32(k[3])
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
    row = k_w * in_c
    fsize = k_h * row
    oy = 0
    while oy < out_h:
        ox = 0
        while ox < out_w:
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
                rq[_RQ + co] = acc
                co += 1
            rq[_YO] = out_off + (oy * out_w + ox) * out_c
            _requant_store(k)
            ox += 1
        oy += 1


@micropython.viper
def _depthwise(k):
    # DEPTHWISE_CONV_2D (layout EL_DW_*): _dw_tap adds each in-bounds tap into rq's accumulators,
    # one _requant_store per pixel.
    wmask = int(0xFFFFFFFF)
    sbit = int(0x80000000)
    blob = k[0]
    arena = k[1]
    p = ptr32(k[2])
    rq = ptr32(k[3])
    acca = int(rq) + 4 * _RQ
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
    oy = 0
    while oy < out_h:
        ox = 0
        while ox < out_w:
            co = 0
            while co < out_c:
                rq[_RQ + co] = 0
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
            rq[_YO] = out_off + (oy * out_w + ox) * out_c
            _requant_store(k)
            ox += 1
        oy += 1


def _fc_words(a):
    # FULLY_CONNECTED words mapped onto CONV_2D's: [batches, 1, depth] in, 1x1 filter, [batches, 1, units] out
    p = array("i", [0] * 24)
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


def _context(opcode, blob, arena, a):
    # (kernel, (blob, arena, private argument words, requantization words)) for a validated op
    if opcode == 9 or opcode == 0x109:
        # in_off, out_off, batches, depth, units, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off, nq
        rq = _rq_words(a[4], a[6], a[7], a[8], a[10], a[11], a[12], 0 if a[13] == 1 else 1)
        if opcode == 9:
            return _conv, (blob, arena, _fc_words(a), rq)
        return _fc_sparse, (blob, arena, array("i", a), rq)
    if opcode == 3:
        return _conv, (blob, arena, array("i", a), _rq_words(a[7], a[17], a[18], a[19], a[21], a[22], a[23], 1))
    return _depthwise, (blob, arena, array("i", a), _rq_words(a[7], a[18], a[19], a[20], a[22], a[23], a[24], 1))


def bind(opcode, blob, arena, a):
    """A kernel for this one op of a loaded model: validated once here, then called on every inference
    with a private copy of its argument words (so nothing can change them after the check)."""
    check = _CHECKS.get(opcode)
    if check is None:
        return None
    check(blob, arena, a)
    kernel, k = _context(opcode, blob, arena, a)
    # two closed-over values: a closure call with more than 5 (closed + passed) arguments puts them
    # on the heap
    return lambda b, ar, x: kernel(k)


_CHECKS = {9: _py.check_fully_connected, 0x109: _py.check_fully_connected_sparse, 3: _py.check_conv_2d,
           4: _py.check_depthwise_conv_2d}


def _run(opcode, blob, arena, a):
    # the module-level kernels validate on every call, as the C ones do (and allocate their words)
    _CHECKS[opcode](blob, arena, a)
    kernel, k = _context(opcode, blob, arena, a)
    kernel(k)


def fully_connected(blob, arena, a):
    _run(9, blob, arena, a)


def fully_connected_sparse(blob, arena, a):
    _run(0x109, blob, arena, a)


def conv_2d(blob, arena, a):
    _run(3, blob, arena, a)


def depthwise_conv_2d(blob, arena, a):
    _run(4, blob, arena, a)


# The remaining ops cost little next to the MACs: the pure-Python kernels serve them.
average_pool_2d = _py.average_pool_2d
max_pool_2d = _py.max_pool_2d
mean = _py.mean
add = _py.add
softmax = _py.softmax
logistic = _py.logistic
crc32 = _py.crc32
