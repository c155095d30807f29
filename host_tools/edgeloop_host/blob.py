"""The `.elm` model blob: ir.Graph <-> bytes. Format: docs/FORMAT.md (this module is its host codec)."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from . import ir, sparse

MAGIC = b"ELMB"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHHIIIIIHH")  # magic, version, header_size, total, crc, features, id, version, nsec, rsv
SECTION = struct.Struct("<4sIII")  # tag, flags, offset, length
TENSOR = struct.Struct("<BBBB4HfiII")  # dtype, ndim, flags, encoding, dims[4], scale, zero_point, offset, nbytes
FLAG_REQUIRED = 1
TENSOR_CONST = 1
FEATURE_SPARSE = 1  # some constant uses weight encoding 1 (format 1.1, docs/FORMAT.md)
KNOWN_FEATURES = FEATURE_SPARSE
MAX_NDIM = 4

# Word layouts of the op records (docs/FORMAT.md, table under `OPS `): tensor words, then int words.
OP_WORDS = {op: tensor_words + attr_words for op, (tensor_words, attr_words) in ir.OP_LAYOUTS.items()}


class BlobError(ValueError):
    """A blob that is malformed, corrupt or too new; the message names the problem."""


def _align4(n: int) -> int:
    return (n + 3) & ~3


def encode(graph: ir.Graph) -> bytes:
    """Serialize a planned graph (activation offsets and arena_size set) into blob bytes."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BlobError("format v1 supports exactly one input and one output tensor")
    # Constant data first, so tensor records can hold absolute offsets: lay out sections in a fixed order.
    grph = struct.pack(f"<III{len(graph.inputs)}I{len(graph.outputs)}I", graph.arena_size,
                       len(graph.inputs), len(graph.outputs), *graph.inputs, *graph.outputs)
    ops = bytearray(struct.pack("<I", len(graph.ops)))
    for op in graph.ops:
        words = _op_words(op)
        ops += struct.pack(f"<HH{len(words)}i", op.opcode, len(words), *words)
    meta = json.dumps(graph.meta, sort_keys=True, separators=(",", ":")).encode() if graph.meta else b""
    tens_len = 4 + TENSOR.size * len(graph.tensors)

    sections = [(b"GRPH", FLAG_REQUIRED, len(grph)), (b"TENS", FLAG_REQUIRED, tens_len),
                (b"OPS ", FLAG_REQUIRED, len(ops))]
    stored = {i: _const_bytes(t) for i, t in enumerate(graph.tensors) if t.is_const}
    data_len = sum(_align4(len(b)) for b in stored.values())
    sections.append((b"DATA", FLAG_REQUIRED, data_len))
    if meta:
        sections.append((b"META", 0, len(meta)))
    selftest = _encode_self_test(graph)
    if selftest:
        sections.append((b"SELF", 0, len(selftest)))
    offset = HEADER.size + SECTION.size * len(sections)
    table = []
    for tag, flags, length in sections:
        offset = _align4(offset)
        table.append((tag, flags, offset, length))
        offset += length
    total = _align4(offset)
    where = {tag: off for tag, _, off, _ in table}

    out = bytearray(total)
    data_off = where[b"DATA"]
    tens = bytearray(struct.pack("<I", len(graph.tensors)))
    features = 0
    for i, t in enumerate(graph.tensors):
        if len(t.shape) < 1 or len(t.shape) > MAX_NDIM:
            raise BlobError(f"tensor {t.name!r}: rank {len(t.shape)} not in 1..{MAX_NDIM}")
        dims = list(t.shape) + [1] * (MAX_NDIM - len(t.shape))
        encoding, nbytes = 0, t.nbytes
        if t.is_const:
            data = stored[i]
            out[data_off:data_off + len(data)] = data
            t_off, flags, scale, zp = data_off, TENSOR_CONST, 0.0, 0
            data_off += _align4(len(data))
            encoding, nbytes = t.encoding, len(data)
            if encoding:
                features |= FEATURE_SPARSE
        else:
            t_off, flags, scale, zp = t.arena_offset, 0, t.scale, t.zero_point
        tens += TENSOR.pack(ir.DTYPE_CODES[t.dtype], len(t.shape), flags, encoding, *dims, scale, zp, t_off,
                            nbytes)
    payload = {b"GRPH": grph, b"TENS": tens, b"OPS ": ops, b"META": meta, b"SELF": selftest}
    for tag, _, off, length in table:
        if tag in payload:
            out[off:off + length] = payload[tag]
    HEADER.pack_into(out, 0, MAGIC, FORMAT_VERSION, HEADER.size, total, 0, features,
                     graph.model_id, graph.model_version, len(table), 0)
    for i, entry in enumerate(table):
        SECTION.pack_into(out, HEADER.size + i * SECTION.size, *entry)
    struct.pack_into("<I", out, 12, zlib.crc32(out[16:]))
    return bytes(out)


