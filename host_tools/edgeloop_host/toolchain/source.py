"""The MicroPython source tree, fetched once into the cache.

MicroPython 1.25.0 comes from Debian trixie's `micropython` source package, downloaded with
`apt-get source` under a private apt configuration (private lists dir, private sources list, no
system source parts), so nothing in the machine's own apt setup is touched. The Debian mirror URI is
taken from the machine's own apt configuration at run time. The orig tarball is checked against a
pinned sha256 before it is unpacked.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import core

MICROPYTHON_VERSION = "1.25.0"
DEBIAN_PACKAGE = "micropython"
DEBIAN_SUITE = "trixie"
ORIG_TARBALL = "micropython_1.25.0+ds.orig.tar.xz"
ORIG_SHA256 = "7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# Files the build needs from the tree; checked to tell a usable tree from a broken one.
_REQUIRED = ("py/mkrules.mk", "py/dynruntime.mk", "ports/unix/Makefile", "ports/qemu/Makefile",
             "tools/mpy_ld.py", "lib/littlefs/lfs2.c", "debian/config/manifest.py")


class SourceError(core.BuildError):
    pass


def source_dir(cache: Path | None = None) -> Path:
    return (cache or core.cache_root()) / "src" / f"micropython-{MICROPYTHON_VERSION}"


def _is_complete(tree: Path) -> bool:
    return (tree / ".edgeloop-source-ok").is_file() and all((tree / p).exists() for p in _REQUIRED)


def debian_mirror_uri() -> str:
    """The Debian archive URI this machine's apt already uses (never a hard-coded host)."""
    candidates: list[str] = []
    try:
        out = subprocess.run(
            ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE)"],
            capture_output=True, text=True, timeout=60, check=False).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and "security" not in parts[0] and "security" not in parts[1]:
                candidates.append(parts[0])
    except (OSError, subprocess.SubprocessError):
        pass
    if not candidates:
        # deb822 sources file(s), then one-line sources.list entries
        texts = []
        for f in [Path("/etc/apt/sources.list.d/debian.sources"),
                  *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
                  Path("/etc/apt/sources.list"),
                  *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]:
            try:
                texts.append(f.read_text())
            except OSError:
                continue
        for text in texts:
            for m in re.finditer(r"^\s*URIs:\s*(\S+)", text, re.M):
                candidates.append(m.group(1))
            for m in re.finditer(r"^\s*deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
                candidates.append(m.group(1))
    candidates = [c for c in candidates if "security" not in c and c.startswith(("http", "file:", "ftp"))]
    if not candidates:
        raise SourceError("cannot find a Debian mirror in this machine's apt configuration "
                          "(apt-get indextargets / /etc/apt/sources.list.d/*.sources)")
    uri = candidates[0]
    return uri if uri.endswith("/") else uri + "/"


def _apt_options(workdir: Path) -> list[str]:
    return [
        f"-oDir::State::Lists={workdir / 'lists'}",
        f"-oDir::Etc::SourceList={workdir / 'sources.list'}",
        "-oDir::Etc::SourceParts=/nonexistent",
        f"-oDir::Cache={workdir / 'cache'}",
        "-oAPT::Sandbox::User=root",
        "-oAcquire::Retries=3",
        "-qq",
    ]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(cache: Path | None = None) -> Path:
    """Download, verify and unpack the source into the cache (no-op when already there)."""
    tree = source_dir(cache)
    if _is_complete(tree):
        return tree
    override = os.environ.get("EDGELOOP_MICROPYTHON_DIR")
    if override:
        p = Path(override).resolve()
        if not all((p / r).exists() for r in _REQUIRED if not r.startswith("debian/")):
            raise SourceError(f"EDGELOOP_MICROPYTHON_DIR={p} is not a MicroPython {MICROPYTHON_VERSION} tree")
        return p
    root = cache or core.cache_root()
    with core.lock(root, "source"):
        if _is_complete(tree):
            return tree
        for tool in ("apt-get", "dpkg-source"):
            if not shutil.which(tool):
                raise SourceError(f"`{tool}` is missing: run tools/bootstrap.sh (needs dpkg-dev)")
        core.progress(f"fetching MicroPython {MICROPYTHON_VERSION} source "
                      f"(Debian {DEBIAN_SUITE} source package `{DEBIAN_PACKAGE}`) ...")
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="src-", dir=root / "tmp"))
        try:
            (work / "lists" / "partial").mkdir(parents=True)
            (work / "cache" / "archives" / "partial").mkdir(parents=True)
            uri = debian_mirror_uri()
            (work / "sources.list").write_text(
                f"deb-src [signed-by={KEYRING}] {uri} {DEBIAN_SUITE} main\n")
            opts = _apt_options(work)
            dl = work / "dl"
            dl.mkdir()
            _run(["apt-get", *opts, "update"], cwd=work, what="apt-get update (private lists)")
            _run(["apt-get", *opts, "source", "--download-only", DEBIAN_PACKAGE], cwd=dl,
                 what="apt-get source")
            orig = dl / ORIG_TARBALL
            if not orig.is_file():
                raise SourceError(f"{ORIG_TARBALL} was not downloaded; got {sorted(os.listdir(dl))}")
            got = _sha256(orig)
            if got != ORIG_SHA256:
                raise SourceError(f"sha256 mismatch for {ORIG_TARBALL}: {got} != {ORIG_SHA256}")
            dscs = sorted(dl.glob(f"{DEBIAN_PACKAGE}_{MICROPYTHON_VERSION}*.dsc"))
            if not dscs:
                raise SourceError("no .dsc downloaded")
            _run(["dpkg-source", "--no-check", "-x", dscs[-1].name, "tree"], cwd=dl,
                 what="dpkg-source -x")
            unpacked = dl / "tree"
            missing = [r for r in _REQUIRED if not (unpacked / r).exists()]
            if missing:
                raise SourceError(f"unpacked source lacks {missing}")
            (unpacked / ".edgeloop-source-ok").write_text(
                f"{DEBIAN_PACKAGE} {dscs[-1].name} orig-sha256 {got}\n")
            tree.parent.mkdir(parents=True, exist_ok=True)
            if tree.exists():  # a stale, incomplete tree
                shutil.rmtree(tree)
            os.rename(unpacked, tree)
            core.progress(f"MicroPython source ready in {tree}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tree


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    # dpkg-source checks signatures with the system keyrings; the orig tarball hash is ours to check.
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        raise SourceError(f"{what} failed (exit {r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-4000:]}")
