# Runs ON the device (MicroPython): damage a good blob every way and check the loader's answer.
# A crash of the interpreter is the failure this guards against; a ValueError is the right answer.
import struct

import edgeloop
import edgeloop.blob  # noqa: F401  keep the parser resident: thousands of loads follow
from edgeloop import backend


def _load(buf, name):
    try:
        m = edgeloop.load(buf, name)
    except (ValueError, MemoryError):
        return False
    m.predict(bytes(m.input_size))
    return True


def truncations(data, name, step=1):
    loaded = 0
    for n in range(0, len(data), step):
        loaded += _load(data[:n], name)
    return loaded


def bit_flips(data, name, step=1):
    b = bytearray(data)
    loaded = 0
    for bit in range(0, len(b) * 8, step):
        b[bit >> 3] ^= 1 << (bit & 7)
        loaded += _load(b, name)
        b[bit >> 3] ^= 1 << (bit & 7)
    return loaded


NASTY = (0, 1, 3, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def hostile_words(data, name, first=16, step=4):
    """Every 32-bit word set to each nasty value with the CRC fixed: validation must hold on its own."""
    b = bytearray(data)
    loaded = 0
    rejected = 0
    for pos in range(first, len(b) - 3, step):
        old = bytes(b[pos:pos + 4])
        for v in NASTY + (len(b), len(b) - 4):
            struct.pack_into("<I", b, pos, v)
            struct.pack_into("<I", b, 12, backend.crc32(memoryview(b)[16:]))
            if _load(b, name):
                loaded += 1
            else:
                rejected += 1
        b[pos:pos + 4] = old
    return loaded, rejected
