"""The golden reference: runs a .tflite with the real TensorFlow Lite Micro interpreter.

Uses the `tflite-micro` PyPI package (TFLM's reference kernels, gemmlowp double rounding). LiteRT /
tf.lite.Interpreter is NOT bit-exact with TFLM and must not be used as the oracle.
"""
from __future__ import annotations

import os

import numpy as np


def _model_bytes(tflite_path_or_bytes) -> bytes:
    if isinstance(tflite_path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(tflite_path_or_bytes)
    with open(os.fspath(tflite_path_or_bytes), "rb") as f:
        return f.read()


def tflm_interpreter(tflite_path_or_bytes, preserve_all_tensors: bool = False, arena_size: int | None = None):
    """A tflite_micro.runtime.Interpreter for the model (kPreserveAllTensors if asked)."""
    from tflite_micro import runtime

    config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors
              else runtime.InterpreterConfig.kAllocationRecording)
    # NB: the keyword is misspelled upstream.
    return runtime.Interpreter.from_bytes(_model_bytes(tflite_path_or_bytes), arena_size=arena_size,
                                          intrepreter_config=config)


def _as_samples(x: np.ndarray, in_shape: tuple[int, ...], in_dtype) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != in_dtype:
        raise ValueError(f"input must be {np.dtype(in_dtype)}, got {x.dtype}")
    per_sample = int(np.prod(in_shape))
    if x.ndim == 0 or x.size != x.shape[0] * per_sample:
        raise ValueError(f"input shape {x.shape} does not match (N, {', '.join(map(str, in_shape[1:]))})")
    return x.reshape((x.shape[0],) + tuple(in_shape))


def tflm_run(tflite_path_or_bytes, x: np.ndarray, interpreter=None) -> np.ndarray:
    """Runs N samples, one invoke each (the model's batch is 1).

    x: (N, *input_shape[1:]) of the model's input dtype -> (N, *output_shape[1:]).
    """
    it = interpreter if interpreter is not None else tflm_interpreter(tflite_path_or_bytes)
    din, dout = it.get_input_details(0), it.get_output_details(0)
    in_shape = tuple(int(d) for d in din["shape"])
    out_shape = tuple(int(d) for d in dout["shape"])
    xs = _as_samples(x, in_shape, din["dtype"])
    out = np.empty((xs.shape[0],) + out_shape, dtype=dout["dtype"])
    for n in range(xs.shape[0]):
        it.set_input(xs[n], 0)
        it.invoke()
        out[n] = it.get_output(0)
    return out.reshape((xs.shape[0],) + (out_shape[1:] if out_shape and out_shape[0] == 1 else out_shape))


def tflm_tensors(tflite_path_or_bytes, x_one: np.ndarray) -> dict[int, np.ndarray]:
    """Every tensor of subgraph 0 after one invoke on one sample, {tflite tensor index: array}.

    For per-layer debugging against reference.run_all_tensors (map indices by tensor name).
    """
    from ai_edge_litert.tools import flatbuffer_utils

    data = _model_bytes(tflite_path_or_bytes)
    it = tflm_interpreter(data, preserve_all_tensors=True)
    din = it.get_input_details(0)
    xs = _as_samples(np.asarray(x_one)[None], tuple(int(d) for d in din["shape"]), din["dtype"])
    it.set_input(xs[0], 0)
    it.invoke()
    n_tensors = len(flatbuffer_utils.read_model_from_bytearray(bytearray(data)).subgraphs[0].tensors)
    result = {}
    for i in range(n_tensors):
        try:
            t = it.GetTensor(i, 0)  # {'dtype', 'shape', 'tensor_data'}
        except Exception:  # optional / unallocated tensors
            continue
        result[i] = np.array(t["tensor_data"]).reshape(tuple(int(d) for d in t["shape"]))
    return result