def _const_bytes(t: ir.Tensor) -> bytes:
    """A constant's bytes in DATA: little-endian dense values, or an encoded weight stream."""
    if t.encoding == ir.ENCODING_DENSE:
        return np.ascontiguousarray(t.data, dtype=t.dtype).astype(f"<{np.dtype(t.dtype).str[1:]}").tobytes()
    if t.encoding == ir.ENCODING_SPARSE_ROWS and t.dtype == "int8" and len(t.shape) >= 2:
        return sparse.encode(t.data)
    raise BlobError(f"tensor {t.name!r}: encoding {t.encoding} does not apply to a {t.dtype} {list(t.shape)}")


def read_checked(path) -> bytes:
    """The bytes of the .elm file at `path`, decoded once to check them; ValueError names the problem."""
    data = Path(path).read_bytes()
    try:
        decode(data)
    except Exception as e:
        raise ValueError(f"{path}: not a valid .elm model: {e}") from None
    return data


def _encode_self_test(graph: ir.Graph) -> bytes:
    if graph.self_test is None:
        return b""
    x, y = (np.ascontiguousarray(a, dtype=np.int8).tobytes() for a in graph.self_test)
    if len(x) != graph.input().nbytes or len(y) != graph.output().nbytes:
        raise BlobError("self-test vector does not match the model's input/output sizes")
    return struct.pack("<II", len(x), len(y)) + x + y


def _decode_self_test(raw: bytes, graph: ir.Graph):
    if not raw:
        return None
    n_in, n_out = struct.unpack_from("<II", raw) if len(raw) >= 8 else (-1, -1)
    if (n_in, n_out) != (graph.input().nbytes, graph.output().nbytes) or len(raw) != 8 + n_in + n_out:
        raise BlobError("SELF section does not match the model's input/output sizes")
    x = np.frombuffer(raw, np.int8, n_in, 8).reshape(graph.input().shape)
    y = np.frombuffer(raw, np.int8, n_out, 8 + n_in).reshape(graph.output().shape)
    return x, y


def _op_words(op: ir.Op) -> list[int]:
    if op.opcode not in OP_WORDS:
        raise BlobError(f"op {op.name} has no blob encoding")
    try:
        words = op.words()
    except (KeyError, ValueError) as e:
        raise BlobError(f"op {op.name}: cannot encode its words ({e})") from None
    if any(not -(1 << 31) <= w < (1 << 31) for w in words):
        raise BlobError(f"op {op.name}: a word does not fit in int32")
    return words


