"""Memory and size figures of a model next to TensorFlow Lite Micro's (benchmarks/bench_vs_tflm.py).

    blob_parts(elm)     -> {"total", "model", "meta", "self_test", "arena"}: bytes of the blob as shipped,
                           of the same blob without its optional sections (what a .tflite holds: graph,
                           tensors, ops, constants), of META and SELF, and the planned arena
    tflm_arena(tflite)  -> {"head", "tail", "total"}: TFLM's arena after one invoke, from its
                           RecordingMicroAllocator; "head" is the non-persistent part where TFLM's planner
                           places the activation tensors (and kernel scratch buffers: its reference
                           kernels for our op set request none), "tail" the persistent part
                           (TfLiteEvalTensor records, node structs, per-op data such as per-channel
                           multipliers)
"""
from __future__ import annotations

import os
import re
import sys
import tempfile

import numpy as np

from . import blob, oracle

_ALLOC_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def blob_parts(elm: bytes) -> dict[str, int]:
    # Sizes of re-encodes without the optional sections: exact, padding and table entries included.
    total = len(elm)
    g = blob.decode(elm)
    g.self_test = None
    no_self = len(blob.encode(g))
    g.meta = {}
    model = len(blob.encode(g))
    return {"total": total, "model": model, "meta": no_self - model, "self_test": total - no_self,
            "arena": g.arena_size}


def _capture_fd2(fn) -> str:
    """What fn() writes to file descriptor 2 (TFLM prints from C++, past sys.stderr)."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        return f.read().decode(errors="replace")


def tflm_arena(tflite) -> dict[str, int]:
    it = oracle.tflm_interpreter(tflite)
    d = it.get_input_details(0)
    it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
    it.invoke()
    found = {k: int(v) for k, v in _ALLOC_RE.findall(_capture_fd2(it.print_allocations))}
    if set(found) != {"total", "head", "tail"} or found["head"] + found["tail"] != found["total"]:
        raise RuntimeError(f"unexpected TFLM allocation report: {found}")
    return found
