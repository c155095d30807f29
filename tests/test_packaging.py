"""The runtime as users install it: precompiled .mpy + package.json, installed with the real
`mpremote mip install` onto the emulated board; its heap footprint and allocation-free inference."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeloop_host import package

REPO = Path(__file__).resolve().parents[1]
MPREMOTE = str(Path(sys.executable).with_name("mpremote"))
FOOTPRINT_GOAL = 16 * 1024


def test_every_arch_packages(tmp_path):
    for arch in package.ARCHS:
        pj = package.build(arch, tmp_path)
        pkg = json.loads(pj.read_text())
        names = [u[0] for u in pkg["urls"]]
        assert "edgeloop/__init__.mpy" in names or "edgeloop/__init__.py" in names
        for name, _ in pkg["urls"]:
            assert (pj.parent / name).stat().st_size > 0
        assert pkg["version"] == package.runtime_version()


@pytest.mark.qemu
def test_mip_install_footprint_and_zero_allocation_on_the_board(tmp_path, digits):
    from edgeloop_host.targets import QemuMachine

    pj = package.build("armv7m", tmp_path)
    (tmp_path / "m.elm").write_bytes(digits.elm)
    m = QemuMachine("qemu-arm")
    try:
        def mpremote(*args, timeout=120):
            r = subprocess.run([MPREMOTE, "connect", m.pty, *args], capture_output=True, text=True,
                               timeout=timeout)
            assert r.returncode == 0, r.stdout + r.stderr
            return r.stdout

        out = mpremote("mip", "install", "--target", "/flash/lib", str(pj))
        assert "edgeloop/model.mpy" in out
        mpremote("fs", "cp", str(tmp_path / "m.elm"), ":/flash/m.elm")
        out = mpremote("exec", FOOTPRINT_CODE, timeout=300)
    finally:
        m.stop()
    r = dict(line.split()[1:] for line in out.splitlines() if line.startswith("EL "))
    print(f"runtime heap after import: {r['import']} B (goal <= {FOOTPRINT_GOAL}); with the digits model "
          f"loaded: {r['loaded']} B; heap growth over 1000 inferences: {r['growth']} B; backend {r['backend']}")
    assert r["file"].endswith(".mpy")
    assert int(r["import"]) <= FOOTPRINT_GOAL
    assert int(r["growth"]) == 0


FOOTPRINT_CODE = """
import gc
gc.collect()
a = gc.mem_alloc()
import edgeloop
gc.collect()
b = gc.mem_alloc()
m = edgeloop.load('/flash/m.elm')
x = bytearray(m.input_size)
out = bytearray(m.output_size)
m.predict(x, out)
i = d = 0  # create every global before measuring: a globals-dict resize would count as growth
gc.collect()
c = gc.mem_alloc()
while i < 1000:
    m.predict(x, out)
    i += 1
d = gc.mem_alloc()
print('EL import', b - a)
print('EL loaded', c - a)
print('EL growth', d - c)
print('EL backend', m.backend)
print('EL file', edgeloop.__file__)
"""


def test_soak_100k_inferences_constant_heap(unix_target, digits):
    unix_target.put_bytes(digits.elm, "soak.elm")
    out = unix_target.exec("""
import gc, edgeloop
m = edgeloop.load('soak.elm')
x = bytearray(m.input_size)
m.predict(x)
gc.collect()
i = 0
gc.collect()
a = gc.mem_alloc()
while i < 100000:
    x[i & 63] = i & 0xFF
    m.predict(x)
    i += 1
print(gc.mem_alloc() - a, m.runs, m.backend)
""", timeout=300)
    growth, runs, backend = out.split()
    assert (growth, runs, backend) == ("0", "100001", "c")