def decode(blob: bytes) -> ir.Graph:
    """Parse and validate blob bytes back into a graph. Raises BlobError naming the problem."""
    blob = bytes(blob)
    if len(blob) < HEADER.size:
        raise BlobError(f"truncated: {len(blob)} bytes is shorter than the {HEADER.size}-byte header")
    magic, version, hsize, total, crc, features, model_id, model_version, nsec, _ = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise BlobError(f"bad magic {magic!r}: not an edgeloop model blob")
    if version > FORMAT_VERSION:
        raise BlobError(f"format version {version} needs a newer runtime (this one reads {FORMAT_VERSION})")
    if version < 1 or hsize < HEADER.size:
        raise BlobError(f"invalid header (version {version}, header size {hsize})")
    if total != len(blob):
        raise BlobError(f"truncated or padded: header says {total} bytes, got {len(blob)}")
    if zlib.crc32(blob[16:]) != crc:
        raise BlobError("CRC mismatch: the blob is corrupt")
    if features & ~KNOWN_FEATURES:
        raise BlobError(f"needs features 0x{features & ~KNOWN_FEATURES:x} this runtime does not have")
    table_end = hsize + SECTION.size * nsec
    if table_end > total:
        raise BlobError("section table runs past the end of the blob")
    sections: dict[bytes, bytes] = {}
    spans = []
    for i in range(nsec):
        tag, flags, off, length = SECTION.unpack_from(blob, hsize + i * SECTION.size)
        if off % 4 or off < table_end or off + length > total:
            raise BlobError(f"section {tag!r} at {off}+{length} is out of bounds or unaligned")
        if tag in sections:
            raise BlobError(f"duplicate section {tag!r}")
        spans.append((off, off + length, tag))
        if tag in (b"GRPH", b"TENS", b"OPS ", b"DATA", b"META", b"SELF"):
            sections[tag] = blob[off:off + length]
            if tag == b"DATA":
                data_span = (off, off + length)
        elif flags & FLAG_REQUIRED:
            raise BlobError(f"unknown required section {tag!r}: needs a newer runtime")
    spans.sort()
    for (a0, a1, ta), (b0, _, tb) in zip(spans, spans[1:]):
        if b0 < a1:
            raise BlobError(f"sections {ta!r} and {tb!r} overlap")
    for tag in (b"GRPH", b"TENS", b"OPS ", b"DATA"):
        if tag not in sections:
            raise BlobError(f"missing required section {tag!r}")

    try:
        arena_size, n_in, n_out = struct.unpack_from("<III", sections[b"GRPH"])
        io = struct.unpack_from(f"<{n_in + n_out}I", sections[b"GRPH"], 12)
        tens = sections[b"TENS"]
        (count,) = struct.unpack_from("<I", tens)
        tensors = []
        for i in range(count):
            dt, ndim, flags, enc, *rest = TENSOR.unpack_from(tens, 4 + i * TENSOR.size)
            dims, (scale, zp, off, nbytes) = rest[:4], rest[4:]
            tensors.append(_decode_tensor(blob, i, dt, ndim, flags, enc, dims, scale, zp, off, nbytes,
                                          arena_size, data_span, features))
        ops_b = sections[b"OPS "]
        (nops,) = struct.unpack_from("<I", ops_b)
        pos, ops = 4, []
        for _ in range(nops):
            opcode, nwords = struct.unpack_from("<HH", ops_b, pos)
            words = struct.unpack_from(f"<{nwords}i", ops_b, pos + 4)
            pos += 4 + 4 * nwords
            ops.append(_decode_op(opcode, list(words), tensors))
    except struct.error as e:
        raise BlobError(f"truncated section: {e}") from None
    if n_in != 1 or n_out != 1:
        raise BlobError(f"format v1 needs one input and one output, got {n_in} and {n_out}")
    extent = max((t.arena_offset + t.nbytes for t in tensors if not t.is_const), default=0)
    if arena_size != _align4(extent):
        raise BlobError(f"arena size {arena_size} does not match the activations' extent {extent}")
    for idx in io:
        if idx >= len(tensors) or tensors[idx].is_const:
            raise BlobError(f"graph input/output {idx} is not an activation tensor")
    _check_dataflow(ops, tensors, io[0], io[1])
    meta = _decode_meta(sections.get(b"META", b""))
    graph = ir.Graph(tensors=tensors, ops=ops, inputs=[io[0]], outputs=[io[1]], model_id=model_id,
                     model_version=model_version, arena_size=arena_size, meta=meta)
    graph.self_test = _decode_self_test(sections.get(b"SELF", b""), graph)
    return graph


