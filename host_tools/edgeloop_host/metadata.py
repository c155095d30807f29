"""The blob's META JSON that the device needs next to the int8 graph (docs/PIPELINE.md lists the keys).

    meta = build_meta(name, tflite_or_graph, x_train, labels=[...], preprocess={...})
    convert(tflite, out, meta=meta, self_test_sample=xq_test[0])

Keys:
  name, task ("classification" | "anomaly"), labels
  input:  shape, scale, zero_point (float -> int8: q = clamp(round(x / scale) + zero_point)),
          preprocess: what turns a raw sensor reading into the model's float input
                      ({"description", "offset", "multiplier"}: x = (raw - offset) * multiplier, scalars or
                      one value per channel)
  output: shape, scale, zero_point
  train_stats: statistics of the training inputs in int8 space (what the device sees) for drift checks:
          {"space": "int8", "n", "axis": "feature" | "channel" | "chunk", "size", "mean", "std"}: per input
          value when there are <= 64 of them, else per channel (last axis) or per contiguous chunk of `size`
          values of the flattened input
  anomaly: {"score", "threshold", ...} for anomaly detectors (score computed from int8 input and output)
"""
from __future__ import annotations

import numpy as np

MAX_STATS = 64


def _r(v, nd: int = 3):
    return [round(float(a), nd) for a in np.asarray(v).reshape(-1)]


def input_stats(xq: np.ndarray, max_values: int = MAX_STATS) -> dict:
    """Mean / std of int8 input samples (N, *shape), reduced to at most max_values groups."""
    xq = np.asarray(xq, dtype=np.float64)
    n = len(xq)
    flat = xq.reshape(n, -1)
    f = flat.shape[1]
    if f <= max_values:
        axis, size, groups = "feature", 1, flat.reshape(n, f, 1)
    elif xq.ndim > 2 and xq.shape[-1] <= max_values:
        c = xq.shape[-1]
        axis, size, groups = "channel", f // c, flat.reshape(n, -1, c).transpose(0, 2, 1)
    else:
        size = int(np.ceil(f / max_values))
        pad = size * int(np.ceil(f / size)) - f
        if pad:  # pad the last chunk with its own mean so it does not skew the statistics
            flat = np.concatenate([flat, np.repeat(flat[:, -1:], pad, axis=1)], axis=1)
        axis, groups = "chunk", flat.reshape(n, -1, size)
    mean = groups.mean(axis=(0, 2))
    std = groups.transpose(1, 0, 2).reshape(groups.shape[1], -1).std(axis=1)
    return {"space": "int8", "n": int(n), "axis": axis, "size": int(size), "mean": _r(mean, 2), "std": _r(std, 2)}


def io_quant(tflite_or_graph):
    """(input tensor, output tensor) of an ir.Graph, or of the graph imported from .tflite bytes/path."""
    from . import ir

    g = tflite_or_graph
    if not isinstance(g, ir.Graph):
        from .tflite_import import load_tflite

        g = load_tflite(g)
    return g.input(), g.output()


def build_meta(name: str, tflite_or_graph, x_train: np.ndarray, labels=None, preprocess: dict | None = None,
               task: str = "classification", anomaly: dict | None = None, extra: dict | None = None) -> dict:
    """META dict for convert(); x_train: the float training inputs (model space, after preprocess)."""
    from .train import quantize_input

    t_in, t_out = io_quant(tflite_or_graph)
    xq = quantize_input(x_train, t_in.scale, t_in.zero_point)
    meta = {
        "name": name,
        "task": task,
        "input": {"shape": list(t_in.shape), "scale": float(np.float32(t_in.scale)), "zero_point": int(t_in.zero_point),
                  "preprocess": preprocess or {"description": "none: the model takes the raw values",
                                               "offset": 0.0, "multiplier": 1.0}},
        "output": {"shape": list(t_out.shape), "scale": float(np.float32(t_out.scale)),
                   "zero_point": int(t_out.zero_point)},
        "train_stats": input_stats(xq),
    }
    if labels is not None:
        meta["labels"] = [str(s) for s in labels]
    if anomaly is not None:
        meta["anomaly"] = anomaly
    if extra:
        meta.update(extra)
    return meta
