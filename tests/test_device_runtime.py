"""The device runtime on real MicroPython: bit-exact with TFLM on every target and backend, and a loader
that rejects every damaged blob with a ValueError instead of crashing."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgeloop_host.run import DeviceError, run_on_target

SWEEP = Path(__file__).parent / "device" / "fault_sweep.py"

# (target, backend, natmod arch or None, how many test samples)
CASES = [
    ("unix", "c", None, None),
    ("unix", "python", None, None),
    ("unix", "c", "x64", None),
    ("stock", "python", None, None),
    ("stock", "c", "x64", None),
    ("qemu-arm", "c", None, None),
    ("qemu-arm", "c", "armv7m", None),
    ("qemu-arm", "c", "armv6m", None),
    ("qemu-arm", "python", None, 40),
    ("qemu-rv32", "c", None, None),
    ("qemu-rv32", "c", "rv32imc", None),
    ("qemu-rv32", "python", None, 40),
    ("qemu-m0", "c", None, None),
    ("qemu-m0", "c", "armv6m", 100),
    ("qemu-m0", "viper", None, 40),
]


def _target(request, name):
    return request.getfixturevalue(name.replace("-", "_") + "_target")


@pytest.mark.parametrize("target, backend, natmod, n", CASES,
                         ids=[f"{t}-{b}{'-natmod-' + a if a else ''}" for t, b, a, _ in CASES])
def test_digits_bit_exact_with_tflm(request, digits, target, backend, natmod, n):
    t = _target(request, target)
    x = digits.x[:n] if n else digits.x
    mod = None
    if natmod:
        mod = f"_el_{natmod}"
        t.install_natmod(mod, arch=natmod)
    y, used = run_on_target(digits.elm, x, target, backend, session=t, c_module=mod)
    assert used == backend
    assert y.shape == digits.y_tflm[: len(x)].shape
    assert np.array_equal(y, digits.y_tflm[: len(x)]), "int8 outputs differ from TFLM"


def test_natmod_is_really_used(unix_target):
    """Guards the test above: with a natmod swapped in, the kernel module is the natmod."""
    unix_target.install_natmod("_el_x64", arch="x64")
    out = unix_target.exec("import _el_x64, edgeloop.backend as B\np = B.use_c_module(_el_x64)\n"
                           "print(B.select('c')[1][9] is _el_x64.fully_connected, _el_x64.BUILD)\n"
                           "B.use_c_module(p)")
    assert out.split() == ["True", "natmod"]


@pytest.mark.parametrize("target, backend", [("unix", "c"), ("stock", "python")])
def test_every_truncation_and_bit_flip_is_rejected(request, digits, target, backend):
    t = _target(request, target)
    t.put(SWEEP, "lib/fault_sweep.py")
    t.put_bytes(digits.elm, "good.elm")
    out = t.exec("import fault_sweep as F\nd = open('good.elm','rb').read()\n"
                 f"print(F.truncations(d, {backend!r}), F.bit_flips(d, {backend!r}), len(d))", timeout=600)
    truncated_loads, flipped_loads, size = map(int, out.split())
    assert size == len(digits.elm)
    assert truncated_loads == 0
    assert flipped_loads == 0


@pytest.mark.parametrize("target, backend", [("unix", "c"), ("stock", "python")])
def test_hostile_words_with_valid_crc_never_crash(request, digits, target, backend):
    """Validation must hold without the CRC: every word of the blob set to hostile values, CRC fixed."""
    t = _target(request, target)
    t.put(SWEEP, "lib/fault_sweep.py")
    t.put_bytes(digits.elm, "good.elm")
    out = t.exec("import fault_sweep as F\nd = open('good.elm','rb').read()\n"
                 f"print(*F.hostile_words(d, {backend!r}))", timeout=900)
    loaded, rejected = map(int, out.split())
    # weights/bias words may take any value; header/tables/quantization words may not
    assert rejected > 0 and loaded > 0
    assert loaded + rejected == ((len(digits.elm) - 16) // 4) * 10


@pytest.mark.qemu
def test_damaged_blobs_rejected_on_the_emulated_board(qemu_arm_target, digits):
    t = qemu_arm_target
    t.put(SWEEP, "lib/fault_sweep.py")
    t.put_bytes(digits.elm, "good.elm")
    out = t.exec("import fault_sweep as F\nd = open('good.elm','rb').read()\n"
                 "print(F.truncations(d, 'c', 7), F.bit_flips(d, 'c', 97), *F.hostile_words(d, 'c', 16, 52))",
                 timeout=600)
    truncated, flipped, loaded, rejected = map(int, out.split())
    assert truncated == 0 and flipped == 0 and rejected > 0


@pytest.mark.parametrize("target", ["unix", "stock", "qemu-arm"])
def test_bad_input_length_is_a_value_error(request, digits, target):
    t = _target(request, target)
    t.put_bytes(digits.elm, "good.elm")
    out = t.exec("import edgeloop\nm = edgeloop.load('good.elm')\n"
                 "try:\n m.predict(bytes(63))\nexcept ValueError as e:\n print('VE', e)")
    assert out.strip() == "VE input has 63 bytes, the model takes 64"


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b[:1000], r"truncated or padded: header says \d+ bytes, got 1000"),
    (lambda b: b"ELMX" + b[4:], "bad magic"),
    (lambda b: b[:500] + bytes([b[500] ^ 4]) + b[501:], "CRC mismatch"),
])
def test_run_reports_device_loader_errors(unix_target, digits, damage, reason):
    with pytest.raises(DeviceError, match=reason):
        run_on_target(damage(digits.elm), digits.x[:2], "unix", session=unix_target)


@pytest.mark.parametrize("target", ["unix", "stock", "qemu-arm"])
def test_self_test_catches_a_wrong_weight_the_crc_cannot(request, digits, target):
    """A weight changed and the CRC recomputed (a bad conversion, not transport damage): the blob loads,
    and only the self-test vector notices."""
    t = _target(request, target)
    g = digits.graph
    w = g.tensors[g.ops[0].tensors[1]]
    # change the weight column that meets the self-test input's largest (x - zero point) in every
    # hidden unit, so that at least one active (non-clamped) unit sees it
    x_self = g.self_test[0].reshape(-1).astype(int) - g.input().zero_point
    k = int(abs(x_self).argmax())
    bad = bytearray(digits.elm)
    units, depth = w.shape
    for row in range(units):
        bad[_const_offset(digits.elm, g.ops[0].tensors[1]) + row * depth + k] ^= 0x40
    struct.pack_into("<I", bad, 12, zlib.crc32(bytes(bad[16:])))
    t.put_bytes(digits.elm, "good.elm")
    t.put_bytes(bytes(bad), "bad.elm")
    out = t.exec("import edgeloop\nprint(edgeloop.load('good.elm').self_test(), edgeloop.load('bad.elm').self_test())")
    assert out.split() == ["True", "False"]
    assert w.data.size > 0


def _const_offset(elm: bytes, tensor: int) -> int:
    from edgeloop_host import blob

    nsec = struct.unpack_from("<H", elm, 28)[0]
    for i in range(nsec):
        tag, _, off, _ = blob.SECTION.unpack_from(elm, 32 + 16 * i)
        if tag == b"TENS":
            return blob.TENSOR.unpack_from(elm, off + 4 + tensor * blob.TENSOR.size)[10]
    raise AssertionError("no TENS")



@pytest.mark.parametrize("target", ["unix", "stock"])
def test_wrong_input_type_is_a_value_error(request, digits, target):
    t = _target(request, target)
    t.put_bytes(digits.elm, "good.elm")
    out = t.exec("import edgeloop\nm = edgeloop.load('good.elm')\n"
                 "try:\n m.predict([0.5] * 64)\nexcept ValueError as e:\n print('VE', e)")
    assert out.startswith("VE input must be int8 bytes")


def test_model_larger_than_free_heap_is_a_memory_error_naming_the_sizes():
    """A valid blob whose planned arena does not fit next to it on a small MicroPython heap."""
    import numpy as np
    from blobgen import random_mlp

    from edgeloop_host import blob
    from edgeloop_host.targets import open_target

    g = random_mlp(np.random.default_rng(5), [50000, 1], per_channel=False)  # 50 KB weights, 50 KB arena
    with open_target("unix", heapsize="160K") as t:
        t.install_runtime()
        t.put_bytes(blob.encode(g), "big.elm")
        out = t.exec("import edgeloop\ntry:\n edgeloop.load('big.elm')\nexcept MemoryError as e:\n print('ME', e)")
    assert out.startswith("ME ") and "arena" in out and "free" in out, out
