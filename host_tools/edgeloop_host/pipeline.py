"""The host pipeline's Python API: train -> distill -> prune -> quantize -> .elm.

    from edgeloop_host import pipeline as P
    ds = P.load_dataset("data.npz")                       # checked: shapes, NaNs, labels
    teacher = P.train_classifier(ds, arch="mlp", hidden=(256, 128))
    student = P.distill_classifier(ds, teacher, hidden=(32,))
    pruned, info = P.prune_classifier(ds, student, sparsity=0.75)      # or structured=0.5
    tfl, elm = P.quantize_model(pruned, ds.x_train, "m.tflite", "m.elm", labels=ds.labels)

Every step takes and returns plain Keras 3 models (saved as `.keras` by the CLI). Classifiers output
logits (no softmax), so argmax is the class on the device and distillation sees the logits.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .data import DataError, Dataset, check_model_input, load_dataset  # noqa: F401  (re-exported)
from .train import quantize_input, tf

tf()
import keras  # noqa: E402
from keras import ops  # noqa: E402

# Keras layers that convert to the int8 op set (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, pools, MEAN,
# ADD, SOFTMAX, LOGISTIC, reshapes).
SUPPORTED_LAYERS = (
    "InputLayer", "Dense", "Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "MaxPooling1D",
    "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "Flatten", "Reshape", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "ReLU",
    "Activation", "Softmax", "BatchNormalization", "Add",
)
SUPPORTED_ACTIVATIONS = ("linear", "relu", "relu6", "softmax", "sigmoid")


class Progress(keras.callbacks.Callback):
    """One line per `every` epochs on stderr: epoch, loss, accuracy, elapsed seconds."""

    def __init__(self, what: str, epochs: int, every: int | None = None, stream=None):
        super().__init__()
        self.what, self.epochs = what, int(epochs)
        self.every = every or max(1, self.epochs // 10)
        self.stream = stream or sys.stderr
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        e = epoch + 1
        if e % self.every and e != self.epochs:
            return
        logs = logs or {}
        parts = [f"{k} {v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_accuracy")]
        print(f"  {self.what}: epoch {e}/{self.epochs}  {'  '.join(parts)}  ({time.time() - self.t0:.0f}s)",
              file=self.stream, flush=True)


# ---------------------------------------------------------------------------------------------
# Models


def check_layers(model) -> None:
    """Raises ValueError naming every layer / activation that the int8 op set cannot run."""
    bad = []
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.Model):
            check_layers(layer)
            continue
        if kind not in SUPPORTED_LAYERS:
            bad.append(f"{kind} '{layer.name}'")
            continue
        act = getattr(layer, "activation", None)
        name = getattr(act, "__name__", None) if act is not None else None
        if name is not None and name not in SUPPORTED_ACTIVATIONS:
            bad.append(f"activation '{name}' in {kind} '{layer.name}'")
    if bad:
        raise ValueError(f"unsupported layers for int8 microcontroller inference: {', '.join(bad)} "
                         f"(supported: {', '.join(SUPPORTED_LAYERS[1:])}; activations "
                         f"{', '.join(SUPPORTED_ACTIVATIONS)})")


def batch1(model):
    """A copy of a Keras model whose input batch is fixed to 1 (Flatten becomes one no-copy RESHAPE,
    no SHAPE/STRIDED_SLICE ops); same weights."""
    cfg = model.get_config()
    found = False
    for layer in cfg.get("layers", []):
        if layer.get("class_name") == "InputLayer":
            bs = layer["config"]["batch_shape"]
            layer["config"]["batch_shape"] = (1,) + tuple(bs[1:])
            found = True
    if not found:
        raise ValueError("the Keras model has no Input layer; build it with keras.Input(shape)")
    clone = model.__class__.from_config(cfg)
    clone.set_weights(model.get_weights())
    return clone


def parse_hidden(text) -> tuple[int, ...]:
    if isinstance(text, (tuple, list)):
        return tuple(int(h) for h in text)
    try:
        vals = tuple(int(h) for h in str(text).split(",") if h.strip())
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise ValueError(f"--hidden must be positive integers, got {text!r}")
    return vals


def build_classifier(sample_shape, n_classes: int, arch: str = "auto", hidden=(32,), batch_size=None,
                     name: str | None = None):
    """A logits classifier for the op set.

    arch: mlp (Flatten + Dense layers of `hidden` units), cnn (images (H, W, C): Conv2D + DepthwiseConv2D +
    1x1 Conv2D blocks, pooling, GlobalAveragePooling2D, Dense), conv1d (sequences (T, C): Conv1D blocks,
    GlobalAveragePooling1D, Dense); auto picks by the sample rank (1: mlp, 2: conv1d, 3: cnn).
    `hidden` are the layer widths (filters for the conv archs).
    """
    shape = tuple(int(d) for d in sample_shape)
    hidden = parse_hidden(hidden)
    if arch == "auto":
        arch = {1: "mlp", 2: "conv1d", 3: "cnn"}.get(len(shape))
        if arch is None:
            raise ValueError(f"no default architecture for samples of shape {shape}; pass --arch")
    L = keras.layers
    layers = [keras.Input(shape=shape, batch_size=batch_size)]
    if arch == "mlp":
        if len(shape) > 1:
            layers.append(L.Flatten())
        layers += [L.Dense(h, activation="relu") for h in hidden]
    elif arch == "cnn":
        if len(shape) != 3:
            raise ValueError(f"arch cnn needs image samples (H, W, C), got {shape}")
        for i, h in enumerate(hidden):
            if i == 0:
                layers.append(L.Conv2D(h, 3, padding="same", activation="relu"))
            else:
                layers += [L.DepthwiseConv2D(3, padding="same", activation="relu"),
                           L.Conv2D(h, 1, activation="relu")]
            if i < len(hidden) - 1:
                layers.append(L.MaxPooling2D(2))
        layers.append(L.GlobalAveragePooling2D())
    elif arch == "conv1d":
        if len(shape) != 2:
            raise ValueError(f"arch conv1d needs sequence samples (T, C), got {shape}")
        for h in hidden:
            layers.append(L.Conv1D(h, 5, strides=2, padding="same", activation="relu"))
        layers.append(L.GlobalAveragePooling1D())
    else:
        raise ValueError(f"unknown arch {arch!r} (mlp, cnn, conv1d, auto)")
    layers.append(L.Dense(int(n_classes)))
    return keras.Sequential(layers, name=name or f"{arch}_classifier")


def sparse_ce(from_logits: bool = True, label_smoothing: float = 0.0):
    """Cross-entropy on integer labels, optionally with label smoothing (bounds the logits' range, so the
    int8 output keeps a fine step: see models/har_conv1d)."""
    if label_smoothing <= 0:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)

    def loss(y_true, y_pred):
        n = ops.shape(y_pred)[-1]
        y = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), n)
        return keras.losses.categorical_crossentropy(y, y_pred, from_logits=from_logits,
                                                     label_smoothing=label_smoothing)
    return loss


def compile_classifier(model, lr: float = 3e-3, label_smoothing: float = 0.0):
    from .distill import outputs_probabilities

    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=sparse_ce(not outputs_probabilities(model), label_smoothing), metrics=["accuracy"])
    return model


def accuracy(model, x, y) -> float:
    p = model.predict(x, verbose=0, batch_size=256)
    return float(np.mean(np.argmax(p.reshape(len(p), -1), axis=1) == y))


def count_params(model) -> int:
    return int(sum(int(np.prod(v.shape)) for v in model.weights))


# ---------------------------------------------------------------------------------------------
# Steps


def _fit_input(ds: Dataset, model):
    shape = model.inputs[0].shape[1:]
    x = check_model_input(ds.x_train, shape, ds.source, "x_train samples")
    xt = check_model_input(ds.x_test, shape, ds.source, "x_test samples") if ds.x_test is not None else None
    return x, xt


def _check_classes(ds: Dataset, model):
    n_out = int(model.outputs[0].shape[-1])
    top = int(max(ds.y_train.max(), ds.y_test.max() if ds.y_test is not None else 0))
    if top >= n_out:
        raise DataError(f"{ds.source}: class id {top} but the model has only {n_out} outputs")


def train_classifier(ds: Dataset, arch: str = "auto", hidden=(32,), epochs: int = 40, lr: float = 3e-3,
                     batch_size: int = 32, seed: int = 0, progress: bool = True, model=None,
                     label_smoothing: float = 0.0):
    """Trains a classifier (built by build_classifier unless `model` is given) on ds; returns it."""
    keras.utils.set_random_seed(seed)
    if model is None:
        model = build_classifier(ds.sample_shape, max(ds.n_classes, 2), arch, hidden)
    check_layers(model)
    x, _ = _fit_input(ds, model)
    _check_classes(ds, model)
    compile_classifier(model, lr, label_smoothing)
    cbs = [Progress("train", epochs)] if progress else []
    model.fit(x, ds.y_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=cbs)
    return model


def distill_classifier(ds: Dataset, teacher, student=None, hidden=(32,), arch: str = "auto", epochs: int = 60,
                       temperature: float = 4.0, alpha: float = 0.1, lr: float = 3e-3, batch_size: int = 32,
                       seed: int = 0, progress: bool = True):
    """Distills `teacher` into `student` (or a fresh build_classifier(arch, hidden)); returns the student."""
    from .distill import distill

    keras.utils.set_random_seed(seed)
    if student is None:
        n_out = int(teacher.outputs[0].shape[-1])
        student = build_classifier(ds.sample_shape, n_out, arch, hidden, name="student")
    check_layers(student)
    x, _ = _fit_input(ds, teacher)
    x = check_model_input(x, student.inputs[0].shape[1:], ds.source, "x_train samples")
    _check_classes(ds, student)
    cbs = [Progress("distill", epochs)] if progress else []
    return distill(teacher, student, x, ds.y_train, epochs=epochs, temperature=temperature, alpha=alpha, lr=lr,
                   batch_size=batch_size, callbacks=cbs)


def prune_classifier(ds: Dataset, model, sparsity: float = 0.0, structured: float = 0.0, epochs: int = 20,
                     lr: float = 1e-3, batch_size: int = 32, seed: int = 0, progress: bool = True,
                     final_lr: float | None = None, scope: str = "layer"):
    """Structured pruning (remove `structured` of the units of every hidden layer, rebuild, fine-tune) and/or
    magnitude pruning to `sparsity` (per layer or, scope "global", over all layers). final_lr: cosine-decay the
    learning rate to it. Returns (model, info dict with sparsity / MACs / params before+after)."""
    from . import prune as PR

    if sparsity <= 0 and structured <= 0:
        raise ValueError("nothing to do: give --sparsity (magnitude) and/or --structured (fraction of units)")
    keras.utils.set_random_seed(seed)
    x, _ = _fit_input(ds, model)
    _check_classes(ds, model)
    info = {"macs_before": PR.keras_macs(model)["total"], "params_before": count_params(model)}
    if structured > 0:
        model = PR.prune_structured(model, structured, x=x)
        cbs = [Progress("structured fine-tune", epochs)] if progress else []
        PR.fine_tune(model, x, ds.y_train, epochs=epochs, lr=lr, batch_size=batch_size, callbacks=cbs,
                     final_lr=final_lr)
    if sparsity > 0:
        cbs = [Progress(f"magnitude pruning to {sparsity:.0%}", epochs)] if progress else []
        model, _ = PR.prune_magnitude(model, x, ds.y_train, sparsity, epochs=epochs, lr=lr, batch_size=batch_size,
                                      callbacks=cbs, final_lr=final_lr, scope=scope)
    info.update(macs_after=PR.keras_macs(model)["total"], params_after=count_params(model),
                sparsity=PR.sparsity(model)["total"])
    return model, info


def quantize_model(model, rep_x, tflite_path=None, elm_path=None, labels=None, name: str | None = None,
                   preprocess: dict | None = None, per_channel: bool = True, max_samples: int = 1000,
                   self_test_x=None, model_id: int = 0, model_version: int = 1, meta_extra: dict | None = None,
                   sparse_mode: str = "auto"):
    """Keras model + representative float data -> full-int8 .tflite bytes and .elm bytes (written when paths
    are given). Checks the layers first (unsupported ones are named) and the data's shape / finiteness.
    sparse_mode: the blob's weight encoding per layer (convert: auto, never, always)."""
    from .convert import convert
    from .data import check_features
    from .metadata import build_meta
    from .train import quantize_keras

    check_layers(model)
    rep_x = check_features(rep_x, "representative data")
    rep_x = check_model_input(rep_x, model.inputs[0].shape[1:], "representative data")
    m1 = model if tuple(model.inputs[0].shape)[0] == 1 else batch1(model)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(rep_x))[:max_samples]
    tfl = quantize_keras(m1, rep_x[idx], per_channel=per_channel)
    if tflite_path is not None:
        with open(tflite_path, "wb") as f:
            f.write(tfl)
    from .tflite_import import load_tflite

    graph = load_tflite(tfl)  # raises ValueError naming unsupported ops
    meta = build_meta(name or model.name, graph, rep_x, labels=labels or None, preprocess=preprocess,
                      extra=meta_extra)
    st = self_test_x if self_test_x is not None else rep_x[:1]
    st = check_model_input(np.asarray(st, np.float32).reshape((-1,) + tuple(rep_x.shape[1:])),
                           model.inputs[0].shape[1:], "self-test sample")
    sample = quantize_input(st[:1], graph.input().scale, graph.input().zero_point)
    elm = convert(tfl, elm_path, model_id=model_id, model_version=model_version, meta=meta,
                  self_test_sample=sample, sparse_mode=sparse_mode)
    return tfl, elm


def load_keras(path: str):
    """Loads a .keras model with a one-line error for missing / unreadable files."""
    import os

    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    try:
        from . import distill  # noqa: F401  (registers Distiller for models saved mid-distillation)

        return keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises ValueError / OSError / zipfile errors
        raise DataError(f"{path}: cannot load the Keras model ({type(e).__name__}: {str(e).splitlines()[0]})") \
            from None
