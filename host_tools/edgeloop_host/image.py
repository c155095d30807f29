"""`edgeloop image` / `edgeloop flash`: one flash image holding MicroPython and a filesystem that already
has the runtime, the model, its manifest and the OTA key, so a board is ready after one write.

ESP32 (board.json kind "esp32"): MicroPython's released firmware .bin (bootloader + partition table +
app, flashed at 0x1000 on the ESP32 and 0x0 on the C3) is merged with a littlefs image placed at the
`vfs` partition of the firmware's own partition table (checked against board.json) by `esptool
merge-bin`; the result is written with `esptool write-flash 0x0 flash.bin`.

RP2040 (kind "rp2"): a UF2 file with the firmware's blocks and the littlefs image at MicroPython's rp2
filesystem offset (the last MICROPY_HW_FLASH_STORAGE_BYTES of the 2 MB flash), copied to the RPI-RP2
drive in BOOTSEL mode.

The littlefs image uses exactly the parameters MicroPython mounts with (block size, block count =
partition size / block size, read/prog/lookahead sizes, disk version 2.1), and every image is read
back with littlefs-python before it is reported as written.
"""
from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .boards import load_board
from .deploy import DEFAULT_PATHS, _arch_ok, parse_mpy_header

LFS_DISK_VERSION = 0x00020001      # MicroPython 1.25's lib/littlefs (v2.8) writes and reads 2.1


class ImageError(RuntimeError):
    pass


# ---- littlefs ---------------------------------------------------------------------------------

def _lfs_params(fs: dict) -> dict:
    bs = fs["block_size"]
    return dict(block_size=bs, block_count=fs["size"] // bs, read_size=fs["read_size"],
                prog_size=fs["prog_size"], lookahead_size=fs["lookahead"],
                cache_size=min(bs, 4 * max(fs["read_size"], fs["prog_size"])),   # as extmod/vfs_lfsx.c
                block_cycles=100, disk_version=LFS_DISK_VERSION)


def build_littlefs(fs: dict, files: dict[str, bytes]) -> bytes:
    """A littlefs2 image of fs['size'] bytes holding `files` (remote path -> bytes, '/'-separated)."""
    from littlefs import LittleFS

    if fs["size"] % fs["block_size"]:
        raise ImageError(f"filesystem size {fs['size']} is not a multiple of the block size {fs['block_size']}")
    lfs = LittleFS(**_lfs_params(fs))
    for path, data in sorted(files.items()):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            try:
                lfs.mkdir(d)
            except FileExistsError:
                pass
        try:
            with lfs.open(path.strip("/"), "wb") as f:
                f.write(data)
        except OSError as e:   # littlefs-python raises LittleFSError (an OSError) with LFS_ERR_NOSPC
            raise ImageError(f"the files do not fit the {fs['size']} B filesystem ({e}): "
                             f"{sum(len(d) for d in files.values())} B of files") from None
    return bytes(lfs.context.buffer)


def read_littlefs(fs: dict, image: bytes) -> dict[str, bytes]:
    """Every file in a littlefs image (mounted with the board's parameters) -> {path: bytes}."""
    from littlefs import LittleFS

    lfs = LittleFS(mount=False, **_lfs_params(fs))
    lfs.context.buffer[:] = image[: fs["size"]]
    lfs.mount()
    out = {}
    for root, _dirs, names in lfs.walk("/"):
        for n in names:
            p = f"{root.rstrip('/')}/{n}".lstrip("/")
            with lfs.open(p, "rb") as f:
                out[p] = f.read()
    return out


# ---- ESP32 partition table / images -------------------------------------------------------------

PART_MAGIC = b"\xaa\x50"


def parse_partition_table(data: bytes) -> list[dict]:
    """ESP-IDF binary partition table (32-byte entries until the MD5 entry or 0xFF)."""
    parts = []
    for i in range(0, min(len(data), 0xC00), 32):
        e = data[i:i + 32]
        if len(e) < 32 or e[:2] != PART_MAGIC:
            break
        _, typ, sub, off, size, label, flags = struct.unpack("<2sBBII16sI", e)
        parts.append({"label": label.rstrip(b"\0").decode(errors="replace"), "type": typ, "subtype": sub,
                      "offset": off, "size": size, "flags": flags})
    return parts


