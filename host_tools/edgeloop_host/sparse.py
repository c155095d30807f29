"""Weight encoding 1, "sparse rows" (docs/FORMAT.md, Weight encodings): codec and the per-layer choice.

A weight matrix [N, K] (FULLY_CONNECTED weights, or a 1x1 stride-1 CONV_2D filter [C_out, 1, 1, C_in])
is stored as `u16 nwords[N]` (padded to 4 bytes), then each row's nonzero weights as (u8 delta, i8 value)
pairs, two pairs per u32 word. A row's column starts at 0 and every pair advances it by `delta` before
its multiply-accumulate, so a kernel walks the stream in place with no index decoding into RAM. Gaps
over 255 columns take (255, 0) escape pairs; a row with an odd pair count ends in a (0, 0) pair.
"""
from __future__ import annotations

import numpy as np

from . import ir

MODES = ("auto", "never", "always")
MIN_SAVING = 0.20  # auto: sparse when it saves at least this fraction of the layer's weight bytes


class SparseError(ValueError):
    """A sparse weight stream that does not describe an [N, K] matrix."""


def _align4(n: int) -> int:
    return (n + 3) & ~3


def head_bytes(n: int) -> int:
    return _align4(2 * n)


def _row_pairs(row: np.ndarray) -> list[tuple[int, int]]:
    pairs = []
    col = 0
    for c in np.flatnonzero(row):
        gap = int(c) - col
        while gap > 255:
            pairs.append((255, 0))
            gap -= 255
        pairs.append((gap, int(row[c])))
        col = int(c)
    if len(pairs) % 2:
        pairs.append((0, 0))
    return pairs


