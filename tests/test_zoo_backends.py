"""Every zoo model on every backend of every interpreter gives TFLM's int8 outputs, value for value:
the C kernels (usermod and natmods), viper and pure Python, on the unix port, the stock wheel, the
emulated Cortex-M3 and RISC-V boards."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeloop_host import blob, oracle
from edgeloop_host.run import run_on_target

MODELS = sorted(p.parent.name for p in Path(__file__).resolve().parents[1].glob("models/*/*.elm"))

# (target, backend, natmod arch, samples): pure Python on the boards only gets a couple of samples
CASES = [
    ("unix", "c", None, 8), ("unix", "viper", None, 8), ("unix", "python", None, 3),
    ("stock", "c", "x64", 8), ("stock", "viper", None, 8), ("stock", "python", None, 3),
    ("qemu-arm", "c", None, 6), ("qemu-arm", "c", "armv7m", 4), ("qemu-arm", "c", "armv6m", 4),
    ("qemu-arm", "viper", None, 3), ("qemu-arm", "python", None, 1),
    ("qemu-rv32", "c", None, 4),
]


@pytest.fixture(scope="module")
def goldens():
    """Per model: int8 inputs drawn at random (fixed seed) and TFLM's outputs for them."""
    root = Path(__file__).resolve().parents[1] / "models"
    out = {}
    for name in MODELS:
        elm = (root / name / f"{name}.elm").read_bytes()
        tfl = (root / name / f"{name}.tflite").read_bytes()
        g = blob.decode(elm)
        rng = np.random.default_rng(len(name))
        x = rng.integers(-128, 128, (8, *g.input().shape[1:]), dtype=np.int8)
        out[name] = (elm, x, oracle.tflm_run(tfl, x))
    return out


@pytest.mark.parametrize("target, backend, natmod, n", CASES,
                         ids=[f"{t}-{b}{'-' + a if a else ''}" for t, b, a, _ in CASES])
def test_zoo_bit_exact_everywhere(request, goldens, target, backend, natmod, n):
    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    mod = None
    if natmod:
        mod = f"_el_{natmod}"
        t.install_natmod(mod, arch=natmod)
    for name in MODELS:
        elm, x, y_tflm = goldens[name]
        y, used = run_on_target(elm, x[:n], target, backend, session=t, c_module=mod)
        assert used == backend
        assert np.array_equal(y.reshape(n, -1), y_tflm[:n].reshape(n, -1)), f"{name} on {target}/{backend}"
