"""User data files for `edgeloop train|distill|prune|quantize`, checked before any training starts.

A data set is an `.npz` file with

    x_train  float array (N, *sample_shape)          required
    y_train  integer class labels (N,), 0..C-1        required for train / distill / prune
    x_test, y_test                                    optional (otherwise 20% of train is held out,
                                                      stratified, fixed seed)
    labels   array of C class names                   optional

A representative data set for `edgeloop quantize` may also be a plain `.npy` of float samples.
Every problem raises DataError with a one-line message naming the file and the problem.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np


class DataError(ValueError):
    """A problem with a user's data file (one line, names the file)."""


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)
    source: str = "<arrays>"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        if self.labels:
            return len(self.labels)
        ys = [y for y in (self.y_train, self.y_test) if y is not None]
        return int(max(int(y.max()) for y in ys)) + 1 if ys else 0


def check_features(x, where: str, what: str = "x") -> np.ndarray:
    """Float32 copy of x after checking it is numeric, has a sample axis and holds no NaN/inf."""
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{where}: {what} must be a numeric array, got dtype {x.dtype}")
    if x.ndim < 2:
        raise DataError(f"{where}: {what} must have shape (N, *sample_shape), got {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: {what} has no samples")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.unique(np.nonzero(bad.reshape(len(x), -1))[0])
        kind = "NaN" if np.isnan(x).any() else "infinite"
        raise DataError(f"{where}: {what} contains {int(bad.sum())} {kind} values in {len(rows)} samples "
                        f"(first at sample {int(rows[0])}); clean or drop them before training")
    return x


def check_labels(y, n: int, where: str, what: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(f"{where}: {what} looks one-hot encoded {y.shape}; give integer class ids (N,)")
    y = y.reshape(-1) if y.ndim == 2 else y
    if y.ndim != 1:
        raise DataError(f"{where}: {what} must have shape (N,), got {y.shape}")
    if len(y) != n:
        raise DataError(f"{where}: {what} has {len(y)} labels but there are {n} samples")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise DataError(f"{where}: {what} contains NaN or infinite labels")
        if not np.all(y == np.round(y)):
            raise DataError(f"{where}: {what} must be integer class ids, got non-integer floats")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {what} must be integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise DataError(f"{where}: {what} has negative class id {int(y.min())}")
    return y


def _open_npz(path: str):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz/.npy file ({e})") from None


def load_dataset(path: str, need_labels: bool = True, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Loads and checks an .npz data set (see the module docstring)."""
    f = _open_npz(path)
    if isinstance(f, np.ndarray):
        if need_labels:
            raise DataError(f"{path}: a labelled data set must be an .npz with x_train and y_train arrays")
        return Dataset(check_features(f, path), None, source=path)
    keys = set(f.files)
    xk = "x_train" if "x_train" in keys else ("x" if "x" in keys else None)
    if xk is None:
        raise DataError(f"{path}: no 'x_train' array (found: {', '.join(sorted(keys)) or 'none'})")
    x = check_features(f[xk], path, xk)
    yk = "y_train" if xk == "x_train" else "y"
    y = None
    if yk in keys:
        y = check_labels(f[yk], len(x), path, yk)
    elif need_labels:
        raise DataError(f"{path}: no '{yk}' array with the class labels")
    x_te = y_te = None
    if "x_test" in keys:
        x_te = check_features(f["x_test"], path, "x_test")
        if x_te.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: x_test samples have shape {x_te.shape[1:]}, x_train samples {x.shape[1:]}")
        if "y_test" in keys:
            y_te = check_labels(f["y_test"], len(x_te), path, "y_test")
        elif need_labels:
            raise DataError(f"{path}: x_test is given without y_test")
    labels = [str(s) for s in f["labels"].tolist()] if "labels" in keys else []
    ds = Dataset(x, y, x_te, y_te, labels, source=path)
    if y is not None and labels:
        top = max(int(y.max()), int(y_te.max()) if y_te is not None else 0)
        if top >= len(labels):
            raise DataError(f"{path}: class id {top} but only {len(labels)} labels")
    if x_te is None and y is not None and test_fraction > 0:
        ds = holdout(ds, test_fraction, seed)
    return ds


def holdout(ds: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """Splits a stratified test set off the training set (used when the file has no test split)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(ds.y_train)
    strat = ds.y_train if counts[counts > 0].min() >= 2 else None
    x_tr, x_te, y_tr, y_te = train_test_split(ds.x_train, ds.y_train, test_size=fraction, random_state=seed,
                                              stratify=strat)
    return Dataset(x_tr, y_tr, x_te, y_te, ds.labels, ds.source)


def load_samples(path: str) -> np.ndarray:
    """Representative float samples from a .npy, or the x_train of an .npz."""
    f = _open_npz(path)
    if isinstance(f, np.ndarray):
        return check_features(f, path)
    return load_dataset(path, need_labels=False, test_fraction=0).x_train


def check_model_input(x: np.ndarray, model_shape, where: str, what: str = "samples") -> np.ndarray:
    """x reshaped to the model's sample shape when only the layout differs (e.g. (8, 8) vs (64,));
    a different number of features is an error naming both shapes."""
    want = tuple(int(d) for d in model_shape)
    got = tuple(x.shape[1:])
    if got == want:
        return x
    if int(np.prod(got)) == int(np.prod(want)):
        return x.reshape((len(x),) + want)
    raise DataError(f"{where}: {what} have shape {got} ({int(np.prod(got))} values) but the model expects "
                    f"{want} ({int(np.prod(want))} values)")
