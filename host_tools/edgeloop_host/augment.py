"""Input augmentation for small image data sets: random affine jitter and mixup (numpy + scipy only).

Distillation on a small data set pays when the student sees the teacher's outputs on many more inputs
than the training set holds: a transfer set of jittered copies and mixup blends of the training images.

    from edgeloop_host.augment import transfer_set
    x_t, y_t = transfer_set(x_train.reshape(-1, 8, 8), y_train, copies=10, mixup=0.5, seed=0)
"""
from __future__ import annotations

import numpy as np


def affine_jitter(images, rng, rotate_deg: float = 10.0, scale: float = 0.1, shear: float = 0.1,
                  shift: float = 0.8, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Each (H, W) image of `images` (N, H, W) warped by its own random affine map about the image centre:
    rotation up to +-rotate_deg, zoom 1 +- scale, shear up to +-shear, shift up to +-shift pixels; bilinear,
    zero outside, clipped to [lo, hi]."""
    from scipy.ndimage import affine_transform

    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"affine_jitter needs images of shape (N, H, W), got {x.shape}")
    n, h, w = x.shape
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    out = np.empty_like(x)
    a = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg, n))
    z = 1.0 + rng.uniform(-scale, scale, n)
    s = rng.uniform(-shear, shear, n)
    d = rng.uniform(-shift, shift, (n, 2))
    for i in range(n):
        c, si = np.cos(a[i]), np.sin(a[i])
        # output -> input coordinates: rotate, shear, zoom about the centre, then shift
        m = np.array([[c, -si], [si, c]]) @ np.array([[1.0, s[i]], [0.0, 1.0]]) / z[i]
        offset = centre - m @ centre + d[i]
        out[i] = affine_transform(x[i], m, offset=offset, order=1, mode="constant", cval=0.0)
    return np.clip(out, lo, hi)


def mixup(x, rng, concentration: float = 0.4):
    """(blends, i, j, lam): x[i] * lam + x[j] * (1 - lam) for a random pairing, lam ~ Beta(c, c) folded to
    >= 0.5 (so x[i] dominates and y[i] is the blend's majority label)."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    i, j = np.arange(n), rng.permutation(n)
    lam = rng.beta(concentration, concentration, n).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    shape = (n,) + (1,) * (x.ndim - 1)
    return x[i] * lam.reshape(shape) + x[j] * (1.0 - lam).reshape(shape), i, j, lam


def transfer_set(images, y, copies: int = 10, mixup_fraction: float = 0.0, seed: int = 0, **jitter):
    """`copies` jittered copies of (N, H, W) images (the first copy is the originals), then mixup blends of
    those replacing a `mixup_fraction` of them. Returns (x, y) with y the (majority) integer label.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    if not 0.0 <= mixup_fraction <= 1.0:
        raise ValueError(f"mixup_fraction must be in [0, 1], got {mixup_fraction}")
    rng = np.random.default_rng(seed)
    x0 = np.asarray(images, dtype=np.float32)
    y0 = np.asarray(y)
    xs = [x0] + [affine_jitter(x0, rng, **jitter) for _ in range(copies - 1)]
    x, yy = np.concatenate(xs), np.tile(y0, copies)
    k = int(round(mixup_fraction * len(x)))
    if k:
        pick = rng.choice(len(x), k, replace=False)
        blends, i, _, _ = mixup(x[pick], rng)
        x[pick] = blends
        yy[pick] = yy[pick][i]
    return x, yy
