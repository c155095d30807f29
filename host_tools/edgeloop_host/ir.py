"""In-memory int8 graph shared by the TFLite importer, the blob codec and the numpy reference.

Only integer quantities drive the arithmetic: floats (scales) are kept for reports and for
float<->int8 conversion at the model boundary, never for inference.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Operator codes are TFLite builtin operator codes (docs/FORMAT.md).
ADD = 0
AVERAGE_POOL_2D = 1
CONV_2D = 3
DEPTHWISE_CONV_2D = 4
FULLY_CONNECTED = 9
LOGISTIC = 14
MAX_POOL_2D = 17
SOFTMAX = 25
MEAN = 40
OP_NAMES = {ADD: "ADD", AVERAGE_POOL_2D: "AVERAGE_POOL_2D", CONV_2D: "CONV_2D",
            DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D", FULLY_CONNECTED: "FULLY_CONNECTED", LOGISTIC: "LOGISTIC",
            MAX_POOL_2D: "MAX_POOL_2D", SOFTMAX: "SOFTMAX", MEAN: "MEAN"}
OPCODES = {v: k for k, v in OP_NAMES.items()}

# Word layout of every op record, in docs/FORMAT.md order: (tensor-index words, named int words).
# An op's record is `Op.tensors` (the tensor-index words) followed by `Op.attrs[name]` for the int words.
_POOL = (("input", "output"), ("stride_h", "stride_w", "filter_h", "filter_w", "pad_top", "pad_left",
                               "act_min", "act_max"))
OP_LAYOUTS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    FULLY_CONNECTED: (("input", "weights", "bias", "output", "multiplier", "shift"), ("act_min", "act_max")),
    CONV_2D: (("input", "filter", "bias", "output", "multiplier", "shift"),
              ("stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left", "act_min", "act_max")),
    DEPTHWISE_CONV_2D: (("input", "filter", "bias", "output", "multiplier", "shift"),
                        ("stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left",
                         "depth_multiplier", "act_min", "act_max")),
    AVERAGE_POOL_2D: _POOL,
    MAX_POOL_2D: _POOL,
    MEAN: (("input", "output"), ("multiplier", "shift")),
    ADD: (("input1", "input2", "output"),
          ("left_shift", "input1_multiplier", "input1_shift", "input2_multiplier", "input2_shift",
           "output_multiplier", "output_shift", "act_min", "act_max")),
    SOFTMAX: (("input", "output"), ("input_multiplier", "input_left_shift", "diff_min")),
    LOGISTIC: (("input", "output"), ("input_range_radius", "input_multiplier", "input_left_shift")),
}
# Which tensor words are activations the op reads / writes (the others are constants or -1).
OP_IO: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    op: ((("input1", "input2") if op == ADD else ("input",)), ("output",)) for op in OP_LAYOUTS}

DTYPE_CODES = {"int8": 1, "int32": 2}
ENCODING_DENSE = 0
ENCODING_SPARSE_ROWS = 1  # sparse.py
ENCODING_NAMES = {ENCODING_DENSE: "dense", ENCODING_SPARSE_ROWS: "sparse"}
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
    # activations only: index of the tensor whose arena bytes this one reuses under another shape (a no-copy
    # RESHAPE / EXPAND_DIMS / SQUEEZE view); None for a tensor that owns its bytes
    alias_of: int | None = None
    # constants only: how DATA stores them (docs/FORMAT.md "Weight encodings"); `data` is always dense
    encoding: int = 0  # ENCODING_DENSE or ENCODING_SPARSE_ROWS

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


@dataclass
class Op:
    opcode: int
    # the tensor-index words of the op record, in OP_LAYOUTS order (-1: no tensor, e.g. no bias)
    tensors: list[int]
    # the remaining int words by name (OP_LAYOUTS), e.g. act_min, act_max
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return OP_NAMES.get(self.opcode, f"opcode {self.opcode}")

    def tensor(self, word: str) -> int:
        """The tensor index in the named tensor word (e.g. "input", "filter")."""
        return self.tensors[OP_LAYOUTS[self.opcode][0].index(word)]

    def inputs(self) -> list[int]:
        """Activation tensors the op reads."""
        return [self.tensor(w) for w in OP_IO[self.opcode][0]]

    def outputs(self) -> list[int]:
        """Activation tensors the op writes."""
        return [self.tensor(w) for w in OP_IO[self.opcode][1]]

    def words(self) -> list[int]:
        """The op record's i32 words (docs/FORMAT.md order)."""
        tensor_words, attr_words = OP_LAYOUTS[self.opcode]
        if len(self.tensors) != len(tensor_words):
            raise ValueError(f"{self.name}: {len(self.tensors)} tensor words, expected {len(tensor_words)}")
        return [int(t) for t in self.tensors] + [int(self.attrs[a]) for a in attr_words]

    @classmethod
    def from_words(cls, opcode: int, words: list[int]) -> "Op":
        tensor_words, attr_words = OP_LAYOUTS[opcode]
        if len(words) != len(tensor_words) + len(attr_words):
            raise ValueError(f"{OP_NAMES[opcode]}: {len(words)} words, expected "
                             f"{len(tensor_words) + len(attr_words)}")
        nt = len(tensor_words)
        return cls(opcode, [int(w) for w in words[:nt]], {a: int(w) for a, w in zip(attr_words, words[nt:])})


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

    def buffer_of(self, i: int) -> int:
        """The tensor that owns the arena bytes of activation i (i itself unless i is a reshape view)."""
        seen = 0
        while self.tensors[i].alias_of is not None:
            i = self.tensors[i].alias_of
            seen += 1
            if seen > len(self.tensors):
                raise ValueError("alias cycle in the tensor table")
        return i
