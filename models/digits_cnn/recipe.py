"""digits_cnn: 8x8 handwritten digits (scikit-learn's bundled load_digits) with a small CNN.

Conv2D 3x3 (16) - depthwise 3x3 + pointwise 1x1 (24) - max pool 2x2 - depthwise 3x3 + pointwise 1x1 (32) -
average pool 2x2 - global average pool - dense 10 logits; trained with label smoothing 0.1 (keeps the
int8 logit step small). Same split as digits_mlp. The int8 graph is CONV_2D, DEPTHWISE_CONV_2D,
MAX_POOL_2D, AVERAGE_POOL_2D, MEAN and FULLY_CONNECTED.

    PYTHONPATH=host_tools python models/digits_cnn/recipe.py [--epochs 100] [--quick] [--out DIR]
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL_ID = 2
LABELS = [str(d) for d in range(10)]
PREPROCESS = {"description": "8x8 pixel intensities 0..16 divided by 16, as an 8x8x1 image",
              "offset": 0.0, "multiplier": 0.0625}
LABEL_SMOOTHING = 0.1


def load_data():
    """(x_train, y_train, x_test, y_test): (N, 8, 8, 1) float32 in [0, 1]; digits_mlp's split."""
    from edgeloop_host import zoo

    x_tr, y_tr, x_te, y_te = zoo.recipe("digits_mlp").load_data()
    return x_tr.reshape(-1, 8, 8, 1), y_tr, x_te.reshape(-1, 8, 8, 1), y_te


def report_data() -> dict:
    _, _, x_te, y_te = load_data()
    return {"x_test": x_te, "y_test": y_te, "labels": LABELS, "task": "classification"}


def build_model(batch_size=None, filters=(16, 24, 32)):
    import keras

    L = keras.layers
    f1, f2, f3 = filters
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1), batch_size=batch_size),
        L.Conv2D(f1, 3, padding="same", activation="relu"),
        L.DepthwiseConv2D(3, padding="same", activation="relu"),
        L.Conv2D(f2, 1, activation="relu"),
        L.MaxPooling2D(2),
        L.DepthwiseConv2D(3, padding="same", activation="relu"),
        L.Conv2D(f3, 1, activation="relu"),
        L.AveragePooling2D(2),
        L.GlobalAveragePooling2D(),
        L.Dense(10),
    ], name="digits_cnn")


def train(data=None, epochs=100, seed=0, verbose=0, filters=(16, 24, 32)):
    from edgeloop_host import train as T

    T.tf()
    import keras

    keras.utils.set_random_seed(seed)
    x_tr, y_tr, _, _ = data or load_data()
    model = build_model(filters=filters)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=LABEL_SMOOTHING),
                  metrics=["categorical_accuracy"])
    model.fit(x_tr, keras.utils.to_categorical(y_tr, 10), epochs=epochs, batch_size=32, shuffle=True,
              verbose=verbose)
    return model


def main(argv=None):
    from edgeloop_host import zoo

    args = zoo.recipe_args(__doc__, argv, epochs=100, quick_epochs=3, here=HERE)
    epochs = args.epochs

    from edgeloop_host.pipeline import accuracy

    t0 = time.time()
    data = load_data()
    x_tr, y_tr, x_te, y_te = data
    model = train(data, epochs=epochs, seed=args.seed)
    t_train = time.time() - t0
    ex = zoo.export(model, x_tr, x_te, args.out, "digits_cnn", MODEL_ID, labels=LABELS, preprocess=PREPROCESS)
    y_tflm = ex["y_tflm"]
    results = {
        "model": "digits_cnn",
        "architecture": "Conv2D 16, depthwise+pointwise 24, maxpool, depthwise+pointwise 32, avgpool, GAP, "
                        "dense 10 logits; per-channel int8",
        "dataset": "sklearn load_digits as 8x8x1 images, digits_mlp's split",
        "n_train": int(len(x_tr)), "n_test": int(len(x_te)), "epochs": epochs, "seed": args.seed,
        "float_accuracy": round(accuracy(model, x_te, y_te), 4),
        "int8_tflm_accuracy": round(float(np.mean(np.argmax(y_tflm.reshape(len(y_tflm), -1), axis=1) == y_te)), 4),
        "reference_matches_tflm": ex["bit_exact"],
        "tflite_bytes": len(ex["tflite"]), "elm_bytes": len(ex["elm"]), "arena_bytes": ex["graph"].arena_size,
        "train_seconds": round(t_train, 1),
    }
    Path(args.out, "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
