"""Cache location, locking, input hashing and progress output shared by the toolchain modules."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
from pathlib import Path
from typing import Iterable, Iterator

# Files never taken as build inputs (editor droppings, caches, build products).
_SKIP_DIRS = {"__pycache__", ".git", "build", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".o", ".swp", ".swo", "~", ".orig", ".rej", ".mpy", ".elf", ".map")


class BuildError(RuntimeError):
    """A build or fetch failed; the message holds the tail of its log."""


def repo_root() -> Path:
    """The edgeloop checkout this package belongs to (installed editable from the repo)."""
    env = os.environ.get("EDGELOOP_REPO")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    root = here.parents[3]
    if not (root / "device").is_dir():
        raise BuildError(f"cannot locate the edgeloop repository from {here}; set EDGELOOP_REPO")
    return root


def cache_root() -> Path:
    env = os.environ.get("EDGELOOP_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "edgeloop"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def progress(msg: str) -> None:
    print(f"edgeloop: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def lock(root: Path, name: str) -> Iterator[None]:
    """An exclusive inter-process lock (flock on <cache>/locks/<name>)."""
    d = root / "locks"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / name, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another process holding the {name} lock ...")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def input_files(base: Path, rel: str) -> list[tuple[str, Path]]:
    """(relative path, absolute path) of every input file under base/rel, sorted."""
    top = base / rel
    if top.is_file():
        return [(rel, top)]
    out = []
    if not top.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith(".") or fn.endswith(_SKIP_SUFFIXES):
                continue
            p = Path(dirpath) / fn
            out.append((p.relative_to(base).as_posix(), p))
    return out


def hash_inputs(base: Path, rels: Iterable[str], extra: Iterable[str]) -> tuple[str, list[str]]:
    """sha256 over the listed file trees (paths, exec bits and contents) and extra strings.

    Returns the hex digest and a human-readable manifest of what went in.
    """
    h = hashlib.sha256()
    manifest = []
    for e in extra:
        h.update(b"X\0" + e.encode() + b"\0")
        manifest.append(f"param {e}")
    for rel in rels:
        for relpath, p in input_files(base, rel):
            data = p.read_bytes()
            mode = "x" if os.access(p, os.X_OK) else "-"
            digest = hashlib.sha256(data).hexdigest()
            h.update(f"F\0{relpath}\0{mode}\0{digest}\0".encode())
            manifest.append(f"file {digest} {mode} {relpath}")
    return h.hexdigest(), manifest
