"""ROMFS images (MicroPython's `vfs.VfsRom`, 1.25+) that keep every file 4-byte aligned, so a model
opened from a memory-mapped ROMFS partition runs straight from flash: the C kernels read int32
constants in place, nothing is copied to RAM. (mpremote's own builder aligns to 2 bytes only.)

Layout: header, then for each file a PADDING record that aligns the next payload, a DATA_VERBATIM
record holding the file, and at the end the FILE records pointing at their data (DATA_POINTER).
"""
from __future__ import annotations

from pathlib import Path

HEADER = b"\xd2\xcd\x31"
KIND_PADDING, KIND_DATA_VERBATIM, KIND_DATA_POINTER, KIND_DIRECTORY, KIND_FILE = 1, 2, 3, 4, 5
ALIGN = 4


def _uint(v: int) -> bytes:
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.insert(0, 0x80 | (v & 0x7F))
        v >>= 7
    return bytes(out)


def _record(kind: int, payload: bytes) -> bytes:
    return _uint(kind) + _uint(len(payload)) + payload


def _padding(n: int) -> bytes:
    """A PADDING record of exactly n bytes (n == 0 or n >= 2)."""
    if n == 0:
        return b""
    for payload in range(n - 1, -1, -1):
        r = _record(KIND_PADDING, bytes(payload))
        if len(r) == n:
            return r
    raise ValueError(n)


def _body(files: list[tuple[str, bytes]], base: int) -> bytes:
    """Top-level records, given that they start at absolute image offset `base`."""
    out = bytearray()
    pointers = []
    for name, data in files:
        head = _uint(KIND_DATA_VERBATIM) + _uint(len(data))
        pos = base + len(out)
        pad = (-(pos + len(head))) % ALIGN
        if pad == 1:  # no record is 1 byte long: pad by 5
            pad = 5
        out += _padding(pad)
        pointers.append((name, len(data), len(out) + len(head)))  # offset from the records' start
        out += head + data
    for name, size, offset in pointers:
        fname = name.encode("ascii")
        payload = _uint(len(fname)) + fname + _record(KIND_DATA_POINTER, _uint(size) + _uint(offset))
        out += _record(KIND_FILE, payload)
    return bytes(out)


def build(files: dict[str, bytes]) -> bytes:
    """Image with the given top-level files (names without '/'), each payload 4-byte aligned."""
    items = sorted(files.items())
    for name, _ in items:
        if "/" in name or not name:
            raise ValueError(f"romfs: {name!r}: only plain top-level file names are supported")
    header_len = len(HEADER) + 1
    while True:
        body = _body(items, header_len)
        if (header_len + len(body)) % 2:
            body += _padding(3)  # MicroPython wants an even image length
        enc = _uint(len(body))
        if len(HEADER) + len(enc) == header_len:
            return HEADER + enc + body
        header_len = len(HEADER) + len(enc)


def build_from_dir(path: Path) -> bytes:
    return build({p.name: p.read_bytes() for p in sorted(Path(path).iterdir()) if p.is_file()})
