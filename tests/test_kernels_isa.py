"""The per-ISA assembly micro-kernels (armv7m SMLAL/MLA, armv6m Thumb-1, rv32imc) are not in the host
library the fuzzer and the property tests run: here random cases of every kernel (odd channel counts,
long patches that take several k-chunks, strides, dilations, per-tensor quantization) run bare-metal on
qemu for each ISA, and every output must equal the host library's (benchmarks/icount/run.py --check)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "icount" / "run.py"


def _harness():
    spec = importlib.util.spec_from_file_location("el_icount_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("arch", ["armv7m", "armv6m", "rv32imc"])
def test_assembly_kernels_equal_the_host_library(arch):
    h = _harness()
    cc = h.ARCHS[arch][0]
    if not shutil.which(cc):
        pytest.skip(f"{cc} is not installed")
    assert h.check([arch], 30, seed=11) == 0
