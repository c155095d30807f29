"""MicroPython source, firmware and natmod builds for edgeloop, cached by input hash.

Python API (the CLI is `python -m edgeloop_host.toolchain`):

    firmware_path(name) -> Path     artifact of a build, building it first if needed
                                    name: unix | qemu-arm | natmod-x64 | natmod-armv7m |
                                          natmod-armv6m | natmod-rv32imc
    micropython_source() -> Path    the MicroPython 1.25.0 source tree (fetched once)
    build(name, force=False) -> BuildResult(name, path, key, cached, seconds)
    cached_path(name) -> Path|None  the artifact if already built for the current inputs
    cache_root() -> Path            $EDGELOOP_CACHE or ~/.cache/edgeloop
    Toolchain(repo=None, cache=None) the same for another checkout / cache root
"""

from __future__ import annotations

from pathlib import Path

from .build import BuildResult, Toolchain
from .core import BuildError, cache_root, repo_root
from .recipes import ALL, NATMOD_ARCHS, RECIPES
from .source import MICROPYTHON_VERSION

__all__ = ["ALL", "BUILDS", "NATMOD_ARCHS", "BuildError", "BuildResult", "MICROPYTHON_VERSION",
           "Toolchain", "build", "cache_root", "cached_path", "firmware_path", "micropython_source",
           "natmod_name", "repo_root"]

BUILDS = ALL


def _default() -> Toolchain:
    return Toolchain()


def firmware_path(name: str) -> Path:
    """Path of the built artifact `name` (binary, firmware.elf or _edgeloop.mpy), building if missing."""
    return _default().firmware_path(name)


def build(name: str, force: bool = False) -> BuildResult:
    return _default().build(name, force=force)


def cached_path(name: str) -> Path | None:
    return _default().cached_path(name)


def micropython_source() -> Path:
    """The MicroPython source tree in the cache (fetched and verified on first use)."""
    return _default().micropython_source()


def natmod_name(arch: str) -> str:
    """Build name of the natmod for an mpy arch (x64, armv7m, armv6m, rv32imc)."""
    if arch not in NATMOD_ARCHS:
        raise BuildError(f"no natmod build for arch {arch!r}; known: {', '.join(NATMOD_ARCHS)}")
    return f"natmod-{arch}"
