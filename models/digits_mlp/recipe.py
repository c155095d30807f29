"""digits_mlp: 8x8 handwritten digits (scikit-learn's bundled load_digits), MLP 64-32-10.

The int8 graph is FULLY_CONNECTED only: the model ends with logits (no softmax); argmax is the class.

    PYTHONPATH=host_tools python models/digits_mlp/recipe.py [--epochs 40] [--seed 0]

writes digits_mlp.tflite / .elm / .keras and results.json next to this file (`edgeloop zoo train digits_mlp`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TFLITE_PATH = HERE / "digits_mlp.tflite"
RESULTS_PATH = HERE / "results.json"
LABELS = [str(d) for d in range(10)]
MODEL_ID = 1
PREPROCESS = {"description": "8x8 pixel intensities 0..16 divided by 16", "offset": 0.0, "multiplier": 0.0625}
SPLIT_SEED = 0
TEST_SIZE = 0.25


def load_data():
    """(x_train, y_train, x_test, y_test): float32 features in [0, 1] (pixels / 16), int64 labels.

    Fixed stratified split (25% test, random_state=0): 1347 train / 450 test samples.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    return x_tr, y_tr, x_te, y_te


def report_data() -> dict:
    """Test split for `edgeloop report digits_mlp`."""
    _, _, x_te, y_te = load_data()
    return {"x_test": x_te, "y_test": y_te, "labels": LABELS, "task": "classification"}


def build_model(batch_size=1, hidden=32):
    import keras

    return keras.Sequential([
        keras.Input(shape=(64,), batch_size=batch_size),
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dense(10),  # logits
    ], name="digits_mlp")


def train(epochs=40, seed=0, verbose=0):
    """Trains in float (dynamic batch) and returns the weights in a batch-1 model ready to convert."""
    from edgeloop_host import train as T

    T.tf()
    import keras

    keras.utils.set_random_seed(seed)
    x_tr, y_tr, _, _ = load_data()
    model = build_model(batch_size=None)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=32, shuffle=True, verbose=verbose)
    return T.with_batch_size_1(model, build_model)


def float_accuracy(model, x, y) -> float:
    """Float accuracy of a (batch-1) Keras model, one sample per call."""
    logits = np.concatenate([np.asarray(model(x[i:i + 1], training=False)) for i in range(len(x))])
    return float(np.mean(np.argmax(logits, axis=1) == y))


def main(argv=None):
    from edgeloop_host import zoo

    args = zoo.recipe_args(__doc__, argv, epochs=40, quick_epochs=3, here=HERE)
    epochs = args.epochs

    t0 = time.time()
    model = train(epochs=epochs, seed=args.seed)
    t_train = time.time() - t0
    x_tr, y_tr, x_te, y_te = load_data()
    ex = zoo.export(model, x_tr, x_te, args.out, "digits_mlp", MODEL_ID, labels=LABELS, preprocess=PREPROCESS,
                    batch1=lambda m: m)  # train() already returns the batch-1 model
    y_tflm = ex["y_tflm"]
    results = {
        "model": "digits_mlp",
        "architecture": "64-32(relu)-10 logits, per-channel int8",
        "dataset": f"sklearn load_digits, stratified split test_size={TEST_SIZE} random_state={SPLIT_SEED}",
        "n_train": int(len(x_tr)), "n_test": int(len(x_te)),
        "epochs": epochs, "seed": args.seed,
        "float_accuracy": round(float_accuracy(model, x_te, y_te), 4),
        "int8_tflm_accuracy": round(float(np.mean(np.argmax(y_tflm, axis=1) == y_te)), 4),
        "reference_matches_tflm": ex["bit_exact"],
        "tflite_bytes": len(ex["tflite"]),
        "elm_bytes": len(ex["elm"]),
        "arena_bytes": ex["graph"].arena_size,
        "train_seconds": round(t_train, 1),
    }
    Path(args.out, "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
