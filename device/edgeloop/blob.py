# Device-side reader of the .elm blob (docs/FORMAT.md). Validates every field before anything uses it
# and turns each op into the flat int32 argument array the kernels take. Errors: ValueError("...").
import struct
from micropython import const

from . import backend

FORMAT_VERSION = const(1)
_HEADER_SIZE = const(32)
_SECTION_SIZE = const(16)
_TENSOR_SIZE = const(28)
_REQUIRED = const(1)
_TENSOR_CONST = const(1)
_KNOWN_FEATURES = const(0)
_INT8 = const(1)
_INT32 = const(2)
_FULLY_CONNECTED = const(9)
_OP_NAMES = {0: "ADD", 1: "AVERAGE_POOL_2D", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 9: "FULLY_CONNECTED",
             14: "LOGISTIC", 17: "MAX_POOL_2D", 22: "RESHAPE", 25: "SOFTMAX", 40: "MEAN"}


def _fail(msg):
    raise ValueError(msg)


class Tensor:
    # One tensor record; `offset` is absolute in the blob (constants) or in the arena (activations).
    __slots__ = ("dtype", "shape", "const", "scale", "zero_point", "offset", "nbytes")

    def __init__(self, dtype, shape, const_, scale, zero_point, offset, nbytes):
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

    tensors = _parse_tensors(buf, sec[b"TENS"], sec[b"DATA"], arena_size)
    extent = 0
    for t in tensors:
        if not t.const and t.offset + t.nbytes > extent:
            extent = t.offset + t.nbytes
    if arena_size != (extent + 3) & ~3:
        _fail("arena size %d does not match the activations' extent %d" % (arena_size, extent))
    for idx in (in_idx, out_idx):
        if idx >= len(tensors) or tensors[idx].const:
            _fail("graph input/output %d is not an activation tensor" % idx)
    ops = _parse_ops(buf, sec[b"OPS "], tensors)
    _check_dataflow(ops, tensors[in_idx], tensors[out_idx])
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


def _check_dataflow(ops, t_in, t_out):
    # Every op reads an activation already written; something writes the graph output.
    written = [t_in.offset]
    for _, args in ops:
        if args[0] not in written:
            _fail("an op reads an activation before anything writes it")
        written.append(args[1])
    if t_out.offset not in written:
        _fail("no op writes the graph output")


def _parse_tensors(buf, tens, data, arena_size):
    off, length = tens
    if length < 4:
        _fail("TENS section too short")
    count = struct.unpack_from("<I", buf, off)[0]
    if 4 + count * _TENSOR_SIZE > length:
        _fail("TENS section truncated: %d tensors do not fit" % count)
    d0, d1 = data[0], data[0] + data[1]
    out = []
    for i in range(count):
        dt, ndim, flags, _, a, b, c, d, scale, zp, t_off, nbytes = struct.unpack_from(
            "<BBBB4HfiII", buf, off + 4 + i * _TENSOR_SIZE)
        if dt != _INT8 and dt != _INT32:
            _fail("tensor %d: unknown dtype code %d" % (i, dt))
        if not 1 <= ndim <= 4:
            _fail("tensor %d: rank %d not in 1..4" % (i, ndim))
        shape = (a, b, c, d)[:ndim]
        if min(a, b, c, d) < 1:
            _fail("tensor %d: zero dimension" % i)
        if nbytes != _size(shape) * (1 if dt == _INT8 else 4):
            _fail("tensor %d: %d bytes does not match its shape" % (i, nbytes))
        is_const = bool(flags & _TENSOR_CONST)
        if is_const:
            if t_off & 3 or t_off < d0 or t_off + nbytes > d1:
                _fail("tensor %d: constant data outside DATA or unaligned" % i)
        else:
            if dt != _INT8 or not -128 <= zp <= 127:
                _fail("tensor %d: activations must be int8 with zero point in -128..127" % i)
            if t_off + nbytes > arena_size:
                _fail("tensor %d: activation outside the %d-byte arena" % (i, arena_size))
        out.append(Tensor(dt, shape, is_const, scale, zp, t_off, nbytes))
    return out


def _parse_ops(buf, ops, tensors):
    off, length = ops
    end = off + length
    if length < 4:
        _fail("OPS section too short")
    count = struct.unpack_from("<I", buf, off)[0]
    pos = off + 4
    out = []
    for _ in range(count):
        if pos + 4 > end:
            _fail("OPS section truncated")
        opcode, nwords = struct.unpack_from("<HH", buf, pos)
        if pos + 4 + 4 * nwords > end:
            _fail("OPS section truncated")
        words = struct.unpack_from("<%di" % nwords, buf, pos + 4)
        pos += 4 + 4 * nwords
        if opcode == _FULLY_CONNECTED:
            out.append((opcode, _fc_args(buf, words, tensors)))
        else:
            _fail("unsupported operator %s" % _OP_NAMES.get(opcode, "code %d" % opcode))
    return out


def _tensor(tensors, idx, what, const_, dtype):
    if not 0 <= idx < len(tensors):
        _fail("FULLY_CONNECTED: %s tensor index %d out of range" % (what, idx))
    t = tensors[idx]
    if t.const != const_ or t.dtype != dtype:
        _fail("FULLY_CONNECTED: %s has the wrong kind or dtype" % what)
    return t


def _fc_args(_buf, words, tensors):
    if len(words) != 8:
        _fail("FULLY_CONNECTED: %d words, expected 8" % len(words))
    x = _tensor(tensors, words[0], "input", False, _INT8)
    w = _tensor(tensors, words[1], "weights", True, _INT8)
    b = None if words[2] == -1 else _tensor(tensors, words[2], "bias", True, _INT32)
    y = _tensor(tensors, words[3], "output", False, _INT8)
    m = _tensor(tensors, words[4], "multiplier", True, _INT32)
    s = _tensor(tensors, words[5], "shift", True, _INT32)
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
    nq = _size(m.shape)
    if len(m.shape) != 1 or s.shape != m.shape or (nq != 1 and nq != units):
        _fail("FULLY_CONNECTED: multiplier/shift must have length 1 or the output depth")
    for q in range(nq):
        mq = struct.unpack_from("<i", _buf, m.offset + 4 * q)[0]
        sq = struct.unpack_from("<i", _buf, s.offset + 4 * q)[0]
        if mq < 0 or not -31 <= sq <= 30:
            _fail("FULLY_CONNECTED: multiplier must be >= 0 and shift within -31..30")
    if not -128 <= lo <= hi <= 127:
        _fail("FULLY_CONNECTED: activation clamp invalid")
    if x.offset < y.offset + y.nbytes and y.offset < x.offset + x.nbytes:
        _fail("FULLY_CONNECTED: input and output overlap in the arena")
    from array import array
    return array("i", (x.offset, y.offset, batches, depth, units, x.zero_point, y.zero_point, lo, hi,
                       w.offset, -1 if b is None else b.offset, m.offset, s.offset, nq))
