"""digits_teacher: the teacher that labels the drift demo's collected samples (`edgeloop demo loop`, issue 7).

A float CNN (Conv2D 16 - Conv2D 32 - max pool - dense 64 - dropout - dense 10 logits, 38k parameters and
338k MACs: 16x the parameters and 140x the MACs of the 64-32-10 student it teaches) trained on digits_mlp's
training split augmented with every one-pixel translation (including diagonals, zeros shifted in) at a
random contrast 0.5..1 and brightness 0..0.3. It is never deployed: it only relabels what the devices send back, so it may be as large as the
host likes. Not a zoo model (there is no int8 version), hence not `recipe.py`.

    PYTHONPATH=host_tools python models/digits_teacher/teacher.py [--epochs 15] [--seed 0]

writes digits_teacher.keras and results.json next to this file.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
COPIES = 6   # augmented copies of the training split (plus the original)


def translate(x, dy: int, dx: int, contrast: float = 1.0, brightness: float = 0.0):
    """8x8 images (N, 64) or (N, 8, 8[, 1]) in [0, 1] moved dy rows down and dx columns right (zeros enter),
    then x * contrast + brightness, clipped to [0, 1]. Same shape out."""
    x = np.asarray(x, np.float32)
    im = x.reshape(-1, 8, 8)
    out = np.zeros_like(im)
    out[:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)] = \
        im[:, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)]
    return np.clip(out * contrast + brightness, 0.0, 1.0).reshape(x.shape)


def augment(x, y, copies: int = COPIES, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs, ys = [x], [y]
    for _ in range(copies):
        d = rng.integers(-1, 2, size=(len(x), 2))
        c = rng.uniform(0.5, 1.0, len(x)).astype(np.float32)
        b = rng.uniform(0.0, 0.3, len(x)).astype(np.float32)
        xa = np.empty_like(x)
        for (dy, dx) in {(int(a), int(b_)) for a, b_ in d}:
            sel = (d[:, 0] == dy) & (d[:, 1] == dx)
            xa[sel] = translate(x[sel], dy, dx)
        xa = np.clip(xa * c[:, None] + b[:, None], 0.0, 1.0)
        xs.append(xa)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def build_model():
    import keras

    L = keras.layers
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        L.Conv2D(16, 3, padding="same", activation="relu"),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(64, activation="relu"),
        L.Dropout(0.3),
        L.Dense(10),
    ], name="digits_teacher")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)

    from edgeloop_host import train as T
    from edgeloop_host import zoo

    T.tf()
    import keras

    keras.utils.set_random_seed(args.seed)
    x_tr, y_tr, x_te, y_te = zoo.recipe("digits_mlp").load_data()
    xa, ya = augment(x_tr, y_tr, seed=args.seed)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    t0 = time.time()
    model.fit(xa.reshape(-1, 8, 8, 1), ya, epochs=args.epochs, batch_size=64, shuffle=True, verbose=0)
    t_train = time.time() - t0

    def acc(x):
        p = model.predict(np.asarray(x).reshape(-1, 8, 8, 1), verbose=0, batch_size=256)
        return round(float(np.mean(np.argmax(p, axis=1) == y_te)), 4)

    results = {"model": "digits_teacher", "parameters": int(model.count_params()),
               "train_samples": int(len(xa)), "epochs": args.epochs, "seed": args.seed,
               "test_accuracy": {"original": acc(x_te)}, "train_seconds": round(t_train, 1)}
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                results["test_accuracy"][f"translated dy={dy} dx={dx}"] = acc(translate(x_te, dy, dx))
    results["test_accuracy"]["contrast 0.6, brightness 0.3"] = acc(translate(x_te, 0, 0, 0.6, 0.3))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from edgeloop_host.zoo import save_keras

    save_keras(model, out / "digits_teacher.keras")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
