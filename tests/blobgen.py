"""Random valid FULLY_CONNECTED graphs for codec and kernel tests (no TensorFlow needed)."""
from __future__ import annotations

import numpy as np

from edgeloop_host import ir
from edgeloop_host.planner import plan_arena


def random_mlp(rng: np.random.Generator, widths: list[int], per_channel: bool = True,
               with_bias: bool = True, meta: dict | None = None) -> ir.Graph:
    """A chain of FULLY_CONNECTED layers with random int8 weights and valid fixed-point parameters."""
    tensors: list[ir.Tensor] = []

    def add(t: ir.Tensor) -> int:
        tensors.append(t)
        return len(tensors) - 1

    x = add(ir.Tensor("input", (1, widths[0]), "int8", float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))))
    first = x
    ops = []
    for i, (k, n) in enumerate(zip(widths, widths[1:])):
        w = add(ir.Tensor(f"w{i}", (n, k), "int8", data=rng.integers(-127, 128, (n, k), dtype=np.int8)))
        b = add(ir.Tensor(f"b{i}", (n,), "int32", data=rng.integers(-20000, 20000, n).astype(np.int32))) \
            if with_bias else -1
        nq = n if per_channel else 1
        m = add(ir.Tensor(f"m{i}", (nq,), "int32", data=rng.integers(1 << 30, (1 << 31) - 1, nq).astype(np.int32)))
        s = add(ir.Tensor(f"s{i}", (nq,), "int32", data=rng.integers(-14, 2, nq).astype(np.int32)))
        y = add(ir.Tensor(f"y{i}", (1, n), "int8", float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 128))))
        lo = -128 if rng.random() < 0.5 else tensors[y].zero_point  # none or fused ReLU
        ops.append(ir.Op(ir.FULLY_CONNECTED, [x, w, b, y, m, s], {"act_min": lo, "act_max": 127}))
        x = y
    g = ir.Graph(tensors, ops, [first], [x], model_id=int(rng.integers(0, 2**32)),
                 model_version=int(rng.integers(1, 2**32)), meta=meta or {})
    plan_arena(g)
    return g
