"""The hidden-style variety (strided/padded convs, depthwise multipliers, a residual ADD, softmax and
sigmoid heads, an autoencoder; per-channel and per-tensor) converted with `edgeloop convert` and run on
the real interpreters: value for value TFLM's outputs, on every backend."""
from __future__ import annotations

import numpy as np
import pytest

import tflite_models as TM
from edgeloop_host import oracle
from edgeloop_host.convert import convert
from edgeloop_host.run import run_on_target

BACKENDS = [("unix", "c", 12), ("unix", "viper", 12), ("unix", "python", 4), ("stock", "viper", 12),
            ("stock", "python", 4), ("qemu-arm", "c", 6), ("qemu-arm", "viper", 3)]


@pytest.fixture(scope="module")
def hidden_models():
    out = {}
    for name, build in TM.WHOLE_MODELS.items():
        for per_channel in (True, False):
            tfl, x = build(seed=3, per_channel=per_channel)
            x = np.asarray(x)[:12]
            out[f"{name}-{'pc' if per_channel else 'pt'}"] = (convert(tfl), x, oracle.tflm_run(tfl, x))
    return out


@pytest.mark.parametrize("target, backend, n", BACKENDS, ids=[f"{t}-{b}" for t, b, _ in BACKENDS])
def test_hidden_style_models_bit_exact(request, hidden_models, target, backend, n):
    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    for name, (elm, x, y_tflm) in hidden_models.items():
        y, used = run_on_target(elm, x[:n], target, backend, session=t)
        assert used == backend
        assert np.array_equal(y.reshape(len(y), -1), y_tflm[:n].reshape(len(y), -1)), name
