"""int8 .tflite -> .elm: import (the importer plans the arena), attach metadata and a self-test vector,
encode."""
from __future__ import annotations

import numpy as np

from . import blob, ir, reference, sparse
from .tflite_import import load_tflite


def add_self_test(graph: ir.Graph, sample: np.ndarray | None = None, seed: int = 0) -> None:
    """Store (input, reference output) in the graph. `sample` is one int8 input (e.g. a real test
    sample); by default a fixed pseudo-random input, which exercises every weight just as well."""
    shape = graph.input().shape
    if sample is None:
        sample = np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)
    x = np.asarray(sample, dtype=np.int8).reshape(shape)
    y = reference.run(graph, x.reshape(1, -1))[0].reshape(graph.output().shape)
    graph.self_test = (x, y)


def tflite_to_graph(tflite, model_id: int = 0, model_version: int = 1, meta: dict | None = None,
                    self_test_sample: np.ndarray | None = None, sparse_mode: str = "auto") -> ir.Graph:
    """sparse_mode: auto (sparse weights where that saves >= 20% of a layer's weight bytes), never,
    always (every FULLY_CONNECTED / 1x1 CONV_2D); see sparse.py."""
    graph = load_tflite(tflite, model_id=model_id, model_version=model_version)
    if meta:
        graph.meta.update(meta)
    sparse.choose(graph, sparse_mode)
    add_self_test(graph, self_test_sample)
    return graph


def convert(tflite, out_path=None, model_id: int = 0, model_version: int = 1, meta: dict | None = None,
            self_test_sample: np.ndarray | None = None, sparse_mode: str = "auto") -> bytes:
    """Convert a full-int8 TFLite model (path or bytes) to blob bytes, written to out_path if given."""
    data = blob.encode(tflite_to_graph(tflite, model_id, model_version, meta, self_test_sample, sparse_mode))
    if out_path is not None:
        with open(out_path, "wb") as f:
            f.write(data)
    return data
