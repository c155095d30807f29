"""Small training helpers: Keras model -> full-int8 .tflite bytes.

TensorFlow is imported lazily (2-4 s) so importing this module is cheap.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings

import numpy as np


def tf():
    """The tensorflow module, imported once with its C++ logging quietened."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow

    return tensorflow


def with_batch_size_1(model, build):
    """A copy of `model` whose input batch is fixed to 1 (so Flatten converts to a single RESHAPE).

    `build(batch_size)` must build the same architecture; the weights are copied over.
    """
    export = build(batch_size=1)
    export.set_weights(model.get_weights())
    return export


def quantize_keras(model, rep_data, per_channel: bool = True) -> bytes:
    """Full-int8 TFLite bytes for a Keras 3 model (int8 input and output, TFLITE_BUILTINS_INT8 only).

    rep_data: float samples without the batch axis (array or iterable) used for calibration.
    per_channel=False asks for one weight scale per Dense layer (TF 2.21 defaults to per-channel).
    """
    t = tf()
    in_shape = tuple(model.inputs[0].shape)
    sample_shape = (1,) + tuple(int(d) for d in in_shape[1:])
    samples = [np.asarray(s, dtype=np.float32).reshape(sample_shape) for s in rep_data]
    if not samples:
        raise ValueError("quantize_keras needs at least one representative sample")

    def representative_dataset():
        for s in samples:
            yield [s]

    converter = t.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [t.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = t.int8
    converter.inference_output_type = t.int8
    if not per_channel:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return bytes(converter.convert())


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float -> int8 with a tensor's quantization, as TFLite's AffineQuantize does it:
    float32 x / scale, rounded half away from zero, plus the zero point, clamped to int8."""
    v = (np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float64)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)
