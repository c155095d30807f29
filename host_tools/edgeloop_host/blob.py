"""The `.elm` model blob: ir.Graph <-> bytes. Format: docs/FORMAT.md (this module is its host codec)."""
from __future__ import annotations

import json
import struct
import zlib

import numpy as np

from . import ir

MAGIC = b"ELMB"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHHIIIIIHH")  # magic, version, header_size, total, crc, features, id, version, nsec, rsv
SECTION = struct.Struct("<4sIII")  # tag, flags, offset, length
TENSOR = struct.Struct("<BBBB4HfiII")  # dtype, ndim, flags, rsv, dims[4], scale, zero_point, offset, nbytes
FLAG_REQUIRED = 1
TENSOR_CONST = 1
KNOWN_FEATURES = 0  # v1 defines no optional features
MAX_NDIM = 4

# Word layouts of the op records (docs/FORMAT.md, table under `OPS `).
OP_WORDS = {ir.FULLY_CONNECTED: ("input", "weights", "bias", "output", "multiplier", "shift", "act_min", "act_max")}


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
    data_len = sum(_align4(t.nbytes) for t in graph.tensors if t.is_const)
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
    for t in graph.tensors:
        if len(t.shape) < 1 or len(t.shape) > MAX_NDIM:
            raise BlobError(f"tensor {t.name!r}: rank {len(t.shape)} not in 1..{MAX_NDIM}")
        dims = list(t.shape) + [1] * (MAX_NDIM - len(t.shape))
        if t.is_const:
            data = np.ascontiguousarray(t.data, dtype=t.dtype).astype(f"<{np.dtype(t.dtype).str[1:]}")
            out[data_off:data_off + t.nbytes] = data.tobytes()
            t_off, flags, scale, zp = data_off, TENSOR_CONST, 0.0, 0
            data_off += _align4(t.nbytes)
        else:
            t_off, flags, scale, zp = t.arena_offset, 0, t.scale, t.zero_point
        tens += TENSOR.pack(ir.DTYPE_CODES[t.dtype], len(t.shape), flags, 0, *dims, scale, zp, t_off, t.nbytes)
    payload = {b"GRPH": grph, b"TENS": tens, b"OPS ": ops, b"META": meta, b"SELF": selftest}
    for tag, _, off, length in table:
        if tag in payload:
            out[off:off + length] = payload[tag]
    HEADER.pack_into(out, 0, MAGIC, FORMAT_VERSION, HEADER.size, total, 0, 0,
                     graph.model_id, graph.model_version, len(table), 0)
    for i, entry in enumerate(table):
        SECTION.pack_into(out, HEADER.size + i * SECTION.size, *entry)
    struct.pack_into("<I", out, 12, zlib.crc32(out[16:]))
    return bytes(out)


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
    if op.opcode == ir.FULLY_CONNECTED:
        return [*op.tensors, int(op.attrs["act_min"]), int(op.attrs["act_max"])]
    raise BlobError(f"op {op.name} has no blob encoding")


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
            dt, ndim, flags, _, *rest = TENSOR.unpack_from(tens, 4 + i * TENSOR.size)
            dims, (scale, zp, off, nbytes) = rest[:4], rest[4:]
            tensors.append(_decode_tensor(blob, i, dt, ndim, flags, dims, scale, zp, off, nbytes,
                                          arena_size, data_span))
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
    _check_dataflow(ops, io[0], io[1])
    meta = _decode_meta(sections.get(b"META", b""))
    graph = ir.Graph(tensors=tensors, ops=ops, inputs=[io[0]], outputs=[io[1]], model_id=model_id,
                     model_version=model_version, arena_size=arena_size, meta=meta)
    graph.self_test = _decode_self_test(sections.get(b"SELF", b""), graph)
    return graph


def _check_dataflow(ops: list[ir.Op], graph_in: int, graph_out: int) -> None:
    """Every op reads tensors already written, and something writes the graph output."""
    written = {graph_in}
    for i, op in enumerate(ops):
        if op.tensors[0] not in written:
            raise BlobError(f"op {i} ({op.name}) reads tensor {op.tensors[0]} before anything writes it")
        written.add(op.tensors[3])
    if graph_out not in written:
        raise BlobError(f"no op writes the graph output tensor {graph_out}")


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


