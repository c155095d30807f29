"""In-memory int8 graph shared by the TFLite importer, the blob codec and the numpy reference.

Only integer quantities drive the arithmetic: floats (scales) are kept for reports and for
float<->int8 conversion at the model boundary, never for inference.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Operator codes are TFLite builtin operator codes (docs/FORMAT.md).
FULLY_CONNECTED = 9
OP_NAMES = {FULLY_CONNECTED: "FULLY_CONNECTED"}

DTYPE_CODES = {"int8": 1, "int32": 2}
DTYPE_NAMES = {v: k for k, v in DTYPE_CODES.items()}


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str  # "int8" or "int32"
    scale: float = 0.0  # activations only; constants carry scales in their op's multipliers
    zero_point: int = 0
    data: np.ndarray | None = None  # set for constants
    arena_offset: int = 0  # activations only: assigned by the memory planner

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


@dataclass
class Op:
    opcode: int
    # FULLY_CONNECTED: input, weights, bias (-1), output, multiplier, shift (tensor indices)
    tensors: list[int]
    # FULLY_CONNECTED: act_min, act_max
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return OP_NAMES.get(self.opcode, f"opcode {self.opcode}")


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    model_id: int = 0
    model_version: int = 1
    arena_size: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    # (input, expected output) int8 sample the device checks bit for bit in Model.self_test()
    self_test: tuple[np.ndarray, np.ndarray] | None = None

    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    def output(self) -> Tensor:
        return self.tensors[self.outputs[0]]
