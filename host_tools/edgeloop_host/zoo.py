"""The model zoo in models/: each entry is a folder with recipe.py (load_data, train, ...) and artifacts."""
from __future__ import annotations

import importlib.util
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def recipe(name: str):
    """Import models/<name>/recipe.py as a module."""
    path = MODELS_DIR / name / "recipe.py"
    if not path.exists():
        known = sorted(p.name for p in MODELS_DIR.iterdir() if (p / "recipe.py").exists())
        raise ValueError(f"no zoo model {name!r} (known: {', '.join(known)})")
    spec = importlib.util.spec_from_file_location(f"edgeloop_zoo_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def recipe_args(doc: str, argv, epochs: int, quick_epochs: int, here: Path):
    """The command line every recipe takes: --epochs, --seed, --quick (a few epochs: checks the recipe
    runs), --out (artifact directory). Returns the parsed arguments with .epochs already resolved."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help=f"{quick_epochs} epochs (checks the recipe runs)")
    ap.add_argument("--out", default=str(here), help="artifact directory (default: next to the recipe)")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = quick_epochs
    return args


def names() -> list[str]:
    """Zoo model names (folders of models/ with a recipe.py), in model-id order when known."""
    found = [p.name for p in MODELS_DIR.iterdir() if (p / "recipe.py").exists()]
    order = {n: i for i, n in enumerate(("digits_mlp", "digits_cnn", "har_conv1d", "vibration_ae", "kws_dscnn"))}
    return sorted(found, key=lambda n: (order.get(n, 99), n))


def summary(name: str) -> str:
    """One line from the recorded results.json (architecture and int8 metric)."""
    import json

    path = MODELS_DIR / name / "results.json"
    if not path.exists():
        return "(not trained yet)"
    r = json.loads(path.read_text())
    metric = ("AUC {:.4f}".format(r["int8_auc"]) if "int8_auc" in r
              else "int8 accuracy {:.4f}".format(r.get("int8_tflm_accuracy", float("nan"))))
    return f"{r.get('architecture', '')}; {metric}; blob {r.get('elm_bytes', '?')} bytes"


def train_all(names_: list[str], quick: bool = False, out: str | None = None,
              max_seconds: float | None = None) -> int:
    """Retrains zoo models end to end (recipe.main), one after the other, and prints a summary line per entry
    (seconds, float vs int8 metric, bit-exact with TFLM).

    quick: few epochs, into a temporary directory unless `out` is given (the committed artifacts are not
    touched). out: write <out>/<name>/ instead of models/<name>/. results.json gains entry_seconds (data,
    training, conversion, TFLM and reference runs). max_seconds: an entry that takes longer is a failure.
    Returns 0 if every recipe's int8 model is bit-exact with TFLM (and within max_seconds), else 1.
    """
    import json
    import os
    import sys
    import tempfile
    import time

    # a 2-core machine shared with other work: TensorFlow's default pools would oversubscribe it
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    ok, rows = True, []
    for n in names_:
        t0 = time.time()
        print(f"== zoo: {n}{' (quick)' if quick else ''}", file=sys.stderr, flush=True)
        rec = recipe(n)
        if quick and out is None:
            with tempfile.TemporaryDirectory() as d:
                r = rec.main(["--quick", "--out", d])
        else:
            d = MODELS_DIR / n if out is None else Path(out) / n
            d.mkdir(parents=True, exist_ok=True)
            r = rec.main(["--quick"] * quick + ["--out", str(d)])
        dt = time.time() - t0
        if not (quick and out is None):
            r["entry_seconds"] = round(dt, 1)
            (d / "results.json").write_text(json.dumps(r, indent=2) + "\n")
        exact = bool(r.get("reference_matches_tflm", False))
        slow = max_seconds is not None and dt > max_seconds
        ok &= exact and not slow
        metric = (f"AUC float {r['float_auc']:.4f} int8 {r['int8_auc']:.4f}" if "int8_auc" in r else
                  f"accuracy float {r.get('float_accuracy', float('nan')):.4f} "
                  f"int8 {r.get('int8_tflm_accuracy', float('nan')):.4f}")
        rows.append(f"{n:<14} {dt:6.1f} s  {metric}  bit-exact {'yes' if exact else 'NO'}"
                    + (f"  SLOWER THAN {max_seconds:.0f} s" if slow else ""))
        print(f"== zoo: {n} done in {dt:.0f}s", file=sys.stderr, flush=True)
    print("\n".join(rows), flush=True)
    return 0 if ok else 1


def export(model, rep_x, x_test, out_dir, name: str, model_id: int, labels=None, preprocess=None,
           task: str = "classification", anomaly=None, anomaly_fn=None, meta_extra=None, per_channel: bool = True,
           batch1=None, calib_x=None):
    """Quantizes a trained zoo model, converts it with its META and a real test sample as self-test, runs the
    test set through TFLM (the oracle) and the numpy reference, and writes <name>.tflite/.elm/.keras.

    rep_x: training inputs (calibration and META train_stats); calib_x: other calibration samples if given.
    anomaly_fn(graph, tflite) -> dict goes into META "anomaly" (e.g. a threshold chosen on int8 validation
    outputs; never on the test set).
    Returns a dict: tflite, elm (bytes), graph, xq (int8 test inputs), y_tflm, y_ref, bit_exact, meta.
    """
    import numpy as np

    from . import blob, oracle, reference
    from . import train as T
    from .convert import convert
    from .metadata import build_meta

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if batch1 is None:
        from .pipeline import batch1 as _b1

        batch1 = _b1
    m1 = batch1(model)
    tfl = T.quantize_keras(m1, rep_x if calib_x is None else calib_x, per_channel=per_channel)
    from .tflite_import import load_tflite

    g0 = load_tflite(tfl)
    xq = T.quantize_input(x_test, g0.input().scale, g0.input().zero_point)
    y_tflm = oracle.tflm_run(tfl, xq)
    if anomaly_fn is not None:  # e.g. a threshold chosen on the int8 outputs the device will see
        anomaly = anomaly_fn(g0, tfl)
    meta = build_meta(name, g0, rep_x, labels=labels, preprocess=preprocess, task=task, anomaly=anomaly,
                      extra=meta_extra)
    elm = convert(tfl, None, model_id=model_id, model_version=1, meta=meta, self_test_sample=xq[0])
    (out_dir / f"{name}.tflite").write_bytes(tfl)
    (out_dir / f"{name}.elm").write_bytes(elm)
    save_keras(model, out_dir / f"{name}.keras")
    graph = blob.decode(elm)
    y_ref = reference.run(graph, xq).reshape(y_tflm.shape)
    return {"tflite": tfl, "elm": elm, "graph": graph, "xq": xq, "y_tflm": y_tflm, "y_ref": y_ref,
            "bit_exact": bool(np.array_equal(y_ref, y_tflm)), "meta": meta}


def save_keras(model, path) -> None:
    """Saves the float model without optimizer state (a compiled model's .keras also stores Adam's moments)."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.save(path)
