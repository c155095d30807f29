"""The toolchain: MicroPython source, content-addressed cached builds, the firmware's features."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeloop_host import toolchain
from edgeloop_host.toolchain import BuildError, Toolchain, source

REPO = Path(__file__).resolve().parents[1]

# A tiny natmod + user C module in the repo layout, for build/caching tests that must not depend
# on the real kernels (and stay fast).
SCRATCH_MK = """\
MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(MOD_DIR)/mod_scratch.c
"""
SCRATCH_H = "static inline int scratch_add(int a, int b) { return a + b + OFFSET; }\n"
SCRATCH_NATMOD_MAKEFILE = """\
MPY_DIR ?= ../../micropython
MOD = _edgeloop
SRC = natmod_scratch.c
ARCH ?= x64
CFLAGS += -I../cmodule/edgeloop
include $(MPY_DIR)/py/dynruntime.mk
"""
SCRATCH_NATMOD_C = """\
#include "py/dynruntime.h"
#define OFFSET 0
#include "scratch.h"
static mp_obj_t add(mp_obj_t a, mp_obj_t b) {
    return mp_obj_new_int(scratch_add(mp_obj_get_int(a), mp_obj_get_int(b)));
}
static MP_DEFINE_CONST_FUN_OBJ_2(add_obj, add);
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_add, MP_OBJ_FROM_PTR(&add_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
"""


def _scratch_repo(root: Path) -> Path:
    cm = root / "device" / "cmodule" / "edgeloop"
    cm.mkdir(parents=True)
    (cm / "micropython.mk").write_text(SCRATCH_MK)
    (cm / "scratch.h").write_text(SCRATCH_H)
    nm = root / "device" / "natmod"
    nm.mkdir(parents=True)
    (nm / "Makefile").write_text(SCRATCH_NATMOD_MAKEFILE)
    (nm / "natmod_scratch.c").write_text(SCRATCH_NATMOD_C)
    return root


@pytest.fixture(scope="module")
def mp_source() -> Path:
    return toolchain.micropython_source()


@pytest.fixture
def scratch(tmp_path, mp_source, monkeypatch):
    """A scratch repo and an empty cache that reuses the already fetched MicroPython source."""
    monkeypatch.setenv("EDGELOOP_MICROPYTHON_DIR", str(mp_source))
    repo = _scratch_repo(tmp_path / "repo")
    return Toolchain(repo=repo, cache=tmp_path / "cache")


def test_micropython_source_is_verified_1_25(mp_source):
    assert (mp_source / "py" / "dynruntime.mk").is_file()
    assert (mp_source / "lib" / "littlefs" / "lfs2.c").is_file()
    ver = (mp_source / "py" / "mpconfig.h").read_text()
    assert "#define MICROPY_VERSION_MINOR 25\n" in ver and "#define MICROPY_VERSION_MAJOR 1\n" in ver
    stamp = (mp_source / ".edgeloop-source-ok").read_text()
    assert source.ORIG_SHA256 in stamp


def test_mirror_uri_comes_from_machine_apt_config():
    uri = source.debian_mirror_uri()
    assert uri.startswith(("http://", "https://", "file:", "ftp://")) and uri.endswith("/")
    assert "security" not in uri


def test_no_mirror_host_written_in_repo():
    hosts = ["deb." + "debian.org", "ftp." + "debian.org", "snapshot." + "debian.org",
             "mirrors." + "kernel.org"]
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    offenders = []
    for f in files:
        p = REPO / f
        if not p.is_file() or p.stat().st_size > 2_000_000:
            continue
        text = p.read_bytes()
        offenders += [f"{f}: {h}" for h in hosts if h.encode() in text]
    assert not offenders


def test_paths_json():
    r = subprocess.run([sys.executable, "-m", "edgeloop_host.toolchain", "paths"],
                       capture_output=True, text=True, check=True, timeout=60)
    info = json.loads(r.stdout)
    assert set(toolchain.ALL) <= set(info["builds"])
    assert info["micropython_version"] == "1.25.0"
    assert Path(info["cache"]) == toolchain.cache_root()
    for name, b in info["builds"].items():
        assert b.get("path") or b.get("error"), name


def test_second_build_is_a_cache_hit():
    first = toolchain.build("natmod-x64")
    t0 = time.monotonic()
    second = toolchain.build("natmod-x64")
    assert second.cached and second.path == first.path and second.key == first.key
    assert time.monotonic() - t0 < 2.0
    assert first.path.parent.name == f"natmod-x64-{first.key[:16]}"
    r = subprocess.run([sys.executable, "-m", "edgeloop_host.toolchain", "build", "natmod-x64"],
                       capture_output=True, text=True, check=True, timeout=120)
    assert "using the cache" in r.stderr


def test_cli_rejects_unknown_target():
    r = subprocess.run([sys.executable, "-m", "edgeloop_host.toolchain", "build", "nonsense"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0


def test_key_covers_inputs_not_junk(scratch):
    k0, manifest = scratch.key("natmod-x64")
    assert any("device/natmod/Makefile" in m for m in manifest)
    assert any(m.startswith("param micropython=1.25.0") for m in manifest)
    nm = scratch.repo / "device" / "natmod"
    (nm / "__pycache__").mkdir()
    (nm / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (nm / "natmod_scratch.o").write_bytes(b"junk")
    (nm / ".natmod_scratch.c.swp").write_bytes(b"junk")
    assert scratch.key("natmod-x64")[0] == k0
    h = scratch.repo / "device" / "cmodule" / "edgeloop" / "scratch.h"
    h.write_text(h.read_text() + "// changed\n")
    k1 = scratch.key("natmod-x64")[0]
    assert k1 != k0
    assert scratch.key("natmod-armv7m")[0] != k1          # arch is part of the key
    with pytest.raises(BuildError, match="mpconfigboard.mk"):  # no board dir in the scratch repo
        scratch.key("qemu-arm")


def test_build_cache_hit_rebuild_and_failure_atomicity(scratch, tmp_path):
    r1 = scratch.build("natmod-x64")
    assert not r1.cached and r1.path.name == "_edgeloop.mpy" and r1.path.is_file()
    out = r1.path.parent
    assert (out / "build.log").is_file() and (out / "inputs.txt").is_file()
    assert json.loads((out / "build.json").read_text())["key"] == r1.key
    r2 = scratch.build("natmod-x64")
    assert r2.cached and r2.path == r1.path
    # the scratch natmod really works on the stock interpreter
    from edgeloop_host.targets import stock_micropython

    work = tmp_path / "run"
    work.mkdir()
    (work / "_edgeloop.mpy").write_bytes(r1.path.read_bytes())
    res = subprocess.run([str(stock_micropython()), "-c", "import _edgeloop; print(_edgeloop.add(2, 3))"],
                         cwd=work, capture_output=True, text=True, timeout=30)
    assert res.stdout.strip() == "5", res.stderr
    # a broken input: the build fails with the compiler's message and leaves no output behind
    c = scratch.repo / "device" / "natmod" / "natmod_scratch.c"
    good = c.read_text()
    c.write_text(good + "\nthis is not C;\n")
    with pytest.raises(BuildError) as ei:
        scratch.build("natmod-x64")
    assert "natmod_scratch.c" in str(ei.value) and "error" in str(ei.value)
    builds = sorted(p.name for p in (scratch.cache / "build").iterdir())
    assert builds == [out.name]
    assert list((scratch.cache / "tmp").iterdir()) == []
    # a changed input builds under a new key; the old output stays
    c.write_text(good.replace("#define OFFSET 0", "#define OFFSET 0\n#undef OFFSET\n#define OFFSET 1"))
    r3 = scratch.build("natmod-x64")
    assert not r3.cached and r3.key != r1.key and r1.path.is_file()


def test_build_without_natmod_sources_is_a_clear_error(tmp_path, mp_source, monkeypatch):
    monkeypatch.setenv("EDGELOOP_MICROPYTHON_DIR", str(mp_source))
    (tmp_path / "repo" / "device" / "cmodule").mkdir(parents=True)
    tc = Toolchain(repo=tmp_path / "repo", cache=tmp_path / "cache")
    with pytest.raises(BuildError, match="natmod/Makefile"):
        tc.build("natmod-x64")
    with pytest.raises(BuildError, match="unknown build"):
        tc.build("natmod-xtensawin")


def test_all_artifacts_exist_for_current_inputs():
    """`make firmware` (or the fixtures) built every artifact for the current sources."""
    for name in toolchain.ALL:
        p = toolchain.firmware_path(name)
        assert p.is_file() and p.stat().st_size > 1000, name
    elf = toolchain.firmware_path("qemu-arm")
    assert elf.read_bytes()[:4] == b"\x7fELF"
    for arch in toolchain.NATMOD_ARCHS:
        assert toolchain.firmware_path(toolchain.natmod_name(arch)).read_bytes()[:1] == b"M"


def test_unix_firmware_features(unix_target):
    out = unix_target.exec(
        "import vfs, sys, _edgeloop, hashlib, micropython\n"
        "print(hasattr(vfs, 'VfsLfs2'), sys.implementation.version[:2], hasattr(hashlib, 'sha256'))\n"
        "@micropython.viper\n"
        "def f(x: int) -> int:\n"
        "    return x * 2\n"
        "print(f(21))\n")
    assert out.split() == ["True", "(1,", "25)", "True", "42"]


@pytest.mark.qemu
def test_qemu_firmware_features(qemu_arm_target):
    out = qemu_arm_target.exec(
        "import vfs, sys, os, gc, time, select, _edgeloop, micropython\n"
        "print(hasattr(vfs, 'VfsLfs2'), sys.platform, os.getcwd(), '/flash/lib' in sys.path)\n"
        "print(hasattr(sys.stdout, 'buffer'), hasattr(select, 'poll'), gc.mem_free() > 2_500_000)\n"
        "print(os.statvfs('/flash')[0] * os.statvfs('/flash')[2] >= 256 * 1024)\n"
        "@micropython.native\n"
        "def g(x):\n"
        "    return x + 1\n"
        "@micropython.viper\n"
        "def f(x: int) -> int:\n"
        "    return x * 2\n"
        "print(f(21), g(1))\n")
    assert out.split() == ["True", "qemu", "/flash", "True", "True", "True", "True", "True",
                           "42", "2"]
