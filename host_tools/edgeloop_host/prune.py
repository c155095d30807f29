"""Pruning for Keras 3 models (tensorflow-model-optimization does not support Keras 3).

Magnitude pruning (unstructured): ``MagnitudePruning`` is a callback that raises each weight kernel's
sparsity from 0 to the target on TFMOT's polynomial schedule ``s(t) = s_f * (1 - (1 - t)^power)``,
recomputing per-layer magnitude masks every ``frequency`` steps and re-applying them after every batch
(so the optimizer's momentum cannot revive a pruned weight). ``prune_magnitude`` fine-tunes with it.
The model keeps its shape: the zeros pay off only with a sparse weight encoding.

Structured pruning: ``prune_structured`` removes whole neurons (Dense) / filters (Conv) with the lowest
importance and rebuilds a genuinely smaller Sequential model (fewer MACs, smaller arena and blob);
``fine_tune`` then recovers the accuracy.
"""
from __future__ import annotations

import numpy as np

from .train import tf

tf()
import keras  # noqa: E402

# Layers whose `kernel` magnitude pruning thins out.
PRUNABLE = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.DepthwiseConv1D,
            keras.layers.DepthwiseConv2D)


def prunable_kernels(model, min_size: int = 0):
    """[(layer, kernel variable)] of every prunable layer with at least min_size weights."""
    out = []
    for layer in _all_layers(model):
        if isinstance(layer, PRUNABLE):
            k = layer.kernel
            if int(np.prod(k.shape)) >= min_size:
                out.append((layer, k))
    return out


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def polynomial_sparsity(step: int, target: float, begin_step: int, end_step: int, initial: float = 0.0,
                        power: int = 3) -> float:
    """TFMOT's PolynomialDecay schedule: initial at begin_step rising to target at end_step."""
    if step <= begin_step:
        return initial if step == begin_step else 0.0
    t = min(1.0, (step - begin_step) / max(1, end_step - begin_step))
    return target + (initial - target) * (1.0 - t) ** power


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Mask keeping the largest-|w| entries so that round(sparsity * size) of them are zero."""
    n_zero = int(round(float(sparsity) * w.size))
    if n_zero <= 0:
        return np.ones_like(w, dtype=np.float32)
    flat = np.abs(w).reshape(-1)
    order = np.argsort(flat, kind="stable")
    mask = np.ones(w.size, dtype=np.float32)
    mask[order[:n_zero]] = 0.0
    return mask.reshape(w.shape)


class MagnitudePruning(keras.callbacks.Callback):
    """Raises every prunable kernel to `target_sparsity` between begin_step and end_step (in batches)."""

    def __init__(self, target_sparsity: float, end_step: int, begin_step: int = 0, frequency: int = 10,
                 power: int = 3, min_size: int = 0, scope: str = "layer"):
        super().__init__()
        if not 0.0 <= target_sparsity < 1.0:
            raise ValueError(f"target sparsity must be in [0, 1), got {target_sparsity}")
        if scope not in ("layer", "global"):
            raise ValueError(f"pruning scope must be 'layer' or 'global', got {scope!r}")
        self.scope = scope
        self.target = float(target_sparsity)
        self.begin_step, self.end_step = int(begin_step), max(int(end_step), int(begin_step) + 1)
        self.frequency, self.power, self.min_size = max(1, int(frequency)), int(power), int(min_size)
        self.step = 0
        self.masks: dict[int, np.ndarray] = {}
        self.current = 0.0

    def _targets(self):
        # a Distiller (pruning while distilling) holds the teacher too: only its student is pruned
        return prunable_kernels(getattr(self.model, "student", self.model), self.min_size)

    def on_train_begin(self, logs=None):
        for _, k in self._targets():
            self.masks.setdefault(id(k), np.ones(k.shape, dtype=np.float32))

    def _update_masks(self):
        self.current = polynomial_sparsity(self.step, self.target, self.begin_step, self.end_step,
                                           power=self.power)
        targets = self._targets()
        if self.scope == "global":  # one magnitude threshold over all kernels: small layers keep more
            ws = [np.asarray(k.numpy()) for _, k in targets]
            flat = magnitude_mask(np.concatenate([w.reshape(-1) for w in ws]), self.current)
            ends = np.cumsum([w.size for w in ws])
            for (_, k), w, part in zip(targets, ws, np.split(flat, ends[:-1])):
                self.masks[id(k)] = part.reshape(w.shape)
            return
        for _, k in targets:
            self.masks[id(k)] = magnitude_mask(np.asarray(k.numpy()), self.current)

    def apply_masks(self):
        for _, k in self._targets():
            m = self.masks.get(id(k))
            if m is not None:
                k.assign(np.asarray(k.numpy()) * m)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step >= self.begin_step and (self.step % self.frequency == 0 or self.step == self.end_step
                                             or self.step == self.begin_step):
            if self.step <= self.end_step:
                self._update_masks()
        self.apply_masks()

    def on_train_end(self, logs=None):
        self.apply_masks()


def sparsity(model) -> dict[str, float]:
    """{layer name: fraction of exact zeros in its kernel} for every prunable layer, plus 'total'."""
    out, z, n = {}, 0, 0
    for layer, k in prunable_kernels(model):
        w = np.asarray(k.numpy())
        out[layer.name] = float(np.mean(w == 0))
        z += int(np.sum(w == 0))
        n += w.size
    out["total"] = z / n if n else 0.0
    return out


def adam(lr: float, final_lr: float | None = None, steps: int = 1):
    """Adam at a constant lr, or cosine-decayed from lr to final_lr over `steps` batches (a low final
    learning rate lets a pruned model settle into its masks)."""
    if final_lr is None or final_lr >= lr:
        return keras.optimizers.Adam(lr)
    if not final_lr >= 0:
        raise ValueError(f"final learning rate must be >= 0, got {final_lr}")
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, max(1, int(steps)),
                                                                        alpha=final_lr / lr))


def prune_magnitude(model, x, y, target_sparsity: float = 0.75, epochs: int = 20, lr: float = 1e-3,
                    batch_size: int = 32, prune_fraction: float = 0.7, frequency: int = 10, callbacks=(),
                    verbose: int = 0, loss=None, final_lr: float | None = None, power: int = 3,
                    scope: str = "layer", teacher=None, temperature: float = 4.0, alpha: float = 0.1):
    """Fine-tunes `model` (a trained classifier with logits output) while pruning it to target_sparsity.

    The sparsity ramps up over the first prune_fraction of the steps (polynomial schedule of `power`); the
    rest fine-tunes with the final masks. final_lr: cosine-decay the learning rate from lr to it over the
    whole run. scope "layer": every prunable kernel ends with exactly round(s * size) zeros; "global": one
    magnitude threshold over all kernels (round(s * total) zeros in all). teacher: fine-tune by distillation
    from it (e.g. the unpruned model) instead of on the labels alone. Returns (model, callback).
    """
    steps = epochs * int(np.ceil(len(x) / batch_size))
    cb = MagnitudePruning(target_sparsity, end_step=max(1, int(steps * prune_fraction)), frequency=frequency,
                          power=power, scope=scope)
    opt = adam(lr, final_lr, steps)
    if teacher is not None:
        from .distill import distill

        distill(teacher, model, x, y, epochs=epochs, temperature=temperature, alpha=alpha, batch_size=batch_size,
                callbacks=[cb] + list(callbacks), verbose=verbose, optimizer=opt)
        return model, cb
    model.compile(optimizer=opt,
                  loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=not _probs(model)),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose,
              callbacks=[cb] + list(callbacks))
    return model, cb


def _probs(model) -> bool:
    from .distill import outputs_probabilities

    return outputs_probabilities(model)


# ---------------------------------------------------------------------------------------------
# Structured pruning

_WEIGHTED = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_PASS = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.AveragePooling1D,
         keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
         keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.Dropout,
         keras.layers.ReLU, keras.layers.Activation, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
         keras.layers.GaussianNoise)


def _units(layer) -> int:
    return int(layer.units if isinstance(layer, keras.layers.Dense) else layer.filters)


def _with_units(layer, n: int):
    cfg = layer.get_config()
    cfg["units" if isinstance(layer, keras.layers.Dense) else "filters"] = int(n)
    return layer.__class__.from_config(cfg)


def unit_importance(model, x=None) -> dict[str, np.ndarray]:
    """Importance of each output unit of every Dense/Conv layer: the L2 norm of its incoming weights,
    times its mean |activation| on x when calibration data is given."""
    imp = {}
    layers = [l for l in model.layers if isinstance(l, _WEIGHTED)]
    acts = {}
    if x is not None and layers:
        probe = keras.Model(model.inputs, [l.output for l in layers])
        outs = probe.predict(x[:512], verbose=0, batch_size=128)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for l, o in zip(layers, outs):
            acts[l.name] = np.mean(np.abs(o.reshape(-1, o.shape[-1])), axis=0)
    for l in layers:
        w = np.asarray(l.kernel.numpy())
        norm = np.sqrt(np.sum(w.reshape(-1, w.shape[-1]) ** 2, axis=0))
        imp[l.name] = norm * (acts[l.name] + 1e-8) if l.name in acts else norm
    return imp


def prune_structured(model, fraction: float = 0.5, x=None, keep_min: int = 2, per_layer: dict | None = None):
    """A smaller copy of a Sequential model: the `fraction` least important units of every Dense/Conv
    layer except the output layer are removed (their outgoing weights too), other weights are copied.

    per_layer: {layer name: fraction} overrides. Returns the new (uncompiled) model; fine-tune it.
    Raises ValueError for models it cannot rewrite (non-Sequential, Reshape after a pruned layer, ...).
    """
    if not isinstance(model, keras.Sequential):
        raise ValueError("structured pruning rewrites Sequential models only; this is a "
                         f"{type(model).__name__}")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"structured pruning fraction must be in [0, 1), got {fraction}")
    per_layer = per_layer or {}
    imp = unit_importance(model, x)
    weighted = [l for l in model.layers if isinstance(l, _WEIGHTED)]
    if not weighted:
        raise ValueError("the model has no Dense or Conv layers to prune")
    last = weighted[-1]
    new_layers, weights = [], []
    keep = None  # indices of the channels still flowing out of the previous layer (None: all)
    for layer in model.layers:
        w = [np.asarray(v) for v in layer.get_weights()]
        if isinstance(layer, _WEIGHTED):
            if keep is not None:  # drop the inputs that were removed upstream (input axis is -2)
                w[0] = np.take(w[0], keep, axis=-2)
            n = _units(layer)
            if layer is not last:
                f = per_layer.get(layer.name, fraction)
                n_keep = max(keep_min, min(n, int(round(n * (1.0 - f)))))
                out_keep = np.sort(np.argsort(-imp[layer.name], kind="stable")[:n_keep])
                w[0] = np.take(w[0], out_keep, axis=-1)
                if len(w) > 1:
                    w[1] = w[1][out_keep]
                keep = out_keep
                new_layers.append(_with_units(layer, n_keep))
            else:
                keep = None
                new_layers.append(layer.__class__.from_config(layer.get_config()))
        elif isinstance(layer, _DEPTHWISE):
            if keep is not None:
                mult = int(layer.depth_multiplier)
                w[0] = np.take(w[0], keep, axis=-2)
                if len(w) > 1:
                    c = w[1].shape[0] // mult
                    w[1] = w[1].reshape(c, mult)[keep].reshape(-1)
                if mult > 1:
                    keep = np.array([k * mult + j for k in keep for j in range(mult)])
            new_layers.append(layer.__class__.from_config(layer.get_config()))
        elif isinstance(layer, keras.layers.BatchNormalization):
            if keep is not None:
                w = [v[keep] for v in w]
            new_layers.append(layer.__class__.from_config(layer.get_config()))
        elif isinstance(layer, keras.layers.Flatten):
            if keep is not None:
                shape = tuple(int(d) for d in layer.input.shape[1:])
                c = shape[-1]
                positions = int(np.prod(shape[:-1]))
                keep = np.array([p * c + k for p in range(positions) for k in keep])
            new_layers.append(layer.__class__.from_config(layer.get_config()))
        elif isinstance(layer, _PASS):
            new_layers.append(layer.__class__.from_config(layer.get_config()))
        else:
            if keep is not None:
                raise ValueError(f"structured pruning cannot propagate removed channels through "
                                 f"{type(layer).__name__} layer '{layer.name}'")
            new_layers.append(layer.__class__.from_config(layer.get_config()))
        weights.append(w)
    in_shape = tuple(model.inputs[0].shape)
    small = keras.Sequential([keras.Input(shape=in_shape[1:], batch_size=in_shape[0])] + new_layers,
                             name=f"{model.name}_structured")
    for layer, w in zip(small.layers, weights):
        if w:
            layer.set_weights(w)
    return small


def fine_tune(model, x, y, epochs: int = 20, lr: float = 1e-3, batch_size: int = 32, callbacks=(),
              verbose: int = 0, label_smoothing: float = 0.0, final_lr: float | None = None, teacher=None,
              temperature: float = 4.0, alpha: float = 0.1):
    """Compiles (Adam, sparse CE on logits or probabilities, optional label smoothing) and fits.

    final_lr: cosine-decay the learning rate to it. teacher: recover by distillation from it instead (e.g.
    the unpruned model; temperature / alpha as in distill.distill).
    """
    from .pipeline import sparse_ce

    opt = adam(lr, final_lr, epochs * int(np.ceil(len(x) / batch_size)))
    if teacher is not None:
        from .distill import distill

        return distill(teacher, model, x, y, epochs=epochs, temperature=temperature, alpha=alpha, lr=lr,
                       batch_size=batch_size, callbacks=callbacks, verbose=verbose, optimizer=opt)
    model.compile(optimizer=opt, loss=sparse_ce(not _probs(model), label_smoothing), metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose, callbacks=list(callbacks))
    return model


def count_params(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def keras_macs(model) -> dict[str, int]:
    """MACs per weighted layer of a Keras model (one sample), plus 'total'."""
    out = {}
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Dense):
            in_shape = tuple(int(d) for d in layer.input.shape[1:])
            rows = int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1
            out[layer.name] = rows * in_shape[-1] * int(layer.units)
        elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)) and not isinstance(layer, _DEPTHWISE):
            k = layer.kernel.shape  # (*kernel, C_in, C_out)
            positions = int(np.prod([int(d) for d in layer.output.shape[1:-1]]))
            out[layer.name] = positions * int(np.prod(k))
        elif isinstance(layer, _DEPTHWISE):
            k = layer.kernel.shape  # (*kernel, C_in, mult)
            positions = int(np.prod([int(d) for d in layer.output.shape[1:-1]]))
            out[layer.name] = positions * int(np.prod(k))
    out["total"] = sum(out.values())
    return out
