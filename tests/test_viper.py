"""The viper backend (native code compiled on the board, for firmware without the C module) against the
pure-Python kernels on the same interpreter: 64-bit viper on the unix port and the stock wheel, 32-bit
viper on the emulated Cortex-M3."""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

import kernel_cases as K

OPCODES = {"fully_connected": 9, "conv_2d": 3, "depthwise_conv_2d": 4}
SEED_SHIFT = int(os.environ.get("EDGELOOP_TEST_SEED", "0"))
DIFF = Path(__file__).parent / "device" / "kernel_diff.py"


def _cases(seed: int, n: int):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        realistic = i % 3 != 0  # a third with raw random multipliers/shifts: the whole fixed-point range
        kind = i % 3
        try:
            c = _one(rng, kind, realistic)
        except ValueError:  # VALID padding with a filter larger than the input: no such layer
            continue
        out.append([OPCODES[c.kernel], list(c.args), bytes(c.blob).hex(), bytes(c.arena).hex()])
    return out


def _one(rng, kind, realistic):
    if kind == 0:
        c = K.fully_connected(rng, batches=int(rng.integers(1, 3)), depth=int(rng.integers(1, 40)),
                              units=int(rng.integers(1, 12)), per_channel=bool(rng.integers(2)),
                              bias=bool(rng.integers(2)), realistic=realistic)
    elif kind == 1:
        k = int(rng.integers(1, 4))
        c = K.conv_2d(rng, in_h=int(rng.integers(1, 7)), in_w=int(rng.integers(1, 7)),
                      in_c=int(rng.integers(1, 5)), out_c=int(rng.integers(1, 5)), k_h=k,
                      k_w=int(rng.integers(1, 4)), stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                      dilation=(int(rng.integers(1, 3)), 1), padding=("same", "valid")[int(rng.integers(2))],
                      bias=bool(rng.integers(2)), realistic=realistic)
    else:
        c = K.depthwise_conv_2d(rng, in_h=int(rng.integers(1, 7)), in_w=int(rng.integers(1, 7)),
                                in_c=int(rng.integers(1, 5)), depth_multiplier=int(rng.integers(1, 4)),
                                k_h=int(rng.integers(1, 4)), k_w=int(rng.integers(1, 4)),
                                stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                                padding=("same", "valid")[int(rng.integers(2))],
                                bias=bool(rng.integers(2)), realistic=realistic)
    if c.kernel != "fully_connected" and min(c.args[5:8]) < 1:
        raise ValueError("no output")
    return c




@pytest.mark.parametrize("target, n", [("unix", 150), ("stock", 150), ("qemu-arm", 45)])
def test_viper_kernels_match_python_kernels(request, target, n):
    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    cases = _cases(seed=zlib.crc32(target.encode()) + SEED_SHIFT, n=n)
    t.put(DIFF, "lib/kernel_diff.py")
    t.put_bytes(json.dumps(cases).encode(), "viper_cases.json")
    out = t.exec("import kernel_diff\nprint(*kernel_diff.run('viper_cases.json'))", timeout=600)
    count, mism = out.split(" ", 1)
    assert int(count) == len(cases)
    assert mism.strip() == "[]", f"viper != python on cases {mism}"


@pytest.mark.parametrize("target", ["unix", "stock", "qemu-arm"])
def test_viper_digits_bit_exact_with_tflm(request, digits, target):
    from edgeloop_host.run import run_on_target

    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    n = 60 if target == "qemu-arm" else None
    y, used = run_on_target(digits.elm, digits.x[:n], target, "viper", session=t)
    assert used == "viper"
    assert np.array_equal(y, digits.y_tflm[:n])


HEAP_CHECK = """
import micropython, edgeloop
from edgeloop import viperkernels as vk
_bind = vk.bind
seen = []
bad = []
def bind(opcode, blob, arena, a):
    k = _bind(opcode, blob, arena, a)
    if k is None:
        return None
    seen.append(opcode)
    def locked(b, ar, x):
        ok = True
        micropython.heap_lock()
        try:
            k(b, ar, x)
        except MemoryError:
            ok = False
        micropython.heap_unlock()
        if not ok:
            bad.append(opcode)
    return locked
vk.bind = bind
try:
    for name in %r:
        m = edgeloop.load(open(name, 'rb').read(), 'viper')
        m.predict(bytearray(m.input_size))
finally:
    vk.bind = _bind
print('HEAP', len(seen), bad)
"""


@pytest.mark.parametrize("target", ["unix", "qemu-arm"])
def test_bound_viper_kernels_allocate_nothing(request, target):
    # every MAC op of every zoo model, run once with the heap locked (a closure call with more than
    # five arguments, or a boxed big int, would raise MemoryError)
    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    models = sorted(Path(__file__).resolve().parents[1].glob("models/*/*.elm"))
    names = []
    for m in models:
        t.put(m, f"heap_{m.name}")
        names.append(f"heap_{m.name}")
    out = t.exec(HEAP_CHECK % (names,), timeout=600)
    count, bad = out.split("HEAP", 1)[1].split(" ", 2)[1:]
    assert int(count) >= 2 * len(models)
    assert bad.strip() == "[]", f"opcodes that allocated: {bad}"