def _decode_tensor(blob, i, dt, ndim, flags, dims, scale, zp, off, nbytes, arena_size, data_span):
    if dt not in ir.DTYPE_NAMES:
        raise BlobError(f"tensor {i}: unknown dtype code {dt}")
    if not 1 <= ndim <= MAX_NDIM or any(d < 1 for d in dims):
        raise BlobError(f"tensor {i}: bad shape {dims[:ndim]} (rank {ndim})")
    dtype = ir.DTYPE_NAMES[dt]
    shape = tuple(dims[:ndim])
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


def _decode_op(opcode: int, words: list[int], tensors: list[ir.Tensor]) -> ir.Op:
    if opcode not in OP_WORDS:
        raise BlobError(f"unsupported operator {ir.OP_NAMES.get(opcode, f'code {opcode}')}")
    if len(words) != len(OP_WORDS[opcode]):
        raise BlobError(f"{ir.OP_NAMES[opcode]}: {len(words)} words, expected {len(OP_WORDS[opcode])}")
    op = ir.Op(opcode=opcode, tensors=words[:6], attrs={"act_min": words[6], "act_max": words[7]})
    check_fully_connected(op, tensors)
    return op


def check_fully_connected(op: ir.Op, tensors: list[ir.Tensor]) -> None:
    """Shape, dtype and range rules of FULLY_CONNECTED (docs/FORMAT.md)."""
    n = len(tensors)

    def get(idx, what, const, dtype, allow_none=False):
        if allow_none and idx == -1:
            return None
        if not 0 <= idx < n:
            raise BlobError(f"FULLY_CONNECTED: {what} tensor index {idx} out of range")
        t = tensors[idx]
        if t.is_const != const or t.dtype != dtype:
            raise BlobError(f"FULLY_CONNECTED: {what} must be a {'constant' if const else 'activation'} {dtype}")
        return t

    x = get(op.tensors[0], "input", False, "int8")
    w = get(op.tensors[1], "weights", True, "int8")
    b = get(op.tensors[2], "bias", True, "int32", allow_none=True)
    y = get(op.tensors[3], "output", False, "int8")
    m = get(op.tensors[4], "multiplier", True, "int32")
    s = get(op.tensors[5], "shift", True, "int32")
    if len(w.shape) != 2:
        raise BlobError(f"FULLY_CONNECTED: weights must be 2-D, got {w.shape}")
    units, depth = w.shape
    if x.shape[-1] != depth:
        raise BlobError(f"FULLY_CONNECTED: input depth {x.shape[-1]} != weights depth {depth}")
    batches = int(np.prod(x.shape[:-1]))
    if int(np.prod(y.shape)) != batches * units:
        raise BlobError(f"FULLY_CONNECTED: output shape {y.shape} != ({batches}, {units})")
    if b is not None and b.shape != (units,):
        raise BlobError(f"FULLY_CONNECTED: bias shape {b.shape} != ({units},)")
    nq = m.shape[0]
    if len(m.shape) != 1 or s.shape != m.shape or nq not in (1, units):
        raise BlobError("FULLY_CONNECTED: multiplier/shift must both have length 1 or the output depth")
    if (m.data < 0).any() or (s.data < -31).any() or (s.data > 30).any():
        raise BlobError("FULLY_CONNECTED: multiplier must be >= 0 and shift within -31..30")
    lo, hi = op.attrs["act_min"], op.attrs["act_max"]
    if not -128 <= lo <= hi <= 127:
        raise BlobError(f"FULLY_CONNECTED: activation clamp [{lo}, {hi}] invalid")
    x0, x1 = x.arena_offset, x.arena_offset + x.nbytes
    y0, y1 = y.arena_offset, y.arena_offset + y.nbytes
    if x0 < y1 and y0 < x1:
        raise BlobError("FULLY_CONNECTED: input and output overlap in the arena")


def read(path) -> ir.Graph:
    with open(path, "rb") as f:
        return decode(f.read())


def write(graph: ir.Graph, path) -> bytes:
    data = encode(graph)
    with open(path, "wb") as f:
        f.write(data)
    return data
