"""Every kernel of the TFLM int8 op set on the real interpreters, one small model per op (Keras single-op
builders of tests/tflite_models.py, converted by the importer): outputs equal TFLM's, value for value, on
every build of the kernels: the user C module (unix, qemu-arm, qemu-rv32), the natmods (x64 on unix and
stock MicroPython, armv7m and armv6m on the Cortex-M3 board, rv32imc on the RISC-V board) and the
pure-MicroPython fallback (few inputs on the emulated board: it is slow there).

All models and inputs of a target go up in one batch and run in one exec per backend."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tflite_models as M
from edgeloop_host import oracle
from edgeloop_host.convert import convert

# op under test -> builder of a small model exercising it: (tflite bytes, int8 inputs)
OPS = {
    "conv2d_same": lambda: M.conv2d_model((6, 6, 3), 5, (3, 3), seed=11),
    "conv2d_strided_valid_relu": lambda: M.conv2d_model((7, 9, 2), 4, (3, 2), (2, 3), "valid", activation="relu",
                                                        seed=12),
    "conv2d_dilated_pertensor": lambda: M.conv2d_model((8, 7, 3), 3, (3, 3), dilation=(2, 2), per_channel=False,
                                                       seed=13),
    "conv2d_1x1_deep": lambda: M.conv2d_model((4, 4, 40), 9, (1, 1), seed=14),
    "conv2d_long_patch": lambda: M.conv2d_model((5, 5, 20), 3, (3, 3), seed=15),  # 180 taps: k chunks
    "depthwise_mult2": lambda: M.depthwise_model((6, 6, 4), (3, 3), 2, seed=21),
    "depthwise_strided_relu6": lambda: M.depthwise_model((7, 7, 3), (3, 3), 1, (2, 2), activation="relu6", seed=22),
    "depthwise_5x3_dilated": lambda: M.depthwise_model((9, 8, 2), (5, 3), dilation=(2, 1), seed=23),
    "max_pool": lambda: M.pool_model("max", (6, 6, 3), seed=31),
    "avg_pool_same": lambda: M.pool_model("avg", (7, 7, 3), (3, 3), (2, 2), "same", seed=32),
    "mean": lambda: M.gap_model((5, 5, 4), seed=41),
    "add": lambda: M.add_model((4, 4, 3), seed=51),
    "softmax": lambda: M.softmax_model(8, 6, seed=61),
    "logistic": lambda: M.logistic_model((6,), 5, seed=71),
    "fully_connected_pertensor": lambda: (lambda m: (M.quantize(m, np.random.default_rng(0).normal(size=(32, 24))
                                                                .astype(np.float32), per_channel=False), None))(
        M.dense_stack((24,), [13], [None], seed=81, bias_scale=0.2)),
}

# (target, backend, natmod arch or None, inputs per model)
CASES = [
    ("unix", "c", None, 16),
    ("unix", "c", "x64", 16),
    ("unix", "python", None, 3),
    ("stock", "c", "x64", 16),
    ("stock", "python", None, 3),
    ("qemu-arm", "c", None, 8),
    ("qemu-arm", "c", "armv7m", 8),
    ("qemu-arm", "c", "armv6m", 8),
    ("qemu-arm", "python", None, 1),
    ("qemu-rv32", "c", None, 8),
    ("qemu-rv32", "c", "rv32imc", 8),
]


def _build_tflite_models() -> dict[str, tuple[bytes, np.ndarray]]:
    """The op models as .tflite + int8 inputs. Building them takes TensorFlow ~40 s, so they are cached
    in $EDGELOOP_CACHE keyed on the builders' source and the TensorFlow version (the importer and TFLM
    still run on every test run)."""
    import hashlib
    import importlib.metadata
    import pickle

    from edgeloop_host.toolchain import cache_root

    h = hashlib.sha256(Path(M.__file__).read_bytes() + Path(__file__).read_bytes())
    h.update(importlib.metadata.version("tensorflow-cpu").encode())
    path = cache_root() / "test-models" / f"kernel-ops-{h.hexdigest()[:16]}.pickle"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    out = {}
    for name, build in OPS.items():
        tfl, x = build()
        if x is None:  # plain Keras -> tflite: random int8 inputs
            from edgeloop_host import tflite_import

            g = tflite_import.load_tflite(tfl)
            x = np.random.default_rng(5).integers(-128, 128, (16,) + tuple(g.input().shape[1:]), dtype=np.int8)
        out[name] = (bytes(tfl), np.ascontiguousarray(np.asarray(x, dtype=np.int8)[:16]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(out))
    tmp.replace(path)
    return out


@pytest.fixture(scope="module")
def op_models():
    return {name: (convert(tfl), x, oracle.tflm_run(tfl, x)) for name, (tfl, x) in _build_tflite_models().items()}


def _run_all(t, models, backend, c_module, n, tag):
    files = []
    for name, (elm, x, _) in models.items():
        files += [(elm, f"k_{name}.elm"), (x[:n].tobytes(), f"k_{name}_{n}.in")]
    t.put_many(files)
    code = ["from edgeloop.batch import run_file"]
    for name in models:
        code.append(f"run_file('k_{name}.elm', 'k_{name}_{n}.in', 'k_{name}_{tag}.out', {backend!r}, {c_module!r})")
    code.append("import binascii, gc")
    code.append("for n in %r:" % (list(models),))
    code.append(f"    print('EL-OUT', n, binascii.hexlify(open('k_' + n + '_{tag}.out', 'rb').read()).decode())")
    code.append("gc.collect()")
    out = t.exec("\n".join(code), timeout=900)
    got = {}
    for line in out.splitlines():
        if line.startswith("EL-OUT"):
            _, name, data = line.split()
            got[name] = np.frombuffer(bytes.fromhex(data), np.int8)
    assert set(got) == set(models), out[-500:]
    return got


@pytest.mark.parametrize("target, backend, natmod, n", CASES,
                         ids=[f"{t}-{b}{'-natmod-' + a if a else ''}" for t, b, a, _ in CASES])
def test_every_op_bit_exact_with_tflm(request, op_models, target, backend, natmod, n):
    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    mod = None
    if natmod:
        mod = f"_elk_{natmod}"
        t.install_natmod(mod, arch=natmod)
    got = _run_all(t, op_models, backend, mod, n, f"{backend}{natmod or ''}")
    bad = []
    for name, (_, x, y_tflm) in op_models.items():
        want = y_tflm[:n].reshape(-1)
        if not np.array_equal(got[name], want):
            bad.append(f"{name}: {int(np.sum(got[name] != want))} of {want.size} values differ")
    assert not bad, bad


def test_kernels_report_bad_words_as_value_errors(unix_target):
    """A hostile args array reaches the C kernels and the Python ones alike: ValueError, same message."""
    unix_target.install_natmod("_elk_x64", arch="x64")
    code = (
        "import _edgeloop, _elk_x64\n"
        "from edgeloop import pykernels\n"
        "from array import array\n"
        "blob = bytes(64); arena = bytearray(64)\n"
        "cases = [('conv_2d', array('i', [0] * 23)), ('depthwise_conv_2d', array('i', [0, 32] + [1] * 23)),\n"
        "         ('softmax', array('i', [0, 8, 1, 8, 1 << 30, 1, 5])), ('add', array('i', [0, 0, 0, 64] + [0] * 12)),\n"
        "         ('mean', array('i', [0, 40, 4, 4, 4, 0, 0, -1, 0]))]\n"
        "for name, a in cases:\n"
        "    msgs = []\n"
        "    for mod in (_edgeloop, _elk_x64, pykernels):\n"
        "        try:\n"
        "            getattr(mod, name)(blob, arena, a)\n"
        "            msgs.append('ok')\n"
        "        except ValueError as e:\n"
        "            msgs.append(str(e))\n"
        "    print(name, '|'.join(msgs))\n")
    lines = unix_target.exec(code).strip().splitlines()
    assert len(lines) == 5
    for line in lines:
        name, msgs = line.split(" ", 1)
        c, nat, py = msgs.split("|")
        assert c == nat == py != "ok", line