def _check_dataflow(ops: list[ir.Op], tensors: list[ir.Tensor], graph_in: int, graph_out: int) -> None:
    """Every op reads arena bytes already written, and something writes the graph output's bytes.

    Dataflow is tracked by arena bytes (offset, size), as the device does: a tensor read before any op wrote
    it is a reshape view of the tensor last written at the same bytes (its `alias_of` is set to that
    tensor). Writing bytes forgets whatever else was written over them.
    """
    written: dict[tuple[int, int], int] = {}

    def key(i: int) -> tuple[int, int]:
        return tensors[i].arena_offset, tensors[i].nbytes

    def write(i: int) -> None:
        o0, o1 = tensors[i].arena_offset, tensors[i].arena_offset + tensors[i].nbytes
        for k in [k for k in written if k[0] < o1 and o0 < k[0] + k[1]]:
            del written[k]
        written[key(i)] = i

    def read(i: int, what: str) -> None:
        if key(i) not in written:
            raise BlobError(f"{what} reads tensor {i} before anything writes its arena bytes")
        src = written[key(i)]
        if src != i:
            tensors[i].alias_of = src

    write(graph_in)
    for n, op in enumerate(ops):
        for i in op.inputs():
            read(i, f"op {n} ({op.name})")
        for i in op.outputs():
            write(i)
    if key(graph_out) not in written:
        raise BlobError(f"no op writes the graph output tensor {graph_out}")
    read(graph_out, "the graph output")


def _decode_meta(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BlobError("META section is not UTF-8 JSON") from None
    if not isinstance(meta, dict):
        raise BlobError("META section is not a JSON object")
    return meta


def _decode_tensor(blob, i, dt, ndim, flags, enc, dims, scale, zp, off, nbytes, arena_size, data_span, features):
    if dt not in ir.DTYPE_NAMES:
        raise BlobError(f"tensor {i}: unknown dtype code {dt}")
    if not 1 <= ndim <= MAX_NDIM or any(d < 1 for d in dims):
        raise BlobError(f"tensor {i}: bad shape {dims[:ndim]} (rank {ndim})")
    dtype = ir.DTYPE_NAMES[dt]
    shape = tuple(dims[:ndim])
    if enc != ir.ENCODING_DENSE:
        return _decode_encoded(blob, i, dtype, flags, enc, shape, off, nbytes, data_span, features)
    if nbytes != int(np.prod(shape)) * np.dtype(dtype).itemsize:
        raise BlobError(f"tensor {i}: {nbytes} bytes does not match shape {shape} of {dtype}")
    if flags & TENSOR_CONST:
        if off % 4 or off < data_span[0] or off + nbytes > data_span[1]:
            raise BlobError(f"tensor {i}: constant data at {off}+{nbytes} is outside DATA or unaligned")
        data = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<"), count=nbytes // np.dtype(dtype).itemsize,
                             offset=off).astype(dtype).reshape(shape)
        return ir.Tensor(name=f"t{i}", shape=shape, dtype=dtype, data=data)
    if dtype != "int8" or not -128 <= zp <= 127:
        raise BlobError(f"tensor {i}: activations must be int8 with a zero point in -128..127")
    if off + nbytes > arena_size:
        raise BlobError(f"tensor {i}: activation at {off}+{nbytes} is outside the {arena_size}-byte arena")
    return ir.Tensor(name=f"t{i}", shape=shape, dtype=dtype, scale=scale, zero_point=zp, arena_offset=off)


