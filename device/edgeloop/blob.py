# Device-side reader of the .elm blob (docs/FORMAT.md). Validates every field before anything uses it
# and turns each op into the flat int32 argument array the kernels take. Errors: ValueError("...").
import struct
from array import array
from micropython import const

from . import backend

FORMAT_VERSION = const(1)
_HEADER_SIZE = const(32)
_SECTION_SIZE = const(16)
_TENSOR_SIZE = const(28)
_REQUIRED = const(1)
_TENSOR_CONST = const(1)
_FEATURE_SPARSE = const(1)  # format 1.1: some constant uses weight encoding 1
_KNOWN_FEATURES = const(1)
_ENC_SPARSE = const(1)
_FCS_NARGS = const(15)
# edgeloop's own kernel codes (above the TFLite builtin codes): FULLY_CONNECTED or a 1x1 CONV_2D with
# sparse weights (backend.KERNELS)
FC_SPARSE = const(0x109)
_INT8 = const(1)
_INT32 = const(2)
_ADD = const(0)
_AVERAGE_POOL_2D = const(1)
_CONV_2D = const(3)
_DEPTHWISE_CONV_2D = const(4)
_FULLY_CONNECTED = const(9)
_LOGISTIC = const(14)
_MAX_POOL_2D = const(17)
_SOFTMAX = const(25)
_MEAN = const(40)
_OP_NAMES = {0: "ADD", 1: "AVERAGE_POOL_2D", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 9: "FULLY_CONNECTED",
             14: "LOGISTIC", 17: "MAX_POOL_2D", 22: "RESHAPE", 25: "SOFTMAX", 40: "MEAN"}


def _fail(msg):
    raise ValueError(msg)


class Tensor:
    # One tensor record; `offset` is absolute in the blob (constants) or in the arena (activations).
    __slots__ = ("dtype", "shape", "const", "scale", "zero_point", "offset", "nbytes", "enc")

    def __init__(self, dtype, shape, const_, scale, zero_point, offset, nbytes, enc=0):
        self.enc = enc  # weight encoding: 0 dense, 1 sparse rows (nbytes is then the stream's length)
        self.dtype = dtype
        self.shape = shape
        self.const = const_
        self.scale = scale
        self.zero_point = zero_point
        self.offset = offset
        self.nbytes = nbytes


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def parse(buf):
    """Validate `buf` (bytes-like) and return a dict describing the model."""
    n = len(buf)
    if n < _HEADER_SIZE:
        _fail("truncated: %d bytes is shorter than the header" % n)
    magic = bytes(buf[0:4])
    version, hsize, total, crc, features, model_id, model_version, nsec = struct.unpack_from("<HHIIIIIH", buf, 4)
    if magic != b"ELMB":
        _fail("bad magic %r: not an edgeloop model blob" % magic)
    if version > FORMAT_VERSION:
        _fail("format version %d needs a newer runtime (this one reads %d)" % (version, FORMAT_VERSION))
    if version < 1 or hsize < _HEADER_SIZE:
        _fail("invalid header")
    if total != n:
        _fail("truncated or padded: header says %d bytes, got %d" % (total, n))
    if backend.crc32(memoryview(buf)[16:]) != crc:
        _fail("CRC mismatch: the blob is corrupt")
    if features & ~_KNOWN_FEATURES:
        _fail("needs features 0x%x this runtime does not have" % (features & ~_KNOWN_FEATURES))
    table_end = hsize + _SECTION_SIZE * nsec
    if table_end > n:
        _fail("section table runs past the end of the blob")
    sec = {}
    spans = []
    for i in range(nsec):
        tag, flags, off, length = struct.unpack_from("<4sIII", buf, hsize + i * _SECTION_SIZE)
        if off & 3 or off < table_end or off + length > n:
            _fail("section %r out of bounds or unaligned" % tag)
        if tag in sec:
            _fail("duplicate section %r" % tag)
        if tag in (b"GRPH", b"TENS", b"OPS ", b"DATA", b"META", b"SELF"):
            sec[tag] = (off, length)
        elif flags & _REQUIRED:
            _fail("unknown required section %r: needs a newer runtime" % tag)
        spans.append((off, off + length))
    spans.sort()
    for i in range(1, len(spans)):
        if spans[i][0] < spans[i - 1][1]:
            _fail("sections overlap")
    for tag in (b"GRPH", b"TENS", b"OPS ", b"DATA"):
        if tag not in sec:
            _fail("missing required section %r" % tag)

    g_off, g_len = sec[b"GRPH"]
    if g_len < 20:
        _fail("GRPH section too short")
    arena_size, n_in, n_out = struct.unpack_from("<III", buf, g_off)
    if n_in != 1 or n_out != 1 or g_len < 20:
        _fail("format v1 needs one input and one output")
    in_idx, out_idx = struct.unpack_from("<II", buf, g_off + 12)

    tensors = _parse_tensors(buf, sec[b"TENS"], sec[b"DATA"], arena_size, features)
    extent = 0
    for t in tensors:
        if not t.const and t.offset + t.nbytes > extent:
            extent = t.offset + t.nbytes
    if arena_size != (extent + 3) & ~3:
        _fail("arena size %d does not match the activations' extent %d" % (arena_size, extent))
    for idx in (in_idx, out_idx):
        if idx >= len(tensors) or tensors[idx].const:
            _fail("graph input/output %d is not an activation tensor" % idx)
    ops, flow = _parse_ops(buf, sec[b"OPS "], tensors)
    _check_dataflow(flow, tensors[in_idx], tensors[out_idx])
    self_test = sec.get(b"SELF")
    if self_test is not None:
        s_off, s_len = self_test
        n_i, n_o = struct.unpack_from("<II", buf, s_off) if s_len >= 8 else (-1, -1)
        if n_i != tensors[in_idx].nbytes or n_o != tensors[out_idx].nbytes or s_len != 8 + n_i + n_o:
            _fail("SELF section does not match the model's input/output sizes")
        self_test = (s_off + 8, s_off + 8 + n_i)  # offsets of the input and the expected output
    return {"model_id": model_id, "model_version": model_version, "arena_size": arena_size,
            "tensors": tensors, "ops": ops, "input": tensors[in_idx], "output": tensors[out_idx],
            "meta": sec.get(b"META"), "self_test": self_test}


