"""Build recipes: what each firmware / natmod build runs and which repo files it depends on.

The text of this file is part of every build key, so editing a recipe rebuilds what it describes.
Command templates use placeholders filled at build time:
  {src}     the MicroPython source tree (cache)
  {work}    the temporary build directory; `output` is relative to it
  {snap}    {work}/snap: a private copy of the repo inputs (same relative layout as the repo)
  {python}  this interpreter (it has pyelftools, which tools/mpy_ld.py needs)
"""

from __future__ import annotations

from dataclasses import dataclass, field

JOBS = "-j2"

# Options for both firmware builds that link our user C module.
_UNIX_FLAGS = (
    "MICROPY_PY_BTREE=0",            # Debian strips lib/berkeley-db-1.xx
    "MICROPY_PY_SSL=0",              # ... and lib/mbedtls
    "FROZEN_MANIFEST={src}/debian/config/manifest.py",  # asyncio + mip; the default needs stripped libs
)


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str                        # "unix" | "qemu" | "natmod"
    inputs: tuple[str, ...]          # repo-relative trees snapshotted and hashed
    output: str                      # artifact path relative to {work}
    cwd: str                         # make -C <cwd>
    args: tuple[str, ...]            # make arguments (templates)
    compiler: str                    # its `--version` goes into the key
    description: str = ""
    uses_cmodule: bool = field(default=True)

    def render(self, **values: str) -> tuple[str, list[str]]:
        return self.cwd.format(**values), [a.format(**values) for a in self.args]


NATMOD_ARCHS = {
    # arch: (compiler, extra make args, what it is for)
    "x64": ("gcc", (), "unix port / stock unix wheel (x86-64)"),
    "armv7m": ("arm-none-eabi-gcc", (), "Cortex-M3/M4/M7 boards (STM32, qemu mps2-an385)"),
    "armv6m": ("arm-none-eabi-gcc", (), "Cortex-M0/M0+ (RP2040); also loads on armv7m"),
    "rv32imc": ("riscv64-unknown-elf-gcc", ("CFLAGS_EXTRA=-march=rv32imc",), "ESP32-C3/C6 (RISC-V)"),
}

RECIPES: dict[str, Recipe] = {
    "unix": Recipe(
        name="unix", kind="unix",
        inputs=("device/cmodule",),
        output="build/micropython",
        cwd="{src}/ports/unix",
        args=(JOBS, "BUILD={work}/build", "USER_C_MODULES={snap}/device/cmodule", *_UNIX_FLAGS,
              "PYTHON={python}"),
        compiler="cc",
        description="unix port + user C module _edgeloop",
    ),
    "qemu-arm": Recipe(
        name="qemu-arm", kind="qemu",
        inputs=("device/cmodule", "board_configs/qemu_common", "board_configs/qemu_arm"),
        output="build/firmware.elf",
        cwd="{src}/ports/qemu",
        args=(JOBS, "BOARD_DIR={snap}/board_configs/qemu_arm", "BUILD={work}/build",
              "USER_C_MODULES={snap}/device/cmodule", "PYTHON={python}"),
        compiler="arm-none-eabi-gcc",
        description="qemu mps2-an385 (Cortex-M3) + littlefs /flash + _edgeloop",
    ),
    "qemu-rv32": Recipe(
        name="qemu-rv32", kind="qemu",
        inputs=("device/cmodule", "board_configs/qemu_common", "board_configs/qemu_rv32"),
        output="build/firmware.elf",
        cwd="{src}/ports/qemu",
        # Debian's gcc 12 has no multilib for rv32imac_zicsr: link for rv32imac, assemble with zicsr
        args=(JOBS, "BOARD=EDGELOOP_QEMU_RV32", "BOARD_DIR={snap}/board_configs/qemu_rv32", "BUILD={work}/build",
              "USER_C_MODULES={snap}/device/cmodule", "PYTHON={python}", "RV32_ARCH=rv32imac",
              "AFLAGS=-mabi=ilp32 -march=rv32imac_zicsr"),
        compiler="riscv64-unknown-elf-gcc",
        description="qemu virt (RV32IMAC, mpy arch rv32imc) + littlefs /flash + _edgeloop",
    ),
    "qemu-m0": Recipe(
        name="qemu-m0", kind="qemu",
        inputs=("device/cmodule", "board_configs/qemu_common", "board_configs/qemu_m0"),
        output="build/firmware.elf",
        cwd="{src}/ports/qemu",
        args=(JOBS, "BOARD=EDGELOOP_QEMU_M0", "BOARD_DIR={snap}/board_configs/qemu_m0", "BUILD={work}/build",
              "USER_C_MODULES={snap}/device/cmodule", "PYTHON={python}"),
        compiler="arm-none-eabi-gcc",
        description="qemu microbit (nRF51 Cortex-M0, armv6m; 512 KB SRAM) + littlefs /flash + _edgeloop",
    ),
}

for _arch, (_cc, _extra, _what) in NATMOD_ARCHS.items():
    RECIPES[f"natmod-{_arch}"] = Recipe(
        name=f"natmod-{_arch}", kind="natmod",
        inputs=("device/cmodule", "device/natmod"),
        output="snap/device/natmod/_edgeloop.mpy",   # built in place in the snapshot
        cwd="{snap}/device/natmod",
        args=(JOBS, f"ARCH={_arch}", "MPY_DIR={src}", "PYTHON={python}", *_extra),
        compiler=_cc,
        description=f"_edgeloop.mpy natmod for {_arch}: {_what}",
    )

ALL = ("unix", "qemu-arm", "qemu-rv32", "qemu-m0", *(f"natmod-{a}" for a in NATMOD_ARCHS))