def _decode_encoded(blob, i, dtype, flags, enc, shape, off, nbytes, data_span, features) -> ir.Tensor:
    if enc not in ir.ENCODING_NAMES:
        raise BlobError(f"tensor {i}: unknown weight encoding {enc}: needs a newer runtime")
    if not features & FEATURE_SPARSE:
        raise BlobError(f"tensor {i}: sparse encoding without the header's feature bit 0x{FEATURE_SPARSE:x}")
    if not flags & TENSOR_CONST or dtype != "int8" or len(shape) < 2:
        raise BlobError(f"tensor {i}: only constant int8 weights of rank >= 2 can be sparse")
    if off % 4 or off < data_span[0] or off + nbytes > data_span[1]:
        raise BlobError(f"tensor {i}: constant data at {off}+{nbytes} is outside DATA or unaligned")
    try:
        dense = sparse.decode(blob[off:off + nbytes], shape[0], int(np.prod(shape[1:])))
    except sparse.SparseError as e:
        raise BlobError(f"tensor {i}: {e}") from None
    return ir.Tensor(name=f"t{i}", shape=shape, dtype=dtype, data=dense.reshape(shape), encoding=enc)


def _decode_op(opcode: int, words: list[int], tensors: list[ir.Tensor]) -> ir.Op:
    if opcode not in OP_WORDS:
        raise BlobError(f"unsupported operator {ir.OP_NAMES.get(opcode, f'code {opcode}')}")
    if len(words) != len(OP_WORDS[opcode]):
        raise BlobError(f"{ir.OP_NAMES[opcode]}: {len(words)} words, expected {len(OP_WORDS[opcode])}")
    op = ir.Op.from_words(opcode, words)
    check_op(op, tensors)
    return op


