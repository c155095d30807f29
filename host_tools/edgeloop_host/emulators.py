"""Emulated boards that stay on between commands, like a real board on a USB port.

`edgeloop emulate --board B` runs one in the foreground (Ctrl-C stops it); `edgeloop deploy --board B`,
`edgeloop diag --board B` and `edgeloop repl --board B` use the running one, and `deploy` starts one in
the background when none is running (`edgeloop emulate --board B --stop` stops it). Each running
emulator is recorded in <run dir>/<board>.json (pid, pty); the run dir is $EDGELOOP_RUN_DIR or
<cache>/run. The RAM disk holding /flash lives as long as the qemu process.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .targets import BOARDS, QemuMachine, SerialTarget, TargetError

_PTY_RE = re.compile(r"char device redirected to (/dev/pts/\d+)")


def run_dir() -> Path:
    env = os.environ.get("EDGELOOP_RUN_DIR")
    if env:
        d = Path(env)
    else:
        from .toolchain import cache_root

        d = cache_root() / "run"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _check_board(board: str) -> dict:
    if board not in BOARDS:
        raise TargetError(f"unknown emulated board {board!r}; known: {', '.join(BOARDS)}")
    return BOARDS[board]


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return st.rsplit(")", 1)[1].split()[0] != "Z"


def _is_qemu(pid: int, board: str) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmd) and Path(cmd[0].decode(errors="replace")).name == BOARDS[board]["qemu"]


def running(board: str) -> dict | None:
    """{'board', 'pid', 'pty', 'firmware', 'started', 'log'} of the running emulator, or None."""
    _check_board(board)
    f = run_dir() / f"{board}.json"
    try:
        info = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    if _alive(info.get("pid", -1)) and _is_qemu(info["pid"], board) and os.path.exists(info.get("pty", "")):
        return info
    try:
        f.unlink()
    except OSError:
        pass
    return None


def _record(board: str, info: dict) -> None:
    f = run_dir() / f"{board}.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, f)


def _forget(board: str, pid: int) -> None:
    f = run_dir() / f"{board}.json"
    try:
        if json.loads(f.read_text()).get("pid") == pid:
            f.unlink()
    except (OSError, ValueError):
        pass


def start_background(board: str, timeout: float = 20.0) -> dict:
    """Start the board's qemu detached from this process (it keeps running after we exit)."""
    from . import toolchain

    spec = _check_board(board)
    from .toolchain.core import lock

    with lock(run_dir(), f"emulator-{board}"):
        info = running(board)
        if info:
            return info
        firmware = toolchain.firmware_path(spec["build"])
        qemu = shutil.which(spec["qemu"])
        if not qemu:
            raise TargetError(f"{spec['qemu']} not found: run tools/bootstrap.sh", target=board)
        log = run_dir() / f"{board}.log"
        cmd = [qemu, "-machine", spec["machine"], *spec.get("qemu_args", ()), "-nographic",
               "-monitor", "null", "-semihosting", "-serial", "pty", "-kernel", str(firmware)]
        with open(log, "wb") as lf:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
        deadline = time.monotonic() + timeout
        pty = None
        while time.monotonic() < deadline and proc.poll() is None:
            m = _PTY_RE.search(log.read_text(errors="replace"))
            if m:
                pty = m.group(1)
                break
            time.sleep(0.05)
        if pty is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise TargetError(f"{board}: qemu did not open a serial pty ({' '.join(cmd)}): "
                              f"{log.read_text(errors='replace')[-500:]}", target=board)
        info = {"board": board, "pid": proc.pid, "pty": pty, "firmware": str(firmware),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "log": str(log), "background": True}
        _record(board, info)
        return info


def stop(board: str, timeout: float = 5.0) -> bool:
    """Stop the running emulator of `board`; False if none was running."""
    info = running(board)
    if not info:
        return False
    pid = info["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _forget(board, pid)
    return True


def connect(board: str, device_dir=None, start: bool = True, out=None) -> SerialTarget:
    """A SerialTarget on the running emulator of `board` (started in the background if `start`)."""
    info = running(board)
    if info is None:
        if not start:
            raise TargetError(f"{board} is not running: start it with `edgeloop emulate --board {board}` "
                              f"(or `edgeloop deploy --board {board}`)", target=board)
        info = start_background(board)
        print(f"edgeloop: started {board} in the background (qemu pid {info['pid']}, {info['pty']}); "
              f"stop it with `edgeloop emulate --board {board} --stop`", file=out or sys.stderr, flush=True)
    return SerialTarget(info["pty"], device_dir=device_dir, name=board, pid=info["pid"], connect_timeout=30.0)


def emulate(board: str = "qemu-arm", icount: bool = False, out=None) -> int:
    """Run an emulated board in the foreground until Ctrl-C (or SIGTERM), printing how to connect to it.
    While it runs, `edgeloop deploy/diag/repl --board B` use it."""
    out = out or sys.stdout
    spec = _check_board(board)
    if running(board):
        info = running(board)
        raise TargetError(f"{board} is already running (pid {info['pid']}, {info['pty']}); "
                          f"stop it with `edgeloop emulate --board {board} --stop`", target=board)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    import threading

    saved = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, _stop)
    m = None
    try:
        m = QemuMachine(board, icount=icount)
        _record(board, {"board": board, "pid": m.proc.pid, "pty": m.pty, "firmware": str(m.firmware),
                        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "background": False})
        print(f"mpremote connect {m.pty}", file=out)
        print(f"  {board}: qemu {spec['machine']}, {spec['description']}; "
              f"e.g. `edgeloop deploy --board {board} --model M.elm`, `edgeloop diag --board {board}`, "
              f"or `mpremote connect {m.pty} repl`. Ctrl-C here stops the board.", file=out, flush=True)
        while m.alive():
            time.sleep(0.5)
        print(f"{board}: qemu exited ({m.proc.returncode})", file=out)
        return m.proc.returncode or 0
    except KeyboardInterrupt:
        print(f"\n{board}: stopping qemu", file=out, flush=True)
        return 0
    finally:
        if m is not None:
            _forget(board, m.proc.pid)
            m.stop()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
