"""The four layer shapes the kernel benchmarks measure (shared by benchmarks/bench_kernels.py and
benchmarks/icount/run.py): name -> MACs, and a deterministic kernel case for each."""
from __future__ import annotations

import numpy as np

# nominal multiply-accumulates (padding taps included, as Keras / TFLM count them)
LAYERS = {
    "fc_256x256": 256 * 256,
    "conv1x1_16x16x32_to_32": 16 * 16 * 32 * 32,
    "conv3x3_16x16x16_to_16": 16 * 16 * 16 * 9 * 16,
    "dwconv3x3_16x16x32": 16 * 16 * 32 * 9,
}


def make_case(name: str):
    import kernel_cases as kc

    rng = np.random.default_rng(20261128)
    if name == "fc_256x256":
        return kc.fully_connected(rng, 1, 256, 256)
    if name == "conv1x1_16x16x32_to_32":
        return kc.conv_2d(rng, 16, 16, 32, 32, 1, 1, padding="valid")
    if name == "conv3x3_16x16x16_to_16":
        return kc.conv_2d(rng, 16, 16, 16, 16, 3, 3, padding="same")
    if name == "dwconv3x3_16x16x32":
        return kc.depthwise_conv_2d(rng, 16, 16, 32, 1, 3, 3, padding="same")
    raise ValueError(name)