def encode(w: np.ndarray) -> bytes:
    """The encoded stream of int8 weights; rows are w's first axis, columns everything after it."""
    m = np.asarray(w, dtype=np.int8).reshape(w.shape[0], -1)
    n, k = m.shape
    if k > 0xFFFF or n > 0xFFFF:
        raise SparseError(f"sparse weights: [{n}, {k}] exceeds 65535 rows or columns")
    rows = [_row_pairs(m[r]) for r in range(n)]
    head = np.zeros(head_bytes(n) // 2, "<u2")
    head[:n] = [len(p) // 2 for p in rows]
    body = np.array([p for pairs in rows for p in pairs], dtype=np.int64).reshape(-1, 2)
    raw = np.empty(body.shape, np.uint8)
    raw[:, 0] = body[:, 0]
    raw[:, 1] = body[:, 1].astype(np.int8).view(np.uint8)
    return head.tobytes() + raw.tobytes()


def size(w: np.ndarray) -> int:
    """Bytes of encode(w), without encoding it."""
    m = np.asarray(w).reshape(w.shape[0], -1)
    total = 0
    for row in m:
        cols = np.flatnonzero(row)
        if cols.size:
            gaps = np.diff(np.concatenate(([0], cols)))
            pairs = cols.size + int(np.sum(np.maximum(gaps - 1, 0) // 255))
            total += (pairs + 1) // 2
    return head_bytes(m.shape[0]) + 4 * total


def decode(stream: bytes, n: int, k: int) -> np.ndarray:
    """The dense int8 [n, k] matrix of a stream; SparseError names what is wrong with it."""
    stream = bytes(stream)
    head = head_bytes(n)
    if len(stream) < head or len(stream) % 4:
        raise SparseError(f"sparse weights: {len(stream)} bytes cannot hold {n} row counts in whole words")
    words = np.frombuffer(stream, "<u2", n).astype(np.int64)
    if head + 4 * int(words.sum()) != len(stream):
        raise SparseError(f"sparse weights: row counts ({int(words.sum())} words) do not match the "
                          f"{len(stream) - head} bytes of pairs")
    raw = np.frombuffer(stream, np.uint8, offset=head).reshape(-1, 2)
    out = np.zeros((n, k), np.int8)
    pos = 0
    for r, nw in enumerate(words):
        pairs = raw[pos:pos + 2 * nw]
        pos += 2 * nw
        if not nw:
            continue
        cols = np.cumsum(pairs[:, 0].astype(np.int64))
        if cols[-1] >= k:
            raise SparseError(f"sparse weights: row {r} reaches column {int(cols[-1])} of {k}")
        vals = pairs[:, 1].view(np.int8)
        nz = vals != 0
        if len(np.unique(cols[nz])) != int(nz.sum()):
            raise SparseError(f"sparse weights: row {r} has a column twice")
        out[r, cols[nz]] = vals[nz]
    return out


def eligible(graph: ir.Graph) -> dict[int, list[int]]:
    """{weight tensor: [op indices]} of the tensors every user of which can read encoding 1:
    FULLY_CONNECTED weights and 1x1, stride-1 CONV_2D filters."""
    users: dict[int, list[int]] = {}
    bad: set[int] = set()
    for n, op in enumerate(graph.ops):
        ok_word = None
        if op.opcode == ir.FULLY_CONNECTED:
            ok_word = "weights"
        elif op.opcode == ir.CONV_2D:
            f = graph.tensors[op.tensor("filter")]
            if f.shape[1:3] == (1, 1) and op.attrs["stride_h"] == op.attrs["stride_w"] == 1:
                ok_word = "filter"
        for word, i in zip(ir.OP_LAYOUTS[op.opcode][0], op.tensors):
            if i < 0 or not graph.tensors[i].is_const:
                continue
            if word == ok_word and graph.tensors[i].dtype == "int8":
                users.setdefault(i, []).append(n)
            else:
                bad.add(i)
    return {i: ops for i, ops in users.items() if i not in bad}


def choose(graph: ir.Graph, mode: str = "auto") -> dict[int, tuple[int, int]]:
    """Set each eligible weight tensor's encoding per `mode` (auto: sparse when it saves >= 20% of the
    tensor's stored bytes). Returns {tensor: (dense bytes, sparse bytes)} of the eligible tensors."""
    if mode not in MODES:
        raise ValueError(f"sparse mode {mode!r}: expected one of {', '.join(MODES)}")
    sizes = {}
    for i in eligible(graph):
        t = graph.tensors[i]
        dense, sp = _align4(t.nbytes), size(t.data)
        sizes[i] = (dense, sp)
        use = mode == "always" or (mode == "auto" and sp <= (1 - MIN_SAVING) * dense)
        t.encoding = ir.ENCODING_SPARSE_ROWS if use else ir.ENCODING_DENSE
    return sizes


def stored_nbytes(t: ir.Tensor) -> int:
    """Bytes the tensor takes in DATA (before 4-byte alignment)."""
    if t.is_const and t.encoding == ir.ENCODING_SPARSE_ROWS:
        return size(t.data)
    return t.nbytes


def prune_tflite(tflite: bytes, sparsity: float) -> bytes:
    """A copy of an int8 .tflite whose FULLY_CONNECTED weights and CONV_2D filters have the
    round(sparsity * size) smallest-magnitude values of each tensor set to 0 (ties: lowest index first).
    For measuring the encoding and for bit-exactness tests: TFLM and the converter then read the same
    pruned weights. (Training-time pruning with fine-tuning is prune.py.)"""
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(tflite))
    fc = {i for i, c in enumerate(model.operatorCodes) if max(c.builtinCode, c.deprecatedBuiltinCode) in (3, 9)}
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcodeIndex not in fc:
                continue
            buf = model.buffers[sg.tensors[op.inputs[1]].buffer]
            w = np.asarray(buf.data, np.uint8).view(np.int8).copy()
            n_zero = int(round(float(sparsity) * w.size))
            w[np.argsort(np.abs(w.astype(np.int16)), kind="stable")[:n_zero]] = 0
            buf.data = w.view(np.uint8)
    return bytes(fbu.convert_object_to_bytearray(model))
