"""Host blob codec: round trips, and every kind of damage rejected with a reason."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from blobgen import random_mlp
from edgeloop_host import blob, reference


def _graph(seed=0, **kw):
    return random_mlp(np.random.default_rng(seed), [12, 7, 5], meta={"labels": list("abcde")}, **kw)


def _refix_crc(b: bytearray) -> bytes:
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])))
    return bytes(b)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), widths=st.lists(st.integers(1, 40), min_size=2, max_size=5),
       per_channel=st.booleans(), with_bias=st.booleans())
def test_round_trip_preserves_graph_and_arithmetic(seed, widths, per_channel, with_bias):
    rng = np.random.default_rng(seed)
    g = random_mlp(rng, widths, per_channel, with_bias)
    data = blob.encode(g)
    assert len(data) % 4 == 0
    g2 = blob.decode(data)
    assert (g2.model_id, g2.model_version, g2.arena_size) == (g.model_id, g.model_version, g.arena_size)
    for a, b in zip(g.tensors, g2.tensors):
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.is_const:
            assert np.array_equal(a.data, b.data)
            assert b.data is not None
        else:
            assert (a.zero_point, a.arena_offset) == (b.zero_point, b.arena_offset)
            assert np.float32(a.scale) == np.float32(b.scale)
    x = rng.integers(-128, 128, (8, widths[0]), dtype=np.int8)
    assert np.array_equal(reference.run(g, x), reference.run(g2, x))
    assert blob.encode(g2) == blob.encode(g)  # canonical


def test_constant_data_is_4_byte_aligned():
    g = blob.decode(blob.encode(_graph()))
    data = blob.encode(g)
    count = struct.unpack_from("<I", data, _section(data, b"TENS")[0])[0]
    for i in range(count):
        rec = blob.TENSOR.unpack_from(data, _section(data, b"TENS")[0] + 4 + i * blob.TENSOR.size)
        if rec[2] & blob.TENSOR_CONST:
            assert rec[10] % 4 == 0


def _section(data: bytes, tag: bytes):
    nsec = struct.unpack_from("<H", data, 28)[0]
    for i in range(nsec):
        t, flags, off, length = blob.SECTION.unpack_from(data, 32 + 16 * i)
        if t == tag:
            return off, length
    raise KeyError(tag)


def test_every_truncation_is_rejected():
    data = blob.encode(_graph())
    for n in range(len(data)):
        with pytest.raises(blob.BlobError, match="truncated|shorter"):
            blob.decode(data[:n])


def test_every_single_bit_flip_is_rejected():
    data = blob.encode(_graph())
    for bit in range(len(data) * 8):
        b = bytearray(data)
        b[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(blob.BlobError):
            blob.decode(bytes(b))


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b.__setitem__(slice(0, 4), b"TFL3"), "bad magic"),
    (lambda b: struct.pack_into("<H", b, 4, 2), "needs a newer runtime"),
    (lambda b: struct.pack_into("<I", b, 16, 1 << 5), "features"),
])
def test_header_problems_are_named(mutate, message):
    b = bytearray(blob.encode(_graph()))
    mutate(b)
    with pytest.raises(blob.BlobError, match=message):
        blob.decode(_refix_crc(b))


def _with_extra_section(data: bytes, tag: bytes, flags: int, payload: bytes) -> bytes:
    """Append a section: rebuild the table one entry longer, shifting every section by 16 bytes."""
    nsec = struct.unpack_from("<H", data, 28)[0]
    entries = [blob.SECTION.unpack_from(data, 32 + 16 * i) for i in range(nsec)]
    body = data[32 + 16 * nsec:]
    shift = 16
    out = bytearray(data[:32])
    struct.pack_into("<H", out, 28, nsec + 1)
    for t, f, off, ln in entries:
        out += blob.SECTION.pack(t, f, off + shift, ln)
    extra_off = len(data) + shift
    out += blob.SECTION.pack(tag, flags, extra_off, len(payload))
    out += body + payload + b"\0" * (-len(payload) % 4)
    # constant tensors hold absolute offsets: shift them too
    toff = _section(bytes(out), b"TENS")[0]
    for i in range(struct.unpack_from("<I", out, toff)[0]):
        pos = toff + 4 + i * blob.TENSOR.size
        rec = list(blob.TENSOR.unpack_from(out, pos))
        if rec[2] & blob.TENSOR_CONST:
            rec[10] += shift
            blob.TENSOR.pack_into(out, pos, *rec)
    struct.pack_into("<I", out, 8, len(out))
    return _refix_crc(out)


def test_unknown_optional_section_is_skipped_and_required_one_rejected():
    data = blob.encode(_graph())
    g = blob.decode(_with_extra_section(data, b"XTRA", 0, b"future stuff"))
    assert len(g.ops) == 2
    with pytest.raises(blob.BlobError, match="unknown required section"):
        blob.decode(_with_extra_section(data, b"XTRA", blob.FLAG_REQUIRED, b"future stuff"))


def test_hostile_fields_with_valid_crc_are_rejected_or_harmless():
    """Every 32-bit word set to each nasty value, CRC recomputed: decode raises BlobError or gives a graph
    the reference can run. Never another exception."""
    data = blob.encode(_graph())
    x = np.zeros((1, 12), np.int8)
    nasty = [0, 1, 3, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(data), len(data) - 4]
    loaded = 0
    for pos in range(16, len(data) - 3, 4):
        for v in nasty:
            b = bytearray(data)
            struct.pack_into("<I", b, pos, v)
            try:
                g = blob.decode(_refix_crc(b))
            except blob.BlobError:
                continue
            reference.run(g, x)
            loaded += 1
    assert loaded > 0  # weight and bias words are legitimately free
