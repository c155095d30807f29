"""int8 .tflite -> .elm: import, plan the arena, encode."""
from __future__ import annotations

from . import blob, ir
from .planner import plan_arena
from .tflite_import import load_tflite


def tflite_to_graph(tflite, model_id: int = 0, model_version: int = 1, meta: dict | None = None) -> ir.Graph:
    graph = load_tflite(tflite, model_id=model_id, model_version=model_version)
    plan_arena(graph)
    if meta:
        graph.meta.update(meta)
    return graph


def convert(tflite, out_path=None, model_id: int = 0, model_version: int = 1, meta: dict | None = None) -> bytes:
    """Convert a full-int8 TFLite model (path or bytes) to blob bytes, written to out_path if given."""
    data = blob.encode(tflite_to_graph(tflite, model_id, model_version, meta))
    if out_path is not None:
        with open(out_path, "wb") as f:
            f.write(data)
    return data