def _esptool(*args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esptool", *args], capture_output=capture, text=True)


def esp_image_info(app: bytes, chip: str) -> str:
    """`esptool image-info` on an app image; raises ImageError if esptool rejects it."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "app.bin"
        p.write_bytes(app)
        r = _esptool("--chip", chip, "image-info", str(p))
    if r.returncode != 0 or "invalid" in r.stdout.lower():
        raise ImageError(f"esptool image-info rejects the app image: {(r.stdout + r.stderr).strip()[-600:]}")
    return r.stdout


# ---- UF2 --------------------------------------------------------------------------------------

UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
UF2_FLAG_FAMILY = 0x00002000
UF2_FLAG_NOT_MAIN_FLASH = 0x00000001


def uf2_blocks(data: bytes) -> list[dict]:
    """Parse a UF2 file -> [{addr, payload, family, flags, block_no, num_blocks}]."""
    if len(data) % 512:
        raise ImageError(f"not a UF2 file: {len(data)} bytes is not a multiple of 512")
    out = []
    for i in range(0, len(data), 512):
        b = data[i:i + 512]
        m0, m1, flags, addr, size, no, num, fam = struct.unpack("<8I", b[:32])
        (mend,) = struct.unpack("<I", b[508:512])
        if (m0, m1, mend) != (UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END) or size > 476:
            raise ImageError(f"not a UF2 file: bad block {i // 512}")
        out.append({"addr": addr, "payload": b[32:32 + size], "family": fam, "flags": flags,
                    "block_no": no, "num_blocks": num})
    return out


def uf2_write(chunks: list[tuple[int, bytes]], family: int, payload: int = 256) -> bytes:
    """UF2 file from (address, bytes) pieces, `payload` bytes per block (256 = one RP2040 page)."""
    blocks = []
    for addr, data in chunks:
        for off in range(0, len(data), payload):
            piece = data[off:off + payload]
            blocks.append((addr + off, piece.ljust(payload, b"\xff") if len(piece) < payload else piece))
    n = len(blocks)
    out = bytearray()
    for no, (addr, piece) in enumerate(blocks):
        hdr = struct.pack("<8I", UF2_MAGIC0, UF2_MAGIC1, UF2_FLAG_FAMILY, addr, len(piece), no, n, family)
        out += hdr + piece + bytes(476 - len(piece)) + struct.pack("<I", UF2_MAGIC_END)
    return bytes(out)


def uf2_to_flash(blocks: list[dict], base: int) -> tuple[int, bytes]:
    """(lowest address, contiguous bytes 0xFF-filled) covered by UF2 blocks."""
    lo = min(b["addr"] for b in blocks)
    hi = max(b["addr"] + len(b["payload"]) for b in blocks)
    buf = bytearray(b"\xff" * (hi - lo))
    for b in blocks:
        buf[b["addr"] - lo:b["addr"] - lo + len(b["payload"])] = b["payload"]
    return lo, bytes(buf)


# ---- the files for the filesystem ----------------------------------------------------------------

def fs_files(board: dict, model=None, manifest=None, pubkey=None, natmod=None, firmware: bytes = b"",
             extra=()) -> tuple[dict[str, bytes], list[str]]:
    """{remote path: bytes} for the board's filesystem, and notes on what was chosen."""
    from . import toolchain
    from .deploy import _pubkey_bytes, _runtime_files

    paths = {**DEFAULT_PATHS, **board.get("paths", {})}
    arch = board["mpy_arch"]
    files, notes = {}, []
    for name, data in _runtime_files(arch):
        files[f"{paths['lib']}/{name}"] = data
    notes.append(f"runtime precompiled for {arch}")
    has_c = b"_edgeloop" in firmware   # the qstr is in the firmware when the C module is built in
    if natmod:
        data = Path(natmod).read_bytes()
        _, _, nat_arch = parse_mpy_header(data)
        if not nat_arch or not _arch_ok(nat_arch, arch):
            raise ImageError(f"{natmod} is a natmod for {nat_arch}, but {board['name']} runs {arch} code")
        files[paths["natmod"]] = data
        notes.append(f"natmod {natmod} ({nat_arch})")
    elif has_c:
        notes.append("the firmware has the _edgeloop C module built in: no natmod")
    elif arch in toolchain.NATMOD_ARCHS:
        files[paths["natmod"]] = toolchain.firmware_path(toolchain.natmod_name(arch)).read_bytes()
        notes.append(f"natmod for {arch} (the firmware has no _edgeloop C module)")
    else:
        notes.append(f"no natmod for {arch} (build one with ESP-IDF, see board_configs/{board['name']}/README.md, "
                     "and pass --natmod): the pure-Python kernels will be used")
    if model:
        from . import blob

        try:
            data = blob.read_checked(model)
        except ValueError as e:
            raise ImageError(str(e)) from None
        files[paths["model"]] = data
    if manifest:
        files[paths["manifest"]] = Path(manifest).read_bytes()
    if pubkey:
        files[paths["pubkey"]] = _pubkey_bytes(pubkey)
    for spec in extra:
        local, _, remote = spec.partition("=")
        if not remote:
            raise ImageError(f"--add {spec!r}: use LOCAL=REMOTE")
        files[remote.strip("/")] = Path(local).read_bytes()
    return files, notes


# ---- build ------------------------------------------------------------------------------------

@dataclass
class ImageResult:
    board: str
    output: Path
    kind: str
    fs_offset: int
    fs_size: int
    files: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flash_command: str = ""

    def summary(self) -> str:
        lines = [f"wrote {self.output} ({self.output.stat().st_size} B) for {self.board}",
                 f"  littlefs at 0x{self.fs_offset:x}, {self.fs_size} B: "
                 f"{len(self.files)} files, {sum(self.files.values())} B (read back and verified)"]
        lines += [f"    {p} ({n} B)" for p, n in sorted(self.files.items())]
        lines += [f"  {n}" for n in self.notes]
        lines.append(f"flash it: {self.flash_command}")
        return "\n".join(lines)


def build_image(board_name: str, firmware, output, model=None, manifest=None, pubkey=None, natmod=None,
                extra=()) -> ImageResult:
    try:
        board = load_board(board_name)
    except KeyError as e:
        raise ImageError(str(e.args[0])) from None
    fw_path = Path(firmware)
    try:
        fw = fw_path.read_bytes()
    except OSError as e:
        raise ImageError(f"{firmware}: {e.strerror}") from None
    for f in (model, manifest, pubkey, natmod):
        if f and not Path(f).is_file():
            raise ImageError(f"{f}: no such file")
    if board["kind"] == "esp32":
        return _build_esp32(board, fw, fw_path, Path(output), model, manifest, pubkey, natmod, extra)
    if board["kind"] == "rp2":
        return _build_rp2(board, fw, fw_path, Path(output), model, manifest, pubkey, natmod, extra)
    raise ImageError(f"{board_name} is an emulated board: there is no flash image; use "
                     f"`edgeloop deploy --board {board.get('emulated', board_name)}`")


def _build_esp32(board, fw, fw_path, output, model, manifest, pubkey, natmod, extra) -> ImageResult:
    fl, fs = board["flash"], dict(board["filesystem"])
    base = fl["firmware_offset"]
    if fw[:1] != b"\xe9":
        raise ImageError(f"{fw_path}: not an ESP32 firmware image (no 0xE9 magic at its start)")
    pt_at = fl["partition_table_offset"] - base
    parts = parse_partition_table(fw[pt_at:pt_at + 0xC00]) if len(fw) > pt_at else []
    if not parts:
        raise ImageError(f"{fw_path}: no partition table at 0x{fl['partition_table_offset']:x}: pass MicroPython's "
                         f"full firmware .bin (bootloader + partition table + app, as released for "
                         f"{board['micropython']['board']}, flashed at 0x{base:x}), not the app image alone")
    notes = []
    vfs = [p for p in parts if p["type"] == 1 and p["label"] in ("vfs", fs.get("partition", "vfs"))]
    if not vfs:
        raise ImageError(f"{fw_path}: its partition table has no `vfs` data partition: {[p['label'] for p in parts]}")
    v = vfs[0]
    if (v["offset"], v["size"]) != (fs["offset"], fs["size"]):
        notes.append(f"the firmware's partition table puts vfs at 0x{v['offset']:x} ({v['size']} B), not at "
                     f"board.json's 0x{fs['offset']:x} ({fs['size']} B): using the firmware's")
        fs["offset"], fs["size"] = v["offset"], v["size"]
    apps = [p for p in parts if p["type"] == 0]
    app = apps[0] if apps else None
    if app is None:
        raise ImageError(f"{fw_path}: its partition table has no app partition")
    app_bytes = fw[app["offset"] - base:]
    if not app_bytes:
        raise ImageError(f"{fw_path}: ends before the app partition at 0x{app['offset']:x}")
    info = esp_image_info(app_bytes, board["chip"])
    if base + len(fw) > fs["offset"]:
        raise ImageError(f"{fw_path}: the firmware ({len(fw)} B from 0x{base:x}) runs into the filesystem at "
                         f"0x{fs['offset']:x}")
    files, fnotes = fs_files(board, model, manifest, pubkey, natmod, fw, extra)
    image = build_littlefs(fs, files)
    _verify_lfs(fs, image, files)
    with tempfile.TemporaryDirectory() as d:
        fsbin = Path(d) / "littlefs.bin"
        fsbin.write_bytes(image)
        r = _esptool("--chip", board["chip"], "merge-bin", "-o", str(output), "--flash-mode", "keep",
                     "--flash-freq", "keep", "--flash-size", "keep",
                     hex(base), str(fw_path), hex(fs["offset"]), str(fsbin))
        if r.returncode != 0:
            raise ImageError(f"esptool merge-bin failed: {(r.stdout + r.stderr).strip()[-800:]}")
    merged = output.read_bytes()
    if merged[base:base + len(fw)] != fw or merged[fs["offset"]:fs["offset"] + fs["size"]] != image:
        raise ImageError("esptool merge-bin output does not hold the firmware and filesystem where expected")
    _verify_lfs(fs, merged[fs["offset"]:], files)
    notes.append("esptool image-info accepts the app: " + _first(info, "Entry point") )
    return ImageResult(board["name"], output, "esp32", fs["offset"], fs["size"],
                       {p: len(b) for p, b in files.items()}, fnotes + notes,
                       f"edgeloop flash --board {board['name']} --port PORT {output}   (= esptool --chip "
                       f"{board['chip']} --port PORT write-flash 0x0 {output})")


def _first(text: str, key: str) -> str:
    for line in text.splitlines():
        if key.lower() in line.lower():
            return line.strip()
    return "ok"


def _build_rp2(board, fw, fw_path, output, model, manifest, pubkey, natmod, extra) -> ImageResult:
    fl, fs = board["flash"], board["filesystem"]
    xip, family = fl["xip_base"], fl["uf2_family_id"]
    fs_addr = xip + fs["offset"]
    if fw[:4] == struct.pack("<I", UF2_MAGIC0):
        blocks = uf2_blocks(fw)
        fams = {b["family"] for b in blocks if b["flags"] & UF2_FLAG_FAMILY}
        if fams and fams != {family}:
            raise ImageError(f"{fw_path}: UF2 family {[hex(f) for f in fams]} is not RP2040's 0x{family:08x}")
        blocks = [b for b in blocks if not b["flags"] & UF2_FLAG_NOT_MAIN_FLASH]
        lo, flat = uf2_to_flash(blocks, xip)
    else:
        lo, flat = xip, fw
    if lo < xip or lo + len(flat) > fs_addr:
        raise ImageError(f"{fw_path}: the firmware covers 0x{lo:x}..0x{lo + len(flat):x}, which runs into the "
                         f"filesystem at 0x{fs_addr:x} (or starts below flash at 0x{xip:x})")
    files, notes = fs_files(board, model, manifest, pubkey, natmod, flat, extra)
    image = build_littlefs(fs, files)
    _verify_lfs(fs, image, files)
    pieces = [(lo, flat)] if fw[:4] != struct.pack("<I", UF2_MAGIC0) else \
        [(b["addr"], b["payload"]) for b in blocks]
    out = uf2_write(pieces + [(fs_addr, image)], family)
    output.write_bytes(out)
    # read back: the filesystem blocks cover exactly [fs_addr, fs_addr + size) and hold the image
    back = [b for b in uf2_blocks(output.read_bytes()) if b["addr"] >= fs_addr]
    a, flat_fs = uf2_to_flash(back, fs_addr)
    if a != fs_addr or flat_fs != image:
        raise ImageError("UF2 read-back: the filesystem blocks do not hold the image")
    _verify_lfs(fs, flat_fs, files)
    return ImageResult(board["name"], output, "rp2", fs["offset"], fs["size"],
                       {p: len(b) for p, b in files.items()}, notes,
                       f"hold BOOTSEL while plugging the board in, then copy {output} to the RPI-RP2 drive "
                       f"(`edgeloop flash --board {board['name']} {output}` says the same)")


def _verify_lfs(fs: dict, image: bytes, files: dict[str, bytes]) -> None:
    got = read_littlefs(fs, image)
    if got != files:
        missing = sorted(set(files) - set(got))
        differ = sorted(p for p in files if p in got and got[p] != files[p])
        raise ImageError(f"littlefs read-back differs: missing {missing}, different {differ}")


# ---- flash ------------------------------------------------------------------------------------

def flash(board_name: str, image, port: str | None = None, baud: int = 460800, dry_run: bool = False,
          out=None) -> int:
    out = out or sys.stdout
    try:
        board = load_board(board_name)
    except KeyError as e:
        raise ImageError(str(e.args[0])) from None
    image = Path(image)
    if not image.is_file():
        raise ImageError(f"{image}: no such file (make it with `edgeloop image --board {board_name} ...`)")
    data = image.read_bytes()
    if board["kind"] == "rp2":
        try:
            uf2_blocks(data)
        except ImageError:
            raise ImageError(f"{image} is not a UF2 file: make one with `edgeloop image --board {board_name} "
                             f"--firmware RPI_PICO-....uf2 -o flash.uf2`") from None
        drives = [p for pat in ("/media/*/RPI-RP2", "/run/media/*/RPI-RP2", "/Volumes/RPI-RP2")
                  for p in Path("/").glob(pat.lstrip("/"))]
        print(f"{board['description']}: the RP2040 is flashed by its boot ROM, not over serial:\n"
              f"  1. unplug the board, hold the BOOTSEL button, plug it in, release BOOTSEL\n"
              f"  2. a USB drive named RPI-RP2 appears{' (found: ' + ', '.join(map(str, drives)) + ')' if drives else ''}\n"
              f"  3. cp {image} {drives[0] if drives else '/media/$USER/RPI-RP2/'}\n"
              f"  the board reboots into MicroPython with the filesystem in place; then\n"
              f"  `edgeloop diag --port /dev/ttyACM0`", file=out)
        return 0
    if board["kind"] != "esp32":
        raise ImageError(f"{board_name} is an emulated board: use `edgeloop deploy --board ...`")
    if data[:1] != b"\xff" and board["flash"]["firmware_offset"] != 0:
        raise ImageError(f"{image} does not start with erased flash before the bootloader at "
                         f"0x{board['flash']['firmware_offset']:x}: is it an `edgeloop image` output?")
    if len(data) > board["flash"]["size"]:
        raise ImageError(f"{image} ({len(data)} B) is larger than the board's {board['flash']['size']} B flash")
    cmd = [sys.executable, "-m", "esptool", "--chip", board["chip"], "--port", port or "PORT",
           "--baud", str(baud), "write-flash", "0x0", str(image)]
    if dry_run or not port:
        print(" ".join(cmd[2:]).replace(sys.executable + " -m ", ""), file=out)
        if not port and not dry_run:
            raise ImageError("--port is needed to flash an ESP32 (e.g. --port /dev/ttyUSB0)")
        return 0
    import os

    if not os.path.exists(port):
        raise ImageError(f"no board on {port}: the port does not exist (is the board plugged in? "
                         "`python -m esptool chip-id` without --port searches for one)")
    return subprocess.call(cmd)


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
