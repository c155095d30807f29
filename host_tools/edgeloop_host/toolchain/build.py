"""Content-addressed builds: <cache>/build/<name>-<key16>/ holds the artifact of one input set.

A build copies its repo inputs into a private snapshot, hashes them together with the recipe, the
MicroPython version and the compiler version, and returns the cached artifact when that key exists.
Otherwise it builds in <cache>/tmp and renames the finished output directory into place, so an
interrupted or failed build is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import core, recipes, source
from .core import BuildError

KEEP_PER_NAME = 3          # older outputs of the same build name are pruned
_LOG_TAIL_LINES = 60
# Environment variables that would leak into the sub-makes and change the build.
_SCRUB_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CFLAGS", "CPPFLAGS", "CXXFLAGS",
              "LDFLAGS", "BUILD", "BOARD", "BOARD_DIR", "ARCH", "CROSS", "CROSS_COMPILE", "CC",
              "USER_C_MODULES", "FROZEN_MANIFEST", "MPY_DIR", "PYTHON", "V", "DEBUG", "COPT",
              "CFLAGS_EXTRA", "LDFLAGS_EXTRA", "MICROPY_MPYCROSS")


@dataclass(frozen=True)
class BuildResult:
    name: str
    path: Path          # the artifact
    key: str            # full sha256 of the inputs
    cached: bool
    seconds: float


_compiler_versions: dict[str, str] = {}


def _compiler_version(cc: str) -> str:
    if cc not in _compiler_versions:
        try:
            out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30,
                                 check=False).stdout
            _compiler_versions[cc] = out.splitlines()[0] if out else f"{cc}: unknown"
        except OSError:
            raise BuildError(f"compiler `{cc}` not found: run tools/bootstrap.sh") from None
    return _compiler_versions[cc]


def _recipe_text_hash() -> str:
    return hashlib.sha256(Path(recipes.__file__).read_bytes()).hexdigest()


def _has_user_module(cmodule_dir: Path) -> bool:
    return any(cmodule_dir.glob("*/micropython.mk"))


class Toolchain:
    """Builds for one repository checkout into one cache root."""

    def __init__(self, repo: Path | None = None, cache: Path | None = None):
        self.repo = Path(repo).resolve() if repo else core.repo_root()
        self.cache = Path(cache).resolve() if cache else core.cache_root()

    # ---- source ---------------------------------------------------------------------------
    def micropython_source(self) -> Path:
        return source.fetch(self.cache)

    # ---- keys -----------------------------------------------------------------------------
    def _params(self, r: recipes.Recipe, base: Path) -> list[str]:
        params = [f"name={r.name}", f"recipe-sha256={_recipe_text_hash()}",
                  f"micropython={source.MICROPYTHON_VERSION} orig-sha256={source.ORIG_SHA256}",
                  f"compiler={_compiler_version(r.compiler)}",
                  f"make -C {r.cwd} {' '.join(self._args(r, base))}"]
        return params

    def _args(self, r: recipes.Recipe, base: Path) -> list[str]:
        args = list(r.args)
        if r.kind in ("unix", "qemu") and not _has_user_module(base / "device" / "cmodule"):
            args = [a for a in args if not a.startswith("USER_C_MODULES=")]
        return args

    def key(self, name: str, base: Path | None = None) -> tuple[str, list[str]]:
        r = self._recipe(name)
        base = base or self.repo
        self._check_inputs(r, base)
        return core.hash_inputs(base, r.inputs, self._params(r, base))

    def _recipe(self, name: str) -> recipes.Recipe:
        try:
            return recipes.RECIPES[name]
        except KeyError:
            raise BuildError(f"unknown build {name!r}; known: {', '.join(recipes.ALL)}") from None

    def _check_inputs(self, r: recipes.Recipe, base: Path) -> None:
        if r.kind == "natmod" and not (base / "device" / "natmod" / "Makefile").is_file():
            raise BuildError(f"{r.name}: {base / 'device/natmod/Makefile'} does not exist yet")
        if r.kind == "qemu":
            board = base / r.inputs[-1]
            if not (board / "mpconfigboard.mk").is_file():
                raise BuildError(f"{r.name}: {board}/mpconfigboard.mk is missing")

    def output_dir(self, name: str, key: str) -> Path:
        return self.cache / "build" / f"{name}-{key[:16]}"

    def cached_path(self, name: str) -> Path | None:
        """The artifact for the current inputs if it is already built, else None (never builds)."""
        r = self._recipe(name)
        key, _ = self.key(name)
        p = self.output_dir(name, key) / Path(r.output).name
        return p if p.is_file() else None

    # ---- building -------------------------------------------------------------------------
    def firmware_path(self, name: str) -> Path:
        """The artifact of build `name` for the current inputs, building it first if needed."""
        return self.build(name).path

    def build(self, name: str, force: bool = False) -> BuildResult:
        t0 = time.monotonic()
        r = self._recipe(name)
        key, _ = self.key(name)
        out = self.output_dir(name, key)
        art = out / Path(r.output).name
        if art.is_file() and not force:
            core.progress(f"{name}: up to date, using the cache ({out})")
            return BuildResult(name, art, key, True, time.monotonic() - t0)
        src = self.micropython_source()
        # One build at a time: the builds share the source tree (mpy-cross is built inside it)
        # and the machine has two cores, which each build already uses.
        with core.lock(self.cache, "build"):
            (self.cache / "tmp").mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.cache / "tmp"))
            try:
                snap = work / "snap"
                for rel in r.inputs:
                    s = self.repo / rel
                    if s.is_dir():
                        shutil.copytree(s, snap / rel, ignore=shutil.ignore_patterns(
                            "__pycache__", "build", "*.o", "*.mpy", ".*"))
                    elif s.is_file():
                        (snap / rel).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(s, snap / rel)
                key, manifest = self.key(name, base=snap)  # what is really built
                out = self.output_dir(name, key)
                art = out / Path(r.output).name
                if art.is_file() and not force:
                    core.progress(f"{name}: up to date, using the cache ({out})")
                    return BuildResult(name, art, key, True, time.monotonic() - t0)
                if r.kind in ("unix", "qemu"):
                    self._ensure_mpy_cross(src)
                self._run_make(r, src, snap, work, key)
                built = work / r.output
                if not built.is_file():
                    found = sorted(p.name for p in built.parent.glob("*")) if built.parent.is_dir() else []
                    raise BuildError(f"{name}: the build succeeded but produced no {r.output} "
                                     f"(found {found}); see {work}/build.log")
                staged = work / "out"
                staged.mkdir()
                shutil.copy2(built, staged / built.name)
                shutil.copy2(work / "build.log", staged / "build.log")
                secs = time.monotonic() - t0
                (staged / "inputs.txt").write_text("\n".join(manifest) + "\n")
                (staged / "build.json").write_text(json.dumps(
                    {"name": name, "key": key, "seconds": round(secs, 1),
                     "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1) + "\n")
                if force and out.exists():
                    shutil.rmtree(out)
                out.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staged, out)          # atomic: `out` exists only when complete
                self._prune(name, keep=out)
                core.progress(f"{name}: built in {secs:.1f} s -> {out / built.name}")
                return BuildResult(name, out / built.name, key, False, secs)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def _ensure_mpy_cross(self, src: Path) -> None:
        """Build mpy-cross once inside the source tree (the ports' frozen manifests need it).

        Built beforehand because a port's `make BUILD=...` would pass its BUILD on to the mpy-cross
        sub-make. Called with the build lock held.
        """
        final = src / "mpy-cross" / "build" / "mpy-cross"
        if final.is_file():
            return
        t0 = time.monotonic()
        core.progress("building mpy-cross (once per source tree) ...")
        tmp_build = src / "mpy-cross" / "build-edgeloop"
        shutil.rmtree(tmp_build, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}
        r = subprocess.run(["make", "-C", str(src / "mpy-cross"), recipes.JOBS, f"BUILD={tmp_build}",
                            f"PYTHON={sys.executable}"], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", check=False)
        if r.returncode != 0:
            raise BuildError("mpy-cross build failed:\n" + (r.stdout + r.stderr)[-4000:])
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tmp_build / "mpy-cross", final.with_suffix(".tmp"))
        os.rename(final.with_suffix(".tmp"), final)
        shutil.rmtree(tmp_build, ignore_errors=True)
        core.progress(f"mpy-cross built in {time.monotonic() - t0:.1f} s")

    def _run_make(self, r: recipes.Recipe, src: Path, snap: Path, work: Path, key: str) -> None:
        cwd, args = r.render(src=str(src), snap=str(snap), work=str(work), python=sys.executable)
        args = [a for a in args if not (a.startswith("USER_C_MODULES=")
                                        and not _has_user_module(snap / "device" / "cmodule"))]
        if r.kind in ("unix", "qemu") and not _has_user_module(snap / "device" / "cmodule"):
            core.progress(f"{r.name}: warning: no */micropython.mk under device/cmodule, "
                          "building without the _edgeloop user C module")
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}
        env["LC_ALL"] = "C"
        cmd = ["make", "-C", cwd, *args]
        core.progress(f"{r.name}: building (key {key[:16]}; log in the output dir) ...")
        log_path = work / "build.log"
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            verbose = os.environ.get("EDGELOOP_VERBOSE") == "1"
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env, text=True, errors="replace",
                                 start_new_session=True)
            assert p.stdout is not None
            try:
                for line in p.stdout:
                    log.write(line)
                    if verbose:
                        sys.stderr.write(line)
                rc = p.wait()
            except BaseException:  # Ctrl-C / SIGTERM: stop make and its compilers too
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                raise
        if rc != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
            msg = (f"{r.name}: `make` failed (exit {rc}). Sources were copied from {self.repo} "
                   f"into {snap}. Last lines of the log:\n" + "\n".join(tail))
            core.progress(msg)
            raise BuildError(msg)

    def _prune(self, name: str, keep: Path) -> None:
        outs = sorted((p for p in (self.cache / "build").glob(f"{name}-*")
                       if p.is_dir() and len(p.name) == len(name) + 17),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for old in [p for p in outs if p != keep][KEEP_PER_NAME - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    def build_many(self, names: list[str], skip_missing_natmod: bool = True) -> list[BuildResult]:
        results = []
        for n in names:
            r = self._recipe(n)
            if (skip_missing_natmod and r.kind == "natmod"
                    and not (self.repo / "device" / "natmod" / "Makefile").is_file()):
                core.progress(f"{n}: skipped, device/natmod/Makefile does not exist yet")
                continue
            results.append(self.build(n))
        return results
