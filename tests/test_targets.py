"""targets.py: one API over the unix port, the stock wheel and the emulated board."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgeloop_host import toolchain
from edgeloop_host.targets import QemuMachine, TargetError, open_target

ALL_BYTES = bytes(range(256)) * 8 + b"\x03\x04\r\n\x01\x02\x05"  # includes REPL control chars


def _mpremote() -> str:
    cand = Path(sys.executable).parent / "mpremote"
    return str(cand) if cand.exists() else "mpremote"


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                st = (d / "stat").read_text()
            except OSError:
                continue
            if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            st = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if st.rsplit(")", 1)[1].split()[0] == "Z":  # zombie: dead, awaiting its parent
            return True
        time.sleep(0.05)
    return False


# ---- the uniform API on every target -----------------------------------------------------------

def test_exec_returns_stdout(any_target):
    assert any_target.exec("print(1 + 1)\nprint('x', end='')") == "2\nx"


def test_exec_raises_with_device_traceback(any_target):
    with pytest.raises(TargetError) as ei:
        any_target.exec("print('before')\ndef f():\n    raise ValueError('boom')\nf()")
    e = ei.value
    assert "ValueError: boom" in e.traceback and "Traceback" in e.traceback
    assert "ValueError: boom" in str(e)
    assert e.stdout == "before\n"
    assert any_target.exec("print('still alive')") == "still alive\n"


def test_put_get_roundtrip_binary(any_target, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(ALL_BYTES)
    any_target.put(src, "t_targets/sub/blob.bin")
    assert any_target.get("t_targets/sub/blob.bin") == ALL_BYTES
    out = any_target.exec("import os\nprint(os.stat('t_targets/sub/blob.bin')[6])")
    assert int(out) == len(ALL_BYTES)
    with pytest.raises(ValueError):
        any_target.put(src, "/abs/path")
    with pytest.raises(ValueError):
        any_target.put(src, "../escape")


def test_put_many_makes_dirs_and_skips_identical(any_target):
    files = [(b"a" * 3000, "t_many/x/a.txt"), (os.urandom(700), "t_many/b.bin"), (b"", "t_many/empty")]
    assert any_target.put_many(files) == 3
    for data, remote in files:
        assert any_target.get(remote) == data
    if any_target.name.startswith("qemu"):
        assert any_target.put_many(files) == 0  # hash check: nothing re-sent
        assert any_target.put_many([(b"changed", "t_many/b.bin")] + files[:1]) == 1


def test_runtime_importable(any_target, device_dir):
    files = sorted(p.name for p in (device_dir / "edgeloop").glob("*.py"))
    if "__init__.py" not in files:
        pytest.skip("device/edgeloop has no __init__.py yet")
    out = any_target.exec("import edgeloop, os\nprint(sorted(f for f in os.listdir('lib/edgeloop') "
                          "if f.endswith('.py')))\nprint(edgeloop.__name__)")
    listed, name = out.strip().splitlines()
    assert eval(listed) == files and name == "edgeloop"


def test_exec_timeout_recovers(any_target):
    t0 = time.monotonic()
    with pytest.raises(TargetError, match="timeout"):
        any_target.exec("print('spinning')\nwhile True:\n    pass", timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert any_target.exec("print(6 * 7)") == "42\n"


def test_c_module_presence(any_target):
    out = any_target.exec("try:\n import _edgeloop\n print('yes')\nexcept ImportError:\n print('no')")
    assert out.strip() == ("no" if any_target.name == "stock" else "yes")
    assert any_target.has_cmodule == (any_target.name != "stock")


# ---- natmods on every interpreter that can load them -------------------------------------------

NATMOD_CASES = [("unix", "x64"), ("stock", "x64"), ("qemu-arm", "armv7m"), ("qemu-arm", "armv6m")]


@pytest.mark.parametrize("target_name,arch", NATMOD_CASES, ids=[f"{t}-{a}" for t, a in NATMOD_CASES])
def test_natmod_imports(request, target_name, arch):
    t = request.getfixturevalue(target_name.replace("-", "_") + "_target")
    # where `_edgeloop` is built in, the natmod must be imported under another name
    mod = f"_elnat_{arch}" if t.has_cmodule else "_edgeloop"
    remote = t.install_natmod(mod, arch=arch)
    assert remote == f"lib/{mod}.mpy"
    out = t.exec(f"import {mod} as m\nprint(sorted(n for n in dir(m) if not n.startswith('_')))")
    names = eval(out)
    assert names, "natmod exports nothing"
    if t.has_cmodule:  # the natmod and the built-in module come from the same sources
        builtin = eval(t.exec("import _edgeloop as m\nprint(sorted(n for n in dir(m) "
                              "if not n.startswith('_')))"))
        assert set(builtin) & set(names)


def test_natmod_for_wrong_arch_is_refused(stock_target):
    with pytest.raises(TargetError, match="do not load"):
        stock_target.install_natmod("_x", arch="armv7m")


# ---- the emulated board ------------------------------------------------------------------------

@pytest.mark.qemu
def test_qemu_flash_survives_soft_reset(qemu_arm_target):
    t = qemu_arm_target
    t.put_bytes(b"persist me", "t_reset.txt")
    t.exec("x_marker = 1")
    t.reset()
    out = t.exec("import os\nprint(open('t_reset.txt').read(), os.getcwd(), 'x_marker' in globals())")
    assert out.split() == ["persist", "me", "/flash", "False"]
    # a second put of identical content sends nothing (hash check) and keeps the file
    t.put_bytes(b"persist me", "t_reset.txt")
    assert t.get("t_reset.txt") == b"persist me"


@pytest.mark.qemu
def test_qemu_ticks_are_deterministic_under_icount():
    code = textwrap.dedent("""\
        import time
        def work():
            s = 0
            for i in range(2000):
                s += i
            return s
        ds = []
        for _ in range(4):
            t0 = time.ticks_us()
            work()
            ds.append(time.ticks_diff(time.ticks_us(), t0))
        print(ds)
        """)
    runs = []
    for _ in range(2):
        with open_target("qemu-arm", icount=True) as t:
            runs.append(eval(t.exec(code)))
    flat = [d for r in runs for d in r[1:]]  # the first call may differ (cold caches/allocs)
    assert min(flat) > 100  # ~300 instructions per iteration: hundreds of virtual microseconds
    assert max(flat) - min(flat) <= 1, runs  # +-1: phase of the 1 MHz counter


@pytest.mark.qemu
def test_mpremote_cli_against_emulated_board(tmp_path):
    """The real `mpremote` command line (separate processes) on a board of its own."""
    (tmp_path / "hello.txt").write_text("hi from host\n")
    (tmp_path / "script.py").write_text("import os\nprint('run:', open('hello.txt').read().strip())\n")
    mount = tmp_path / "mnt"
    mount.mkdir()
    (mount / "mounted_mod.py").write_text("VALUE = 'from a mounted dir'\n")
    mp = _mpremote()
    with QemuMachine("qemu-arm") as m:
        r = subprocess.run(
            [mp, "connect", m.pty, "exec", "print('exec:', 6 * 7)", "+",
             "fs", "cp", str(tmp_path / "hello.txt"), ":hello.txt", "+",
             "run", str(tmp_path / "script.py"), "+",
             "fs", "cat", "hello.txt"],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "exec: 42" in r.stdout
        assert "run: hi from host" in r.stdout
        r = subprocess.run(
            [mp, "connect", m.pty, "mount", str(mount), "exec",
             "import mounted_mod, os; print(mounted_mod.VALUE, os.getcwd())"],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "from a mounted dir /remote" in r.stdout


@pytest.mark.qemu
def test_emulate_prints_connect_line_and_stops_qemu_on_ctrl_c():
    p = subprocess.Popen([sys.executable, "-c",
                          "from edgeloop_host.emulators import emulate; raise SystemExit(emulate('qemu-arm'))"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert re.fullmatch(r"mpremote connect /dev/pts/\d+\n", line), line
        hint = p.stdout.readline()
        assert "Ctrl-C" in hint
        kids = _children(p.pid)
        assert kids, "no qemu child process"
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=15) == 0
        assert all(_gone(k) for k in kids)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.qemu
def test_qemu_dies_with_its_python_process():
    """No orphans: qemu is killed when the Python that started it is SIGKILLed."""
    fw = toolchain.firmware_path("qemu-arm")
    p = subprocess.Popen([sys.executable, "-c",
                          "import sys, time\n"
                          "from edgeloop_host.targets import QemuMachine\n"
                          f"m = QemuMachine('qemu-arm', firmware={str(fw)!r})\n"
                          "print(m.proc.pid, flush=True)\n"
                          "time.sleep(60)\n"],
                         stdout=subprocess.PIPE, text=True)
    try:
        qpid = int(p.stdout.readline())
        assert not _gone(qpid, within=0.2)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        assert _gone(qpid), "qemu outlived its parent"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_unknown_target():
    with pytest.raises(TargetError, match="unknown target"):
        open_target("esp32")