def _check_dataflow(flow, t_in, t_out):
    # Every op reads activations already written; something writes the graph output. Views (reshapes)
    # share arena bytes, so bytes are tracked by offset.
    written = [t_in.offset]
    for reads, write in flow:
        for r in reads:
            if r not in written:
                _fail("an op reads an activation before anything writes it")
        written.append(write)
    if t_out.offset not in written:
        _fail("no op writes the graph output")


def _check_sparse(buf, i, off, nbytes, shape):
    # encoding 1 (docs/FORMAT.md): u16 row word counts, then (u8 delta, i8 value) pairs; the counts add
    # up to nbytes and no row's columns (the running sum of its deltas) reach K
    n = shape[0]
    k = _size(shape) // n
    if k > 0xFFFF or n > 0xFFFF:
        _fail("tensor %d: sparse weights need at most 65535 rows and columns" % i)
    head = 4 * ((n + 1) // 2)
    if nbytes < head:
        _fail("tensor %d: sparse weights too short for their row counts" % i)
    counts = struct.unpack_from("<%dH" % n, buf, off)
    if head + 4 * sum(counts) != nbytes:
        _fail("tensor %d: sparse row counts do not match the stream length" % i)
    p = off + head
    for r in range(n):
        col = 0
        for j in range(p, p + 4 * counts[r], 2):
            col += buf[j]
        if col >= k:
            _fail("tensor %d: sparse row %d reaches column %d of %d" % (i, r, col, k))
        p += 4 * counts[r]


def _parse_tensors(buf, tens, data, arena_size, features):
    off, length = tens
    if length < 4:
        _fail("TENS section too short")
    count = struct.unpack_from("<I", buf, off)[0]
    if 4 + count * _TENSOR_SIZE > length:
        _fail("TENS section truncated: %d tensors do not fit" % count)
    d0, d1 = data[0], data[0] + data[1]
    out = []
    for i in range(count):
        dt, ndim, flags, enc, a, b, c, d, scale, zp, t_off, nbytes = struct.unpack_from(
            "<BBBB4HfiII", buf, off + 4 + i * _TENSOR_SIZE)
        if dt != _INT8 and dt != _INT32:
            _fail("tensor %d: unknown dtype code %d" % (i, dt))
        if not 1 <= ndim <= 4:
            _fail("tensor %d: rank %d not in 1..4" % (i, ndim))
        shape = (a, b, c, d)[:ndim]
        if min(a, b, c, d) < 1:
            _fail("tensor %d: zero dimension" % i)
        is_const = bool(flags & _TENSOR_CONST)
        if enc:
            if enc != _ENC_SPARSE:
                _fail("tensor %d: unknown weight encoding %d: needs a newer runtime" % (i, enc))
            if not features & _FEATURE_SPARSE:
                _fail("tensor %d: sparse weights without the header's feature bit" % i)
            if not is_const or dt != _INT8 or ndim < 2:
                _fail("tensor %d: only constant int8 weights of rank >= 2 can be sparse" % i)
        elif nbytes != _size(shape) * (1 if dt == _INT8 else 4):
            _fail("tensor %d: %d bytes does not match its shape" % (i, nbytes))
        if is_const:
            if t_off & 3 or t_off < d0 or t_off + nbytes > d1:
                _fail("tensor %d: constant data outside DATA or unaligned" % i)
            if enc:
                _check_sparse(buf, i, t_off, nbytes, shape)
        else:
            if dt != _INT8 or not -128 <= zp <= 127:
                _fail("tensor %d: activations must be int8 with zero point in -128..127" % i)
            if t_off + nbytes > arena_size:
                _fail("tensor %d: activation outside the %d-byte arena" % (i, arena_size))
        out.append(Tensor(dt, shape, is_const, scale, zp, t_off, nbytes, enc))
    return out


def _parse_ops(buf, ops, tensors):
    off, length = ops
    end = off + length
    if length < 4:
        _fail("OPS section too short")
    count = struct.unpack_from("<I", buf, off)[0]
    pos = off + 4
    out = []
    flow = []
    for _ in range(count):
        if pos + 4 > end:
            _fail("OPS section truncated")
        opcode, nwords = struct.unpack_from("<HH", buf, pos)
        if pos + 4 + 4 * nwords > end:
            _fail("OPS section truncated")
        words = struct.unpack_from("<%di" % nwords, buf, pos + 4)
        pos += 4 + 4 * nwords
        parser = _PARSERS.get(opcode)
        if parser is None:
            raise ValueError("unsupported operator %s" % _OP_NAMES.get(opcode, "code %d" % opcode))
        name = _OP_NAMES[opcode]
        if len(words) != _NWORDS[opcode]:
            _fail("%s: %d words, expected %d" % (name, len(words), _NWORDS[opcode]))
        args, reads, y = parser(buf, words, tensors, name)
        if (opcode == _FULLY_CONNECTED or opcode == _CONV_2D) and len(args) == _FCS_NARGS:  # sparse weights
            opcode = FC_SPARSE
        for x in reads:
            if x.offset < y.offset + y.nbytes and y.offset < x.offset + x.nbytes:
                _fail("%s: input and output overlap in the arena" % name)
        out.append((opcode, args))
        flow.append(([x.offset for x in reads], y.offset))
    return out, flow


def _tensor(tensors, idx, what, const_, dtype, name):
    if not 0 <= idx < len(tensors):
        _fail("%s: %s tensor index %d out of range" % (name, what, idx))
    t = tensors[idx]
    if t.const != const_ or t.dtype != dtype:
        _fail("%s: %s has the wrong kind or dtype" % (name, what))
    if t.enc and what != "weights" and what != "filter":
        _fail("%s: %s cannot be sparse" % (name, what))
    return t


def _sparse_args(x, y, batches, depth, units, lo, hi, w, b, m, s, nq):
    # FULLY_CONNECTED over `batches` rows with encoding-1 weights (el_kernels.h EL_FCS_*)
    return array("i", (x.offset, y.offset, batches, depth, units, x.zero_point, y.zero_point, lo, hi, w.offset,
                       -1 if b is None else b.offset, m.offset, s.offset, nq, w.nbytes))


def _act(tensors, idx, what, name):
    return _tensor(tensors, idx, what, False, _INT8, name)


def _clamp(lo, hi, name):
    if not -128 <= lo <= hi <= 127:
        _fail("%s: activation clamp invalid" % name)


def _quant(buf, m, s, n, name, allow_one=False):
    # multiplier / shift constant arrays of length n (or 1 if allow_one); returns the length
    nq = _size(m.shape)
    if len(m.shape) != 1 or s.shape != m.shape or (nq != n and not (allow_one and nq == 1)):
        _fail("%s: multiplier/shift must have length %s" % (name, "1 or the output depth" if allow_one else "C_out"))
    for q in range(nq):
        mq = struct.unpack_from("<i", buf, m.offset + 4 * q)[0]
        sq = struct.unpack_from("<i", buf, s.offset + 4 * q)[0]
        if mq < 0 or not -31 <= sq <= 30:
            _fail("%s: multiplier must be >= 0 and shift within -31..30" % name)
    return nq


def _nhwc(t, what, name):
    if len(t.shape) != 4 or t.shape[0] != 1:
        _fail("%s: %s must be [1, H, W, C]" % (name, what))
    return t.shape[1], t.shape[2], t.shape[3]


def _fc_args(buf, words, tensors, name):
    x = _act(tensors, words[0], "input", name)
    w = _tensor(tensors, words[1], "weights", True, _INT8, name)
    b = None if words[2] == -1 else _tensor(tensors, words[2], "bias", True, _INT32, name)
    y = _act(tensors, words[3], "output", name)
    m = _tensor(tensors, words[4], "multiplier", True, _INT32, name)
    s = _tensor(tensors, words[5], "shift", True, _INT32, name)
    lo, hi = words[6], words[7]
    if len(w.shape) != 2:
        _fail("FULLY_CONNECTED: weights must be 2-D")
    units, depth = w.shape
    if x.shape[-1] != depth:
        _fail("FULLY_CONNECTED: input depth %d != weights depth %d" % (x.shape[-1], depth))
    batches = _size(x.shape) // depth
    if _size(y.shape) != batches * units:
        _fail("FULLY_CONNECTED: output size does not match")
    if b is not None and b.shape != (units,):
        _fail("FULLY_CONNECTED: bias shape does not match")
    nq = _quant(buf, m, s, units, name, True)
    _clamp(lo, hi, name)
    if w.enc:
        return _sparse_args(x, y, batches, depth, units, lo, hi, w, b, m, s, nq), (x,), y
    return array("i", (x.offset, y.offset, batches, depth, units, x.zero_point, y.zero_point, lo, hi,
                       w.offset, -1 if b is None else b.offset, m.offset, s.offset, nq)), (x,), y


def _conv_args(buf, words, tensors, name):
    # CONV_2D and DEPTHWISE_CONV_2D: same tensor words, same geometry words
    dw = len(words) == 15
    x = _act(tensors, words[0], "input", name)
    f = _tensor(tensors, words[1], "filter", True, _INT8, name)
    b = None if words[2] == -1 else _tensor(tensors, words[2], "bias", True, _INT32, name)
    y = _act(tensors, words[3], "output", name)
    m = _tensor(tensors, words[4], "multiplier", True, _INT32, name)
    s = _tensor(tensors, words[5], "shift", True, _INT32, name)
    sh, sw, dh, dwl, pt, pl = words[6:12]
    dm = words[12] if dw else 1
    lo, hi = words[-2], words[-1]
    in_h, in_w, in_c = _nhwc(x, "input", name)
    out_h, out_w, out_c = _nhwc(y, "output", name)
    if len(f.shape) != 4:
        _fail("%s: filter must be 4-D" % name)
    if dw:
        if f.shape[0] != 1 or f.shape[3] != out_c or dm < 1 or in_c * dm != out_c:
            _fail("%s: filter [1, KH, KW, C*depth_multiplier] does not match the input/output" % name)
    elif f.shape[0] != out_c or f.shape[3] != in_c:
        _fail("%s: filter [C_out, KH, KW, C_in] does not match the input/output" % name)
    if b is not None and b.shape != (out_c,):
        _fail("%s: bias shape does not match" % name)
    _quant(buf, m, s, out_c, name)
    if min(sh, sw, dh, dwl) < 1 or min(pt, pl) < 0 or max(sh, sw, dh, dwl, pt, pl) > 0xFFFF:
        _fail("%s: invalid stride, dilation or padding" % name)
    _clamp(lo, hi, name)
    if f.enc:  # a 1x1 stride-1 CONV_2D is a FULLY_CONNECTED over the pixels
        if dw or f.shape[1] != 1 or f.shape[2] != 1 or sh != 1 or sw != 1 or pt or pl \
                or out_h != in_h or out_w != in_w:
            _fail("%s: a sparse filter needs a 1x1 kernel and stride 1" % name)
        return _sparse_args(x, y, in_h * in_w, in_c, out_c, lo, hi, f, b, m, s, out_c), (x,), y
    head = (x.offset, y.offset, in_h, in_w, in_c, out_h, out_w, out_c, f.shape[1], f.shape[2], sh, sw, dh,
            dwl, pt, pl)
    tail = (x.zero_point, y.zero_point, lo, hi, f.offset, -1 if b is None else b.offset, m.offset, s.offset)
    return array("i", head + ((dm,) if dw else ()) + tail), (x,), y


def _pool_args(buf, words, tensors, name):
    x = _act(tensors, words[0], "input", name)
    y = _act(tensors, words[1], "output", name)
    sh, sw, fh, fw, pt, pl, lo, hi = words[2:]
    in_h, in_w, c = _nhwc(x, "input", name)
    out_h, out_w, c2 = _nhwc(y, "output", name)
    if c2 != c:
        _fail("%s: input and output depth differ" % name)
    if min(sh, sw, fh, fw) < 1 or min(pt, pl) < 0 or max(sh, sw, fh, fw, pt, pl) > 0xFFFF:
        _fail("%s: invalid stride, filter size or padding" % name)
    _clamp(lo, hi, name)
    return array("i", (x.offset, y.offset, in_h, in_w, c, out_h, out_w, sh, sw, fh, fw, pt, pl, lo, hi)), (x,), y


def _mean_args(buf, words, tensors, name):
    x = _act(tensors, words[0], "input", name)
    y = _act(tensors, words[1], "output", name)
    h, w, c = _nhwc(x, "input", name)
    if y.nbytes != c:
        _fail("MEAN: output must hold one value per channel")
    if words[2] < 0 or not -31 <= words[3] <= 30:
        _fail("MEAN: multiplier must be >= 0 and shift within -31..30")
    return array("i", (x.offset, y.offset, h, w, c, x.zero_point, y.zero_point, words[2], words[3])), (x,), y


def _add_args(buf, words, tensors, name):
    x1 = _act(tensors, words[0], "input1", name)
    x2 = _act(tensors, words[1], "input2", name)
    y = _act(tensors, words[2], "output", name)
    ls, m1, s1, m2, s2, mo, so, lo, hi = words[3:]
    if x1.nbytes != y.nbytes or x2.nbytes != y.nbytes:
        _fail("ADD: inputs and output must have the same size (no broadcasting)")
    if not 0 <= ls <= 31 or min(m1, m2, mo) < 0 or max(s1, s2, so) > 0 or min(s1, s2, so) < -31:
        _fail("ADD: invalid left shift, multiplier or shift")
    _clamp(lo, hi, name)
    return array("i", (x1.offset, x2.offset, y.offset, y.nbytes, x1.zero_point, x2.zero_point, y.zero_point,
                       ls, m1, s1, m2, s2, mo, so, lo, hi)), (x1, x2), y


def _softmax_args(buf, words, tensors, name):
    x = _act(tensors, words[0], "input", name)
    y = _act(tensors, words[1], "output", name)
    mult, ls, diff_min = words[2:]
    if x.nbytes != y.nbytes:
        _fail("SOFTMAX: input and output sizes differ")
    if y.zero_point != -128:
        _fail("SOFTMAX: output zero point must be -128 (scale 1/256)")
    depth = x.shape[-1]
    if depth > 4095:
        _fail("SOFTMAX: depth %d > 4095" % depth)
    if mult < 0 or not 0 <= ls <= 31 or diff_min > 0:
        _fail("SOFTMAX: invalid input multiplier, left shift or diff_min")
    return array("i", (x.offset, y.offset, x.nbytes // depth, depth, mult, ls, diff_min)), (x,), y


def _logistic_args(buf, words, tensors, name):
    x = _act(tensors, words[0], "input", name)
    y = _act(tensors, words[1], "output", name)
    radius, mult, shift = words[2:]
    if x.nbytes != y.nbytes:
        _fail("LOGISTIC: input and output sizes differ")
    if y.zero_point != -128:
        _fail("LOGISTIC: output zero point must be -128 (scale 1/256)")
    if radius < 0 or mult < 0 or not -31 <= shift <= 30:
        _fail("LOGISTIC: invalid input range radius, multiplier or shift")
    return array("i", (x.offset, y.offset, x.nbytes, x.zero_point, radius, mult, shift)), (x,), y


_PARSERS = {_FULLY_CONNECTED: _fc_args, _CONV_2D: _conv_args, _DEPTHWISE_CONV_2D: _conv_args,
            _AVERAGE_POOL_2D: _pool_args, _MAX_POOL_2D: _pool_args, _MEAN: _mean_args, _ADD: _add_args,
            _SOFTMAX: _softmax_args, _LOGISTIC: _logistic_args}
# Words per op record (docs/FORMAT.md)
_NWORDS = {_FULLY_CONNECTED: 8, _CONV_2D: 14, _DEPTHWISE_CONV_2D: 15, _AVERAGE_POOL_2D: 10, _MAX_POOL_2D: 10,
           _MEAN: 4, _ADD: 12, _SOFTMAX: 5, _LOGISTIC: 5}
