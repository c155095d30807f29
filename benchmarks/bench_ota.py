"""OTA benchmark on the emulated Cortex-M3 (qemu mps2-an385, -icount shift=0: time.ticks_us() differences
are kilo-instructions, identical from run to run). Prints the BENCHMARKS.md section's table.

    .venv/bin/python benchmarks/bench_ota.py

Measures on the board: Ed25519 verification (C module and pure MicroPython), and one update of a ~5 KB and
a ~100 KB model (blob already in RAM, i.e. without the serial transfer): begin (manifest checks +
signature), the chunk writes to /flash (littlefs), finish (read back, SHA-256, format check, state
write), and the boot that self-tests and confirms it; after a warm-up run (module imports), the minimum
of three runs per phase, each phase started on a freshly collected heap (a collection of the 3 MB heap
costs ~2.7 M instructions and would otherwise fall at different points from run to run). Flash bytes programmed / erased per update are
counted by a counting block device under littlefs (tests/device/ota_sweep.py, 512-byte blocks).
"""
from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "host_tools"))

import otagen  # noqa: E402
from edgeloop_host.ota import manifest as M  # noqa: E402
from edgeloop_host.targets import open_target  # noqa: E402

_VERIFY = """\
import edgeloop.ed25519 as E, time
def _b(backend, n):
    E.verify(%(pub)r, %(msg)r, %(sig)r, backend)   # warm-up (imports)
    t = time.ticks_us()
    for _ in range(n):
        assert E.verify(%(pub)r, %(msg)r, %(sig)r, backend)
    return time.ticks_diff(time.ticks_us(), t) // n
print(repr((_b('c', 5), _b('python', 2))))
"""

_UPDATE = """\
import ota_check as C, ota_sweep as S, time, gc, os
from edgeloop import ota
PUB = %(pub)r
FILES = {}
for _n in ('b_base.elm', 'b_base.mf', 'b_new.elm', 'b_new.mf'):   # into RAM: /flash has 512 KB only
    FILES[_n] = C.rd(_n)
    os.remove(_n)
rd = FILES.get
def U():
    return ota.Updater(ROOT, public_key=PUB)
def run():
    C.rmtree(ROOT)
    C.install(U(), rd('b_base.elm'), rd('b_base.mf')); U().load()
    blob, mf = rd('b_new.elm'), rd('b_new.mf')
    mv = memoryview(blob)
    u = U()
    st = {}
    def phase(name, fn):   # each phase starts on a collected heap (the collection is not counted)
        gc.collect()
        t = time.ticks_us()
        r = fn()
        st[name] = time.ticks_diff(time.ticks_us(), t)
        return r
    off = phase('begin', lambda: u.begin(mf))
    def writes():
        o = off
        while o < len(blob):
            o = u.write(o, mv[o:o + 4096])
    phase('write', writes)
    phase('finish', u.finish)
    m = phase('boot', lambda: U().load())
    assert m.version == 2 and U().state().counter == 2
    t = [st['begin'], st['write'], st['finish'], st['boot']]
    return t + [sum(t)]
ROOT = 'ota_bench'
run()   # warm-up: compiles and imports every module (deploy installs .mpy files: no compile on a board)
runs = [run() for _ in range(3)]
times = [min(r[i] for r in runs) for i in range(5)]
# flash operations of the same update on a counting block device (littlefs, 512-byte blocks)
flash = S.Flash(%(nblocks)d)
S.provision(flash, PUB, rd('b_base.elm'), rd('b_base.mf'))
bdev = S.mount(flash)
ROOT = S.ROOT
u = U()
C.install(u, rd('b_new.elm'), rd('b_new.mf')); U().load()
S.unmount()
print(repr((times, bdev.bytes_written, bdev.writes, bdev.erases)))
"""


def main() -> int:
    f = otagen.fleet()
    msg = bytes(80)
    sig = f.key.sign(msg)
    rows = []
    with open_target("qemu-arm", icount=True) as t:
        t.install_runtime()
        t.put(HERE / "device/ota_check.py", "ota_check.py")
        t.put(HERE / "device/faultbdev.py", "faultbdev.py")
        t.put(HERE / "device/ota_sweep.py", "ota_sweep.py")
        c_ki, py_ki = ast.literal_eval(t.exec(_VERIFY % {"pub": f.pub, "msg": msg, "sig": sig},
                                              timeout=900).strip())
        print(f"Ed25519 verify of an 80-byte manifest body: C {c_ki} k instructions, "
              f"pure MicroPython {py_ki} k instructions ({py_ki / c_ki:.0f}x)")
        for label, widths, nblocks in (("~5 KB", otagen.SMALL, 128), ("~100 KB", otagen.LARGE, 700)):
            base = otagen.make_blob(widths, 1, 1)
            new = otagen.make_blob(widths, 2, 2)
            t.put_bytes(base, "b_base.elm")
            t.put_bytes(M.sign_blob(base, f.key, 1), "b_base.mf")
            t.put_bytes(new, "b_new.elm")
            t.put_bytes(M.sign_blob(new, f.key, 2), "b_new.mf")
            t0 = time.monotonic()
            times, nbytes, writes, erases = ast.literal_eval(
                t.exec(_UPDATE % {"pub": f.pub, "nblocks": nblocks}, timeout=1800).strip())
            rows.append((label, len(new), times, nbytes, writes, erases, time.monotonic() - t0))
    print("| model | blob bytes | begin (verify manifest) | write to flash | finish (SHA-256, format, "
          "state) | boot: self-test + confirm | total | flash bytes programmed (programs / erases) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, size, (b, w, fi, bo, tot), nbytes, writes, erases, _ in rows:
        print(f"| {label} | {size} | {b} | {w} | {fi} | {bo} | **{tot}** | {nbytes} ({writes} / {erases}) |")
    print("(times in thousands of instructions on the emulated Cortex-M3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
