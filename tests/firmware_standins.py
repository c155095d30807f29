"""Stand-in firmware files for image tests (real MicroPython firmware cannot be fetched here).

ESP32: a MicroPython-style released .bin (bootloader at its start, partition table at 0x8000, app
at 0x10000, all relative to the chip's bootloader offset) whose bootloader and app are real ESP
image files made with esptool's own image classes, so `esptool image-info` accepts them.
RP2040: a UF2 of a small flash image at 0x10000000 (RP2040 family id), like the released .uf2.
"""
from __future__ import annotations

import hashlib
import struct

from edgeloop_host.image import uf2_write

PARTITIONS_4MIB = [  # ports/esp32/partitions-4MiB.csv
    ("nvs", 1, 0x02, 0x9000, 0x6000),
    ("phy_init", 1, 0x01, 0xF000, 0x1000),
    ("factory", 0, 0x00, 0x10000, 0x1F0000),
    ("vfs", 1, 0x81, 0x200000, 0x200000),
]


def partition_table(parts=PARTITIONS_4MIB) -> bytes:
    out = b""
    for label, typ, sub, off, size in parts:
        out += struct.pack("<2sBBII16sI", b"\xaa\x50", typ, sub, off, size, label.encode().ljust(16, b"\0"), 0)
    out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    return out.ljust(0xC00, b"\xff")


def esp_image(chip: str, segments: list[tuple[int, bytes]], entry: int) -> bytes:
    from esptool import bin_image

    cls = {"esp32": bin_image.ESP32FirmwareImage, "esp32c3": bin_image.ESP32C3FirmwareImage}[chip]
    img = cls()
    img.entrypoint = entry
    img.segments = [bin_image.ELFSection(b".standin", a, d, 0) for a, d in segments]
    img.flash_mode, img.flash_size_freq = 2, 0x20     # dio, 4MB / 40 MHz
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "img.bin")
        img.save(p)
        return open(p, "rb").read()


ADDRS = {  # (IRAM for the bootloader, DROM, IROM) per chip
    "esp32": (0x40080400, 0x3F400020, 0x400D0020),
    "esp32c3": (0x403CE000, 0x3C000020, 0x42000020),
}


def esp32_firmware(chip: str = "esp32", with_cmodule: bool = False) -> bytes:
    boot_offset = 0x1000 if chip == "esp32" else 0x0
    iram, drom, irom = ADDRS[chip]
    boot = esp_image(chip, [(iram, b"\x00" * 512)], iram)
    # app: an esp_app_desc_t-like DROM segment (magic 0xABCD5432) and some code
    desc = (struct.pack("<IIII", 0xABCD5432, 0, 0, 0) + b"v1.25.0".ljust(32, b"\0")   # esp_app_desc_t
            + b"micropython".ljust(32, b"\0") + b"00:00:00".ljust(16, b"\0") + b"Jan  1 2025".ljust(16, b"\0")
            + b"v5.2.2 (stand-in)".ljust(32, b"\0"))
    desc = desc.ljust(256, b"\0") + (b"_edgeloop\0" if with_cmodule else b"") + b"standin rodata" * 40
    app = esp_image(chip, [(drom, desc), (irom, bytes(range(256)) * 64)], irom)
    fw = bytearray(b"\xff" * (0x10000 - boot_offset))
    fw[0:len(boot)] = boot
    fw[0x8000 - boot_offset:0x8000 - boot_offset + 0xC00] = partition_table()
    return bytes(fw) + app


def rp2_uf2(size: int = 300 * 1024, with_cmodule: bool = False) -> bytes:
    body = bytearray(hashlib.sha256(b"rp2 standin").digest() * (size // 32))
    if with_cmodule:
        body[1000:1010] = b"_edgeloop\0"
    return uf2_write([(0x10000000, bytes(body))], 0xE48BFF56)
