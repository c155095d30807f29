"""Host pipeline (issue 4): data checks, distillation, pruning, quantization with META, the zoo, reports, CLI.

Kept small: every training here runs a few epochs on scikit-learn's digits.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgeloop_host import blob, oracle, reference, zoo
from edgeloop_host import train as T

ZOO = zoo.MODELS_DIR


@pytest.fixture(scope="module")
def digits():
    return zoo.recipe("digits_mlp").load_data()


@pytest.fixture(scope="module")
def P():
    T.tf().get_logger().setLevel("ERROR")
    from edgeloop_host import pipeline

    return pipeline


def _run_cli(argv, capsys):
    from edgeloop_host.cli import main

    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ---------------------------------------------------------------------------------------------
# The zoo: committed artifacts and a retrain from scratch


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn", "har_conv1d", "vibration_ae"])
def test_committed_zoo_model(name):
    d = ZOO / name
    r = json.loads((d / "results.json").read_text())
    assert r["reference_matches_tflm"] is True
    if "int8_auc" in r:
        assert abs(r["int8_auc"] - r["float_auc"]) <= 0.01
    else:
        assert abs(r["int8_tflm_accuracy"] - r["float_accuracy"]) <= 0.005 + 1e-9
    elm = (d / f"{name}.elm").read_bytes()
    tfl = (d / f"{name}.tflite").read_bytes()
    assert len(elm) == r["elm_bytes"]
    g = blob.decode(elm)
    meta = g.meta
    assert meta["name"] == name
    assert meta["input"]["scale"] == pytest.approx(g.input().scale)
    assert meta["input"]["zero_point"] == g.input().zero_point
    assert {"description", "offset", "multiplier"} <= set(meta["input"]["preprocess"])
    st = meta["train_stats"]
    assert st["space"] == "int8" and len(st["mean"]) == len(st["std"]) <= 64 and st["n"] == r["n_train"]
    if r.get("int8_auc") is not None:
        assert meta["task"] == "anomaly" and meta["anomaly"]["threshold"] > 0
    else:
        assert len(meta["labels"]) == int(np.prod(g.output().shape))
    # the self-test vector is a real sample and its reference output
    x, y = g.self_test
    np.testing.assert_array_equal(reference.run(g, x.reshape(1, -1)).reshape(-1), y.reshape(-1))
    # bit-exact with TFLM on random int8 inputs too
    xr = np.random.default_rng(0).integers(-128, 128, (64,) + tuple(g.input().shape[1:])).astype(np.int8)
    y_tflm = oracle.tflm_run(tfl, xr)
    np.testing.assert_array_equal(reference.run(g, xr).reshape(y_tflm.shape), y_tflm)


def test_zoo_recipe_retrains_from_scratch(tmp_path, capsys):
    """CI check that a recipe cannot rot: `edgeloop zoo train digits_mlp --quick --out DIR` runs the recipe end
    to end from scratch (3 epochs) through the same path as `zoo train all`, into a temporary directory."""
    rc, out, _ = _run_cli(["zoo", "train", "digits_mlp", "--quick", "--out", str(tmp_path), "--max-seconds", "600"],
                          capsys)
    assert rc == 0
    summary = out.strip().splitlines()[-1]  # after the recipe's results.json echo
    assert summary.startswith("digits_mlp ") and "bit-exact yes" in summary
    d = tmp_path / "digits_mlp"
    r = json.loads((d / "results.json").read_text())
    assert r["epochs"] == 3 and r["reference_matches_tflm"] is True and 0 < r["entry_seconds"] < 600
    assert r["int8_tflm_accuracy"] > 0.5  # 3 epochs: well above chance (0.1)
    for ext in ("elm", "tflite", "keras"):
        assert (d / f"digits_mlp.{ext}").stat().st_size > 0
    elm = (d / "digits_mlp.elm").read_bytes()
    g = blob.decode(elm)
    assert g.meta["labels"] == [str(i) for i in range(10)] and g.self_test is not None
    assert r["elm_bytes"] == len(elm)
    # the committed artifacts were not touched
    assert json.loads((ZOO / "digits_mlp" / "results.json").read_text())["epochs"] == 40
    for argv, msg in ((["zoo", "train", "nope"], "no zoo model 'nope'"),
                      (["zoo", "train", "digits_mlp", "--max-seconds", "0"], "--max-seconds must be > 0")):
        rc, _, err = _run_cli(argv, capsys)
        assert rc == 1 and msg in err, (argv, err)


def test_zoo_names_and_unknown():
    assert zoo.names()[:4] == ["digits_mlp", "digits_cnn", "har_conv1d", "vibration_ae"]
    with pytest.raises(ValueError, match="no zoo model"):
        zoo.recipe("nope")


# ---------------------------------------------------------------------------------------------
# Data checks


def test_load_dataset_errors(tmp_path):
    from edgeloop_host.data import DataError, load_dataset

    with pytest.raises(DataError, match="no such file"):
        load_dataset(str(tmp_path / "missing.npz"))
    x = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    y = np.arange(20) % 2
    cases = {
        "nan": (dict(x_train=np.where(np.arange(80).reshape(20, 4) == 5, np.nan, x), y_train=y), "NaN values in 1 samples"),
        "inf": (dict(x_train=np.where(np.arange(80).reshape(20, 4) == 5, np.inf, x), y_train=y), "infinite"),
        "len": (dict(x_train=x, y_train=y[:10]), "10 labels but there are 20 samples"),
        "onehot": (dict(x_train=x, y_train=np.eye(2)[y]), "one-hot"),
        "nox": (dict(features=x), "no 'x_train'"),
        "noy": (dict(x_train=x), "no 'y_train'"),
        "neg": (dict(x_train=x, y_train=y - 1), "negative class id"),
        "shape": (dict(x_train=x, y_train=y, x_test=x[:, :3], y_test=y), r"x_test samples have shape \(3,\)"),
        "flat": (dict(x_train=x[:, 0], y_train=y), "shape \\(N, \\*sample_shape\\)"),
        "strings": (dict(x_train=np.array([["a"]] * 20), y_train=y), "numeric"),
        "labels": (dict(x_train=x, y_train=y * 3, labels=np.array(["a", "b"])), "only 2 labels"),
    }
    for name, (arrays, msg) in cases.items():
        p = tmp_path / f"{name}.npz"
        np.savez(p, **arrays)
        with pytest.raises(DataError, match=msg):
            load_dataset(str(p))
    p = tmp_path / "bad.npz"
    p.write_bytes(b"not a numpy file")
    with pytest.raises(DataError, match="not a readable"):
        load_dataset(str(p))
    np.savez(tmp_path / "ok.npz", x_train=x, y_train=y)
    ds = load_dataset(str(tmp_path / "ok.npz"))
    assert len(ds.x_train) == 16 and len(ds.x_test) == 4  # 20% held out, stratified


# ---------------------------------------------------------------------------------------------
# Distillation


def test_distiller_trains_student_only(P, digits):
    import keras

    from edgeloop_host.distill import Distiller, distill

    x_tr, y_tr, x_te, y_te = digits
    ds = P.Dataset(x_tr, y_tr, x_te, y_te)
    teacher = P.train_classifier(ds, hidden=(64,), epochs=5, progress=False)
    t_w = [w.copy() for w in teacher.get_weights()]
    student = P.build_classifier((64,), 10, "mlp", (8,))
    s_w0 = [w.copy() for w in student.get_weights()]
    distill(teacher, student, x_tr, y_tr, epochs=3, temperature=4.0, alpha=0.1)
    assert teacher.trainable  # restored
    for a, b in zip(t_w, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(s_w0, student.get_weights()))
    assert P.accuracy(student, x_te, y_te) > 0.3
    # the loss is KL * T^2 (+ alpha * CE); with alpha = 1 it is the hard-label cross-entropy alone
    d = Distiller(student, teacher, temperature=2.0, alpha=1.0)
    logits = student(x_tr[:8])
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y_tr[:8], logits)
    assert float(d.compute_loss(x_tr[:8], y_tr[:8], logits)) == pytest.approx(float(ce), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        Distiller(student, teacher, temperature=0)
    with pytest.raises(ValueError, match="outputs"):
        distill(teacher, P.build_classifier((64,), 5, "mlp", (8,)), x_tr, y_tr, epochs=1)


def test_transfer_set_jitter_and_mixup():
    from edgeloop_host.augment import affine_jitter, mixup, transfer_set

    rng = np.random.default_rng(0)
    img = np.zeros((1, 8, 8), np.float32)
    img[0, 2:6, 3:5] = 1.0
    # no jitter at all is the identity; a jittered copy keeps the range and most of the ink
    same = affine_jitter(img, rng, rotate_deg=0, scale=0, shear=0, shift=0)
    np.testing.assert_allclose(same, img, atol=1e-6)
    j = affine_jitter(np.repeat(img, 50, 0), rng)
    assert j.min() >= 0 and j.max() <= 1 and not np.allclose(j[0], img[0])
    assert np.all(np.abs(j.sum(axis=(1, 2)) - img.sum()) < 0.5 * img.sum())
    x = rng.random((40, 8, 8)).astype(np.float32)
    y = np.arange(40) % 10
    blends, i, k, lam = mixup(x, rng)
    assert np.all(lam >= 0.5) and np.all(lam <= 1)
    np.testing.assert_allclose(blends, x[i] * lam[:, None, None] + x[k] * (1 - lam[:, None, None]), rtol=1e-6)
    xt, yt = transfer_set(x, y, copies=3, mixup_fraction=0.0, seed=1)
    assert xt.shape == (120, 8, 8) and np.array_equal(xt[:40], x) and np.array_equal(yt, np.tile(y, 3))
    xm, ym = transfer_set(x, y, copies=3, mixup_fraction=0.5, seed=1)
    changed = np.any(xm != xt, axis=(1, 2))
    assert 50 <= changed.sum() <= 60  # 60 of the 120 replaced by blends (a few blend an image with itself)
    with pytest.raises(ValueError, match="copies"):
        transfer_set(x, y, copies=0)
    with pytest.raises(ValueError, match="N, H, W"):
        affine_jitter(x.reshape(40, 64), rng)


# ---------------------------------------------------------------------------------------------
# Pruning


def test_cosine_learning_rate_to_final():
    from edgeloop_host.prune import adam

    assert float(adam(1e-3).learning_rate) == pytest.approx(1e-3)
    opt = adam(1e-3, 1e-5, 100)
    for step, lr in ((0, 1e-3), (50, (1e-3 + 1e-5) / 2), (100, 1e-5), (150, 1e-5)):
        opt.iterations.assign(step)
        assert float(opt.learning_rate) == pytest.approx(lr, rel=1e-3)
    with pytest.raises(ValueError, match="final learning rate"):
        adam(1e-3, -1.0, 10)


def test_polynomial_schedule():
    from edgeloop_host.prune import magnitude_mask, polynomial_sparsity

    vals = [polynomial_sparsity(s, 0.75, 0, 100) for s in range(0, 101, 10)]
    assert vals[0] == 0.0 and vals[-1] == pytest.approx(0.75)
    assert all(a <= b for a, b in zip(vals, vals[1:]))
    assert vals[1] > 0.75 * 0.1  # polynomial (power 3): fast at first
    assert polynomial_sparsity(500, 0.75, 0, 100) == pytest.approx(0.75)
    w = np.arange(1, 101, dtype=np.float32).reshape(10, 10) * np.where(np.arange(100) % 2, 1, -1).reshape(10, 10)
    m = magnitude_mask(w, 0.3)
    assert m.sum() == 70 and np.all(m.reshape(-1)[:30] == 0)  # the 30 smallest |w|


def test_magnitude_pruning_reaches_and_keeps_sparsity(P, digits):
    import keras

    from edgeloop_host import prune as PR

    x_tr, y_tr, x_te, y_te = digits
    ds = P.Dataset(x_tr, y_tr, x_te, y_te)
    model = P.train_classifier(ds, hidden=(32,), epochs=8, progress=False)
    dense_acc = P.accuracy(model, x_te, y_te)
    model, cb = PR.prune_magnitude(model, x_tr, y_tr, 0.75, epochs=6, lr=1e-3)
    sp = PR.sparsity(model)
    assert all(v == pytest.approx(0.75, abs=0.002) for v in sp.values())
    zeros = [np.asarray(k.numpy()) == 0 for _, k in PR.prunable_kernels(model)]
    # masks are kept: more training with the callback (schedule finished) does not revive a pruned weight
    model.fit(x_tr, y_tr, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    for z, (_, k) in zip(zeros, PR.prunable_kernels(model)):
        assert np.all(np.asarray(k.numpy())[z] == 0)
    assert P.accuracy(model, x_te, y_te) > dense_acc - 0.1
    # the pruned model quantizes and its int8 weights keep the zeros
    _, elm = P.quantize_model(model, x_tr)
    g = blob.decode(elm)
    w = g.tensors[g.ops[0].tensors[1]].data
    assert np.mean(w == 0) >= 0.74
    with pytest.raises(ValueError, match="sparsity"):
        PR.MagnitudePruning(1.0, end_step=10)
    _ = keras


def test_global_magnitude_pruning_while_distilling(P, digits):
    """scope=global: one threshold over all kernels (75% in total, not per layer); with a teacher the pruning
    callback thins the student only, never the frozen teacher."""
    from edgeloop_host import prune as PR

    x_tr, y_tr, x_te, y_te = digits
    ds = P.Dataset(x_tr, y_tr, x_te, y_te)
    teacher = P.train_classifier(ds, hidden=(64,), epochs=3, progress=False)
    t_w = [w.copy() for w in teacher.get_weights()]
    student = P.train_classifier(ds, hidden=(32,), epochs=3, progress=False)
    PR.prune_magnitude(student, x_tr, y_tr, 0.75, epochs=2, scope="global", teacher=teacher, final_lr=1e-5)
    sp = PR.sparsity(student)
    n = [k.numpy().size for _, k in PR.prunable_kernels(student)]
    assert sp["total"] == pytest.approx(round(0.75 * sum(n)) / sum(n), abs=1e-9)
    assert len({round(v, 3) for k, v in sp.items() if k != "total"}) > 1  # layers end at different sparsities
    for a, b in zip(t_w, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert PR.sparsity(teacher)["total"] < 0.01
    assert P.accuracy(student, x_te, y_te) > 0.5
    with pytest.raises(ValueError, match="scope"):
        PR.MagnitudePruning(0.5, end_step=10, scope="row")


def test_structured_pruning_makes_model_smaller(P, digits):
    import keras

    from edgeloop_host import prune as PR

    x_tr, y_tr, x_te, y_te = digits
    L = keras.layers
    keras.utils.set_random_seed(0)
    conv = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(8, 3, padding="same", activation="relu"),
                             L.DepthwiseConv2D(3, padding="same"), L.BatchNormalization(), L.ReLU(),
                             L.Conv2D(12, 1, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                             L.Dense(16, activation="relu"), L.Dense(10)])
    xi = x_tr.reshape(-1, 8, 8, 1)
    P.compile_classifier(conv)
    conv.fit(xi, y_tr, epochs=2, verbose=0)
    # fraction 0 rebuilds the same function
    same = PR.prune_structured(conv, 0.0)
    np.testing.assert_allclose(same.predict(xi[:16], verbose=0), conv.predict(xi[:16], verbose=0), atol=1e-5)
    small = PR.prune_structured(conv, 0.5, x=xi)
    assert [l.filters for l in small.layers if isinstance(l, L.Conv2D)] == [4, 6]
    assert [l.units for l in small.layers if isinstance(l, L.Dense)] == [8, 10]
    before, after = PR.keras_macs(conv)["total"], PR.keras_macs(small)["total"]
    assert after < 0.5 * before
    assert P.count_params(small) < P.count_params(conv)
    c_w = [w.copy() for w in conv.get_weights()]
    PR.fine_tune(small, xi, y_tr, epochs=2, teacher=conv, final_lr=1e-5)  # recovery by distillation
    assert all(np.array_equal(a, b) for a, b in zip(c_w, conv.get_weights()))
    assert small.predict(xi[:4], verbose=0).shape == (4, 10)
    # the pruned model converts, and the int8 graph really has fewer MACs
    from edgeloop_host.inspect import op_macs

    _, elm_big = P.quantize_model(conv, xi[:100])
    _, elm_small = P.quantize_model(small, xi[:100])
    gb, gs = blob.decode(elm_big), blob.decode(elm_small)
    assert sum(op_macs(gs, o) for o in gs.ops) < 0.5 * sum(op_macs(gb, o) for o in gb.ops)
    assert len(elm_small) < len(elm_big)
    func = keras.Model(conv.inputs, conv.outputs)
    with pytest.raises(ValueError, match="Sequential"):
        PR.prune_structured(func, 0.5)


# ---------------------------------------------------------------------------------------------
# Quantize, report


def test_quantize_model_meta_and_rejections(P, digits):
    import keras

    x_tr, y_tr, x_te, y_te = digits
    ds = P.Dataset(x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)])
    model = P.train_classifier(ds, hidden=(16,), epochs=3, progress=False)
    tfl, elm = P.quantize_model(model, x_tr, labels=ds.labels, name="d", self_test_x=x_te[:1])
    g = blob.decode(elm)
    assert g.meta["labels"] == ds.labels and g.meta["train_stats"]["axis"] == "feature"
    assert len(g.meta["train_stats"]["mean"]) == 64
    xq = T.quantize_input(x_te[:1], g.input().scale, g.input().zero_point)
    np.testing.assert_array_equal(g.self_test[0].reshape(-1), xq.reshape(-1))
    # (8, 8) samples are reshaped to the model's (64,); a different feature count is an error
    P.quantize_model(model, x_tr.reshape(-1, 8, 8)[:50])
    with pytest.raises(ValueError, match=r"have shape \(63,\).*expects \(64,\)"):
        P.quantize_model(model, x_tr[:50, :63])
    with pytest.raises(ValueError, match="NaN"):
        P.quantize_model(model, np.full((4, 64), np.nan, np.float32))
    lstm = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(4), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="unsupported layers.*LSTM 'lstm"):
        P.quantize_model(lstm, x_tr.reshape(-1, 8, 8)[:10])
    tanh = keras.Sequential([keras.Input((64,)), keras.layers.Dense(4, activation="tanh")])
    with pytest.raises(ValueError, match="activation 'tanh'"):
        P.check_layers(tanh)


def test_report_writes_html_and_plots(tmp_path, P):
    from edgeloop_host.report import build_report, text_summary

    name = "digits_cnn"
    import keras

    rec = zoo.recipe(name)
    model = keras.models.load_model(ZOO / name / f"{name}.keras", compile=False)
    rd = rec.report_data()
    s = build_report(name, model, (ZOO / name / f"{name}.tflite").read_bytes(), (ZOO / name / f"{name}.elm").read_bytes(),
                     rd["x_test"][:120], rd["y_test"][:120], rd["labels"], out_dir=tmp_path)
    for f in ("index.html", "accuracy.png", "confusion.png", "sqnr.png", "size.png", "macs.png", "arena.png",
              "summary.json"):
        assert (tmp_path / f).stat().st_size > 1000 or f == "summary.json", f
    page = (tmp_path / "index.html").read_text()
    assert all(f"src='{p}'" in page for p in ("accuracy.png", "sqnr.png", "arena.png"))
    assert s["bit_exact_with_tflm"] is True
    layers = s["layers"]
    assert len(layers) == 9 and all(e["sqnr_db"] is not None and e["sqnr_db"] > 15 for e in layers)
    assert all(e["tflm_equal"] is True for e in layers)
    assert s["macs"] == sum(e["macs"] for e in layers) > 0
    assert "bit-exact with tflite-micro: yes" in text_summary(s)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_pipeline_end_to_end_and_errors(tmp_path, capsys, digits):
    x_tr, y_tr, x_te, y_te = digits
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te, labels=np.array([str(i) for i in range(10)]))
    m = str(tmp_path / "m.keras")
    rc, out, err = _run_cli(["train", "--data", str(data), "-o", m, "--epochs", "4", "--hidden", "32"], capsys)
    assert rc == 0 and "float test accuracy" in out and "epoch 4/4" in err
    rc, out, _ = _run_cli(["distill", "--data", str(data), "--teacher", m, "-o", str(tmp_path / "s.keras"),
                           "--hidden", "8", "--epochs", "2"], capsys)
    assert rc == 0 and "of the teacher" in out
    rc, out, _ = _run_cli(["prune", m, "--data", str(data), "-o", str(tmp_path / "p.keras"), "--sparsity", "0.5",
                           "--structured", "0.5", "--epochs", "2", "--final-lr", "1e-5"], capsys)
    assert rc == 0 and "weight sparsity 50.0%" in out and "MACs 2368 -> 1184" in out
    elm = tmp_path / "p.elm"
    rc, out, _ = _run_cli(["quantize", str(tmp_path / "p.keras"), "--data", str(data), "-o", str(elm)], capsys)
    assert rc == 0 and elm.exists() and (tmp_path / "p.tflite").exists()
    assert blob.decode(elm.read_bytes()).meta["labels"][3] == "3"
    rc, out, _ = _run_cli(["inspect", str(elm)], capsys)
    assert rc == 0 and "FULLY_CONNECTED" in out and "self-test vector: yes" in out

    # errors: one line on stderr, exit status 1
    nan = tmp_path / "nan.npz"
    np.savez(nan, x_train=np.where(x_tr > 0.9, np.nan, x_tr), y_train=y_tr)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, x_tr[:, :60])
    float_tfl = tmp_path / "float.tflite"
    float_tfl.write_bytes(_float_tflite())
    cases = [
        (["train", "--data", str(tmp_path / "missing.npz"), "-o", m], "missing.npz: no such file"),
        (["train", "--data", str(nan), "-o", m], "NaN values"),
        (["quantize", m, "--data", str(wrong), "-o", str(elm)], "have shape (60,)"),
        (["quantize", str(tmp_path / "none.keras"), "--data", str(data), "-o", str(elm)], "none.keras: no such file"),
        (["quantize", str(float_tfl), "--data", str(data), "-o", str(elm)], "cannot be re-quantized"),
        (["convert", str(float_tfl), "-o", str(elm)], "float model"),
        (["prune", m, "--data", str(data), "-o", str(tmp_path / "x.keras")], "nothing to do"),
        (["train", "--data", str(data), "-o", str(tmp_path / "no" / "dir" / "m.keras")], "does not exist"),
        (["report", "nope"], "not a zoo model"),
    ]
    for argv, msg in cases:
        rc, out, err = _run_cli(argv, capsys)
        assert rc == 1, argv
        assert msg in err, (argv, err)
        assert err.startswith("edgeloop: error: ")


def _float_tflite() -> bytes:
    import keras

    tf = T.tf()
    m = keras.Sequential([keras.Input((4,), batch_size=1), keras.layers.Dense(2)])
    return bytes(tf.lite.TFLiteConverter.from_keras_model(m).convert())


def test_unsupported_layer_cli(tmp_path, capsys, digits):
    import keras

    x_tr, y_tr, _, _ = digits
    m = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(4), keras.layers.Dense(10)])
    m.save(tmp_path / "lstm.keras")
    np.save(tmp_path / "rep.npy", x_tr[:20].reshape(-1, 8, 8))
    rc, _, err = _run_cli(["quantize", str(tmp_path / "lstm.keras"), "--data", str(tmp_path / "rep.npy"),
                           "-o", str(tmp_path / "l.elm")], capsys)
    assert rc == 1 and "unsupported layers" in err and "LSTM" in err
    assert len(err.strip().splitlines()) == 1



