"""Board definitions: board_configs/<name>/board.json (schema below), read by `edgeloop image`,
`edgeloop flash` and `edgeloop deploy --board-config`.

    name, description, kind ("esp32" | "rp2" | "qemu"), chip, mpy_arch
    micropython: {port, board (upstream board it derives from), min_version, layout_from}
    flash:       {size, firmware_offset (where MicroPython's released .bin/.uf2 starts),
                  partition_table_offset, app_offset, app_max}                      (esp32 / rp2)
    filesystem:  {type "littlefs2", mount, offset (from the start of flash), size, block_size,
                  read_size, prog_size, lookahead}   exactly what MicroPython's _boot.py mounts
    paths:       {lib, runtime, natmod, model, manifest, pubkey} relative to the board's cwd
    ota:         {dir, slot_files, manifest_files, state_files, slot_size, max_attempts}
    log:         {dir, max_bytes, segment_bytes, sync_every_records, record_bytes_typical}
    natmod:      {arch, built_here, command}
    build:       {frozen_manifest, user_c_modules, command}
All sizes and offsets are bytes (ints); the board's README.md shows them in hex.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .toolchain import repo_root


def configs_dir() -> Path:
    return repo_root() / "board_configs"


@lru_cache(maxsize=None)
def board_names() -> tuple[str, ...]:
    return tuple(sorted(p.parent.name for p in configs_dir().glob("*/board.json")))


def load_board(name: str) -> dict:
    f = configs_dir() / name / "board.json"
    if not f.is_file():
        raise KeyError(f"no board config {name!r}; known: {', '.join(board_names())}")
    b = json.loads(f.read_text())
    b["dir"] = str(f.parent)
    return b


def budget(b: dict) -> dict:
    """How the filesystem is shared: runtime + natmod, two OTA slots, the log, and what is left."""
    fs = b["filesystem"]
    runtime = 64 * 1024          # precompiled runtime (~45 KB) + a natmod (~24 KB), rounded up
    slots = 2 * b["ota"]["slot_size"]
    log = b["log"]["max_bytes"]
    reserve = 8 * fs["block_size"]   # littlefs metadata pairs, directories, state records
    return {"filesystem": fs["size"], "runtime": runtime, "ota_slots": slots, "log": log,
            "reserve": reserve, "free": fs["size"] - runtime - slots - log - reserve}
