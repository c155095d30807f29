"""The device runtime type-checks against the published MicroPython stubs of real boards, so an API a
board does not have is caught on the host (stubs installed by tools/bootstrap.sh into .venv/stubs)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / ".venv" / "stubs"


@pytest.mark.parametrize("board", ["rp2", "esp32"])
def test_device_code_type_checks_against_board_stubs(board):
    stubs = STUBS / board
    if not (stubs / "machine.pyi").exists():
        pytest.fail(f"{stubs} missing: run tools/bootstrap.sh (make bootstrap)")
    env = dict(os.environ, MYPYPATH=f"{stubs}{os.pathsep}{REPO / 'device' / 'stubs'}")
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--custom-typeshed-dir",
                        str(stubs), "-p", "edgeloop"], cwd=REPO / "device", env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success" in r.stdout


def test_a_board_api_misuse_is_caught(tmp_path):
    """Guard against a checker that passes everything: a call the stubs do not have must fail."""
    stubs = STUBS / "rp2"
    pkg = tmp_path / "bad"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import time\ntime.sleep_fortnight(1)\n")
    env = dict(os.environ, MYPYPATH=str(stubs))
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "device" / "mypy.ini"),
                        "--custom-typeshed-dir", str(stubs), "-p", "bad"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "sleep_fortnight" in r.stdout