def check_op(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    """Dtype, shape, quantization-word and range rules of one op record (docs/FORMAT.md)."""
    _CHECKS[op.opcode](op, tensors)


class _Ctx:
    """Tensor lookups with errors that name the op and the word."""

    def __init__(self, op: ir.Op, tensors: list[ir.Tensor]):
        self.op, self.tensors, self.name = op, tensors, op.name

    def fail(self, msg: str):
        raise BlobError(f"{self.name}: {msg}")

    def get(self, word: str, const: bool, dtype: str, allow_none: bool = False) -> ir.Tensor | None:
        idx = self.op.tensor(word)
        if allow_none and idx == -1:
            return None
        if not 0 <= idx < len(self.tensors):
            self.fail(f"{word} tensor index {idx} out of range")
        t = self.tensors[idx]
        if t.is_const != const or t.dtype != dtype:
            self.fail(f"{word} must be a {'constant' if const else 'activation'} {dtype}")
        if t.encoding and word not in ("weights", "filter"):
            self.fail(f"{word} cannot be a sparse tensor")
        return t

    def act(self, word: str) -> ir.Tensor:
        return self.get(word, False, "int8")

    def nhwc(self, word: str) -> tuple[int, int, int]:
        t = self.act(word)
        if len(t.shape) != 4 or t.shape[0] != 1:
            self.fail(f"{word} must be [1, H, W, C], got {list(t.shape)}")
        return t.shape[1], t.shape[2], t.shape[3]

    def clamp(self) -> None:
        lo, hi = self.op.attrs["act_min"], self.op.attrs["act_max"]
        if not -128 <= lo <= hi <= 127:
            self.fail(f"activation clamp [{lo}, {hi}] invalid")

    def no_overlap(self) -> None:
        y = self.tensors[self.op.outputs()[0]]
        for i in self.op.inputs():
            x = self.tensors[i]
            if x.arena_offset < y.arena_offset + y.nbytes and y.arena_offset < x.arena_offset + x.nbytes:
                self.fail("input and output overlap in the arena")

    def quant_words(self, m_word: str, s_word: str, n: tuple[int, ...]) -> None:
        """Constant int32 multiplier/shift arrays with a length in n, multiplier >= 0, shift in -31..30."""
        m = self.get(m_word, True, "int32")
        s = self.get(s_word, True, "int32")
        if len(m.shape) != 1 or s.shape != m.shape or m.shape[0] not in n:
            self.fail(f"{m_word}/{s_word} must both have length {' or '.join(map(str, sorted(set(n))))}")
        if (m.data < 0).any() or (s.data < -31).any() or (s.data > 30).any():
            self.fail(f"{m_word} must be >= 0 and {s_word} within -31..30")

    def int_range(self, word: str, lo: int, hi: int) -> int:
        v = self.op.attrs[word]
        if not lo <= v <= hi:
            self.fail(f"{word} {v} outside {lo}..{hi}")
        return v

    def window(self, in_hw, out_hw, k_hw, dil_hw) -> None:
        """Strides, dilations, padding and output size are TFLite's for SAME or VALID padding."""
        from .tflite_import import compute_padding_height_width

        a = self.op.attrs
        sh, sw = self.int_range("stride_h", 1, 0xFFFF), self.int_range("stride_w", 1, 0xFFFF)
        if min(k_hw) < 1 or min(dil_hw) < 1 or max(dil_hw) > 0xFFFF or max(k_hw) > 0xFFFF:
            self.fail(f"filter {k_hw} / dilation {dil_hw} out of range")
        got = (a["pad_top"], a["pad_left"]) + tuple(out_hw)
        modes = [compute_padding_height_width(sh, sw, dil_hw[0], dil_hw[1], in_hw[0], in_hw[1], k_hw[0], k_hw[1],
                                              mode) for mode in (0, 1)]  # SAME, VALID
        if got not in modes:
            self.fail(f"padding {got[:2]} and output {list(out_hw)} are not TFLite's SAME {modes[0]} or VALID "
                      f"{modes[1]} for input {list(in_hw)}, filter {list(k_hw)}, stride {sh}x{sw}, "
                      f"dilation {list(dil_hw)}")


def check_fully_connected(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    """Shape, dtype and range rules of FULLY_CONNECTED (docs/FORMAT.md)."""
    c = _Ctx(op, tensors)
    x = c.act("input")
    w = c.get("weights", True, "int8")
    b = c.get("bias", True, "int32", allow_none=True)
    y = c.act("output")
    if len(w.shape) != 2:
        c.fail(f"weights must be 2-D, got {w.shape}")
    units, depth = w.shape
    if x.shape[-1] != depth:
        c.fail(f"input depth {x.shape[-1]} != weights depth {depth}")
    batches = int(np.prod(x.shape[:-1]))
    if int(np.prod(y.shape)) != batches * units:
        c.fail(f"output shape {y.shape} != ({batches}, {units})")
    if b is not None and b.shape != (units,):
        c.fail(f"bias shape {b.shape} != ({units},)")
    c.quant_words("multiplier", "shift", (1, units))
    c.clamp()
    c.no_overlap()


def _check_conv(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    c = _Ctx(op, tensors)
    depthwise = op.opcode == ir.DEPTHWISE_CONV_2D
    h, w, c_in = c.nhwc("input")
    oh, ow, c_out = c.nhwc("output")
    f = c.get("filter", True, "int8")
    b = c.get("bias", True, "int32", allow_none=True)
    if len(f.shape) != 4:
        c.fail(f"filter must be 4-D, got {list(f.shape)}")
    if depthwise:
        mult = c.int_range("depth_multiplier", 1, 0xFFFF)
        if f.shape[0] != 1 or f.shape[3] != c_out or c_in * mult != c_out:
            c.fail(f"filter {list(f.shape)} must be [1, KH, KW, C_in * depth_multiplier] = "
                   f"[1, KH, KW, {c_in} * {mult}] with output depth {c_out}")
    elif f.shape[0] != c_out or f.shape[3] != c_in:
        c.fail(f"filter {list(f.shape)} must be [C_out, KH, KW, C_in] = [{c_out}, KH, KW, {c_in}]")
    if b is not None and b.shape != (c_out,):
        c.fail(f"bias shape {list(b.shape)} != [{c_out}]")
    c.quant_words("multiplier", "shift", (c_out,))
    a = op.attrs
    if f.encoding and (depthwise or f.shape[1:3] != (1, 1) or a["stride_h"] != 1 or a["stride_w"] != 1):
        c.fail("a sparse filter needs a CONV_2D with a 1x1 kernel and stride 1")
    c.window((h, w), (oh, ow), (f.shape[1], f.shape[2]), (a["dilation_h"], a["dilation_w"]))
    c.clamp()
    c.no_overlap()


def _check_pool(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    c = _Ctx(op, tensors)
    h, w, ch = c.nhwc("input")
    oh, ow, co = c.nhwc("output")
    if ch != co:
        c.fail(f"input depth {ch} != output depth {co}")
    x, y = c.act("input"), c.act("output")
    if x.zero_point != y.zero_point or np.float32(x.scale) != np.float32(y.scale):
        c.fail("input and output must share scale and zero point")
    a = op.attrs
    c.window((h, w), (oh, ow), (a["filter_h"], a["filter_w"]), (1, 1))
    c.clamp()
    c.no_overlap()


def _check_mean(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    c = _Ctx(op, tensors)
    _, _, ch = c.nhwc("input")
    y = c.act("output")
    if int(np.prod(y.shape)) != ch:
        c.fail(f"output {list(y.shape)} must hold the input's {ch} channels")
    c.int_range("multiplier", 0, (1 << 31) - 1)
    c.int_range("shift", -31, 30)
    c.no_overlap()


def _check_add(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    c = _Ctx(op, tensors)
    x1, x2, y = c.act("input1"), c.act("input2"), c.act("output")
    if not x1.shape == x2.shape == y.shape:
        c.fail(f"shapes {list(x1.shape)} + {list(x2.shape)} -> {list(y.shape)} must be equal (no broadcasting)")
    c.int_range("left_shift", 20, 20)
    for word in ("input1", "input2", "output"):
        c.int_range(f"{word}_multiplier", 0, (1 << 31) - 1)
        c.int_range(f"{word}_shift", -31, 0)
    c.clamp()
    c.no_overlap()


def _check_unit_output(c: _Ctx) -> None:
    x, y = c.act("input"), c.act("output")
    if x.shape != y.shape:
        c.fail(f"input {list(x.shape)} and output {list(y.shape)} shapes differ")
    if y.zero_point != -128 or np.float32(y.scale) != np.float32(1 / 256):
        c.fail(f"output must have scale 1/256 and zero point -128, got {y.scale} and {y.zero_point}")


def _check_softmax(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    from .tflite_import import calculate_input_radius

    c = _Ctx(op, tensors)
    _check_unit_output(c)
    c.int_range("input_multiplier", 0, (1 << 31) - 1)
    shift = c.int_range("input_left_shift", 0, 30)
    # input differences >= diff_min times 2^shift must stay inside int32 (TFLM's radius is the bound)
    c.int_range("diff_min", -calculate_input_radius(5, shift), 0)
    c.no_overlap()


def _check_logistic(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    from .tflite_import import calculate_input_radius

    c = _Ctx(op, tensors)
    _check_unit_output(c)
    c.int_range("input_multiplier", 0, (1 << 31) - 1)
    shift = c.int_range("input_left_shift", 0, 30)
    c.int_range("input_range_radius", 0, calculate_input_radius(4, shift))
    c.no_overlap()


_CHECKS = {
    ir.FULLY_CONNECTED: check_fully_connected,
    ir.CONV_2D: _check_conv,
    ir.DEPTHWISE_CONV_2D: _check_conv,
    ir.AVERAGE_POOL_2D: _check_pool,
    ir.MAX_POOL_2D: _check_pool,
    ir.MEAN: _check_mean,
    ir.ADD: _check_add,
    ir.SOFTMAX: _check_softmax,
    ir.LOGISTIC: _check_logistic,
}


def read(path) -> ir.Graph:
    with open(path, "rb") as f:
        return decode(f.read())


def write(graph: ir.Graph, path) -> bytes:
    data = encode(graph)
    with open(path, "wb") as f:
        f.write(data)
    return data
