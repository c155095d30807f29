"""`edgeloop retrain` (issue 7): the devices' collected samples -> a re-distilled, int8, checked, signed model.

    edgeloop retrain --collected DIR --model v1.elm --teacher T.keras --data ORIG.npz \\
        --student-arch mlp:32 -o v2.elm [--key fleet.key] [--collected-weight 1.0|balanced]

1. The collected records (a Parquet data set written by `edgeloop collect`, or the .npz files of
   `edgeloop logs pull`) are decoded: every Sample.pack() record holds the int8 input the deployed model saw;
   it is dequantized with that model's input quantization (`--model`, the deployed blob) back into the float
   input space of the original data. Other record kinds are counted and skipped.
2. A held-out part of the collected samples (`--holdout`, default 20%) is set aside; the teacher labels
   everything (its logits are the soft targets; its argmax is the hard label of a collected sample, the
   original data keeps its own labels).
3. The student (`--student-arch ARCH[:WIDTHS]`, built like `edgeloop train`) is distilled on the original
   training data plus the collected samples: loss (1 - alpha) T^2 KL(softmax(t/T) || softmax(s/T)) +
   alpha CE(label, s), each collected sample weighted `--collected-weight` (a number, or `balanced`: the
   collected samples together weigh as much as the original ones).
4. Full-int8 quantization (representative data: original + collected), conversion to .elm with the deployed
   model's id, its version + 1, its labels and preprocessing; new train_stats (the drift baseline now includes
   the collected distribution); a held-out sample as the self-test vector.
5. The int8 model is checked bit for bit against tflite-micro on the held-out set (original test split +
   held-out collected samples); a mismatch is an error and nothing is signed.
6. With `--key`, the blob is signed: OUT.mf next to OUT.elm (and OUT.tflite, OUT.keras, OUT.json).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataError


class RetrainError(DataError):
    """A problem with retrain's inputs or result (one line)."""


def _say(msg: str) -> None:
    print(f"[retrain] {msg}", file=sys.stderr, flush=True)


@dataclass
class Collected:
    xq: np.ndarray          # (N, input bytes) int8, as the devices saw them
    device: list            # device id per sample (or the .npz file name)
    reason: list            # selection reason per sample
    skipped: int            # records that were not samples (summaries, damaged)
    source: str


def load_collected(path, input_size: int | None = None) -> Collected:
    """The Sample records of a collected data set: a Parquet directory from `edgeloop collect`, or a
    directory / file of `edgeloop logs pull` .npz files. Raises RetrainError (no data, wrong size)."""
    from .records import decode_sample

    p = Path(path)
    if not p.exists():
        raise RetrainError(f"{path}: no such file or directory")
    payloads: list[tuple[str, int, bytes]] = []
    npz = [p] if p.is_file() else sorted(p.glob("*.npz"))
    parquet = [] if p.is_file() else list(p.rglob("*.parquet"))
    if parquet:
        from .collect import read_dataset

        t = read_dataset(p)
        if t.num_rows:
            for dev, seq, pay in zip(t.column("device").to_pylist(), t.column("seq").to_pylist(),
                                     t.column("payload").to_pylist()):
                payloads.append((str(dev), int(seq), bytes(pay)))
    for f in npz:
        try:
            z = np.load(f, allow_pickle=False)
            raw, off, seqs = z["raw"], z["raw_offsets"], z["seq"]
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise RetrainError(f"{f}: not an `edgeloop logs pull` data set ({type(e).__name__}: {e})") from None
        buf = raw.tobytes()
        for i in range(len(off) - 1):
            payloads.append((f.stem, int(seqs[i]), buf[int(off[i]):int(off[i + 1])]))
    payloads.sort(key=lambda r: r[:2])   # the collector's row order depends on arrival: make it reproducible
    xs, devs, reasons, skipped = [], [], [], 0
    for dev, _, pay in payloads:
        d = decode_sample(pay)
        if d is None:
            skipped += 1
            continue
        if input_size is not None and len(d["x"]) != input_size:
            raise RetrainError(f"{path}: a collected sample from {dev} has {len(d['x'])} input bytes but the "
                               f"model takes {input_size}: these records come from another model")
        xs.append(np.frombuffer(d["x"], np.int8))
        devs.append(dev)
        reasons.append(d["reason"])
    if not xs:
        what = "no records" if not payloads else f"{len(payloads)} records but no samples"
        raise RetrainError(f"{path}: {what} to learn from (expected the Parquet data set of `edgeloop collect` "
                           f"or the .npz files of `edgeloop logs pull`)")
    return Collected(np.stack(xs), devs, reasons, skipped, str(path))


def parse_arch(spec: str) -> tuple[str, tuple[int, ...]]:
    """'mlp:32' / 'cnn:16,24,32' / 'conv1d' -> (arch, widths)."""
    from .pipeline import parse_hidden

    arch, _, widths = str(spec).partition(":")
    if arch not in ("mlp", "cnn", "conv1d", "auto"):
        raise RetrainError(f"--student-arch {spec!r}: the architecture is mlp, cnn, conv1d or auto "
                           "(optionally :WIDTHS, e.g. mlp:32)")
    try:
        return arch, parse_hidden(widths or "32")
    except ValueError as e:
        raise RetrainError(f"--student-arch {spec!r}: {e}") from None


def dequantize(xq: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((xq.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def _kd_loss(n_classes: int, temperature: float, alpha: float):
    """Per-sample distillation loss; y_true = [teacher logits (n_classes) | hard label]."""
    import keras
    from keras import ops

    t2 = float(temperature) ** 2

    def loss(y_true, y_pred):
        t = y_true[:, :n_classes]
        y = ops.cast(y_true[:, n_classes], "int32")
        soft = keras.losses.kl_divergence(ops.softmax(t / temperature, axis=-1),
                                          ops.softmax(y_pred / temperature, axis=-1))
        hard = keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True)
        return (1.0 - alpha) * t2 * soft + alpha * hard
    return loss


def _teacher_logits(teacher, x: np.ndarray) -> np.ndarray:
    from .distill import outputs_probabilities
    from .pipeline import check_model_input

    xt = check_model_input(x, teacher.inputs[0].shape[1:], "teacher", "samples")
    p = np.asarray(teacher.predict(xt, verbose=0, batch_size=256), np.float32).reshape(len(x), -1)
    return np.log(np.clip(p, 1e-7, 1.0)) if outputs_probabilities(teacher) else p


def retrain(collected, teacher, data, model, student_arch: str = "mlp:32", out="retrained.elm", key=None,
            epochs: int = 40, temperature: float = 4.0, alpha: float = 0.1, collected_weight="1.0",
            holdout: float = 0.2, lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
            progress: bool = True) -> dict:
    """The whole retrain (module docstring). `model`: the deployed .elm (path or bytes) whose inputs were
    collected; `teacher`: .keras path or a Keras model; `data`: the original .npz. Returns a summary dict
    (also written as OUT.json)."""
    t_start = time.time()
    say = _say if progress else (lambda m: None)
    from . import blob as B
    from . import pipeline as P

    if isinstance(model, (str, os.PathLike)):
        if not os.path.exists(model):
            raise RetrainError(f"{model}: no such file (the deployed .elm whose inputs were collected)")
        model = Path(model).read_bytes()
    try:
        g1 = B.decode(bytes(model))
    except ValueError as e:
        raise RetrainError(f"--model: not a valid .elm blob ({e})") from None
    t_in = g1.input()
    in_size = int(np.prod(t_in.shape))
    meta1 = dict(g1.meta or {}) if hasattr(g1, "meta") else {}
    import struct

    model_id, version1 = struct.unpack_from("<II", bytes(model), 20)
    cw = str(collected_weight)
    if cw != "balanced":
        try:
            if not float(cw) >= 0 or float(cw) == float("inf"):   # NaN fails the first test
                raise ValueError
        except ValueError:
            raise RetrainError(f"--collected-weight must be a number >= 0 or 'balanced', not {cw!r}") from None
    if not 0.0 <= holdout < 1.0:
        raise RetrainError(f"--holdout must be in [0, 1), not {holdout}")
    arch, widths = parse_arch(student_arch)
    if isinstance(teacher, (str, os.PathLike)) and not os.path.exists(teacher):
        raise RetrainError(f"{teacher}: no such file (the teacher .keras model that labels the collected data)")
    out = Path(out)
    if not out.parent.is_dir():
        raise RetrainError(f"{out}: directory {out.parent} does not exist")

    # ---- inputs, all checked before any training
    col = load_collected(collected, in_size)
    ds = P.load_dataset(str(data))
    if int(np.prod(ds.sample_shape)) != in_size:
        raise RetrainError(f"{data}: samples have shape {ds.sample_shape} ({int(np.prod(ds.sample_shape))} values) "
                           f"but the deployed model takes {tuple(t_in.shape[1:])} ({in_size} values)")
    if isinstance(teacher, (str, os.PathLike)):
        teacher = P.load_keras(str(teacher))
    t_shape = tuple(int(d) for d in teacher.inputs[0].shape[1:])
    if int(np.prod(t_shape)) != in_size:
        raise RetrainError(f"the teacher takes {t_shape} ({int(np.prod(t_shape))} values) but the data has "
                           f"{in_size} values per sample")
    n_classes = int(teacher.outputs[0].shape[-1])
    if ds.n_classes > n_classes:
        raise RetrainError(f"{data}: {ds.n_classes} classes but the teacher has {n_classes} outputs")
    n_out = int(np.prod(g1.output().shape))
    if n_out != n_classes:
        raise RetrainError(f"the deployed model has {n_out} outputs but the teacher has {n_classes}")
    say(f"{len(col.xq)} collected samples from {len(set(col.device))} devices in {col.source} "
        f"({col.skipped} other records skipped); reasons: "
        + ", ".join(f"{r or '-'} {c}" for r, c in sorted(_count(col.reason).items())))

    # ---- collected -> float, split off a held-out part
    shape = ds.sample_shape
    xc = dequantize(col.xq, t_in.scale, t_in.zero_point).reshape((-1,) + shape)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(xc))
    n_hold = min(int(round(holdout * len(xc))), len(xc) - 1)   # at least one collected sample to learn from
    hold_idx, train_idx = perm[:n_hold], perm[n_hold:]
    xc_tr, xc_ho = xc[train_idx], xc[hold_idx]

    # ---- teacher labels
    t0 = time.time()
    lt_orig = _teacher_logits(teacher, ds.x_train)
    lt_col = _teacher_logits(teacher, xc)
    yc = np.argmax(lt_col, axis=1)
    teacher_acc = float(np.mean(np.argmax(lt_orig, 1) == ds.y_train))
    say(f"teacher labelled {len(xc)} collected samples (+ {len(ds.x_train)} original; teacher agrees with "
        f"{teacher_acc:.1%} of the original labels) in {time.time() - t0:.1f}s; collected labels per class: "
        f"{np.bincount(yc, minlength=n_classes).tolist()}")

    # ---- re-distill
    from .train import tf

    tf()
    import keras

    keras.utils.set_random_seed(seed)
    x = np.concatenate([ds.x_train, xc_tr]).astype(np.float32)
    targets = np.concatenate([np.concatenate([lt_orig, ds.y_train[:, None].astype(np.float32)], 1),
                              np.concatenate([lt_col[train_idx], yc[train_idx, None].astype(np.float32)], 1)])
    w = len(ds.x_train) / len(xc_tr) if cw == "balanced" else float(cw)
    sw = np.concatenate([np.ones(len(ds.x_train), np.float32), np.full(len(xc_tr), w, np.float32)])
    student = P.build_classifier(shape, n_classes, arch, widths, name="student")
    P.check_layers(student)
    student.compile(optimizer=keras.optimizers.Adam(lr), loss=_kd_loss(n_classes, temperature, alpha))
    say(f"distilling a {arch} student {'-'.join(map(str, widths))} ({P.count_params(student)} parameters) on "
        f"{len(ds.x_train)} original + {len(xc_tr)} collected samples (collected weight {w:.2f}), {epochs} epochs, "
        f"T={temperature}, alpha={alpha}")
    cbs = [P.Progress("distill", epochs)] if progress else []
    t0 = time.time()
    student.fit(x, targets, sample_weight=sw, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
                callbacks=cbs)
    t_fit = time.time() - t0
    xt = P.check_model_input(ds.x_test, student.inputs[0].shape[1:], str(data), "x_test samples")
    acc_orig = P.accuracy(student, xt, ds.y_test)
    agree_ho = P.accuracy(student, xc_ho, yc[hold_idx]) if n_hold else None
    say(f"float student: original test accuracy {acc_orig:.4f}"
        + (f", agrees with the teacher on {agree_ho:.1%} of {n_hold} held-out collected samples" if n_hold else ""))

    # ---- int8, .elm, bit-exact check
    from . import oracle, reference
    from .train import quantize_input

    rep = np.concatenate([ds.x_train, xc_tr])
    st = xc_ho[:1] if n_hold else xt[:1]
    extra = {"retrain": {"from_version": int(version1), "collected": int(len(xc)), "teacher_accuracy_orig":
                         round(teacher_acc, 4)}}
    tfl, elm = P.quantize_model(student, rep, None, None, labels=meta1.get("labels") or ds.labels or None,
                                name=meta1.get("name") or "retrained",
                                preprocess=(meta1.get("input") or {}).get("preprocess"),
                                self_test_x=st, model_id=int(model_id), model_version=int(version1) + 1,
                                meta_extra=extra)
    g2 = B.decode(elm)
    x_check = np.concatenate([xt.reshape((-1,) + shape), xc_ho]) if n_hold else xt.reshape((-1,) + shape)
    xq = quantize_input(x_check, g2.input().scale, g2.input().zero_point)
    y_tflm = oracle.tflm_run(tfl, xq)
    y_ref = reference.run(g2, xq).reshape(y_tflm.shape)
    same = int(np.sum(np.all(y_ref.reshape(len(xq), -1) == y_tflm.reshape(len(xq), -1), axis=1)))
    pred = np.argmax(y_tflm.reshape(len(xq), -1), axis=1)
    int8_orig = float(np.mean(pred[:len(xt)] == ds.y_test))
    int8_ho = float(np.mean(pred[len(xt):] == yc[hold_idx])) if n_hold else None
    if same != len(xq):
        raise RetrainError(f"the int8 model differs from tflite-micro on {len(xq) - same} of {len(xq)} held-out "
                           f"samples: not written, not signed")
    say(f"int8 v{version1 + 1}: {len(elm)} bytes, bit-exact with tflite-micro on all {len(xq)} held-out samples; "
        f"original test accuracy {int8_orig:.4f}"
        + (f", teacher agreement on held-out collected {int8_ho:.1%}" if n_hold else ""))

    # ---- write, sign
    out.write_bytes(elm)
    out.with_suffix(".tflite").write_bytes(tfl)
    plain = student.__class__.from_config(student.get_config())   # without the compiled custom loss
    plain.set_weights(student.get_weights())
    plain.save(out.with_suffix(".keras"))
    mf_path = None
    if key is not None:
        from .ota.manifest import load_private_key, sign_blob

        k = load_private_key(key)
        mf_path = out.with_suffix(".mf")
        mf_path.write_bytes(sign_blob(elm, k))
        say(f"signed: {mf_path}")
    summary = {
        "model_id": int(model_id), "version": int(version1) + 1, "elm": str(out), "elm_bytes": len(elm),
        "manifest": str(mf_path) if mf_path else None, "collected": int(len(xc)),
        "collected_train": int(len(xc_tr)), "collected_holdout": int(n_hold), "skipped_records": col.skipped,
        "devices": sorted(set(col.device)), "collected_weight": round(w, 4), "epochs": epochs,
        "student": f"{arch}:{','.join(map(str, widths))}", "params": P.count_params(student),
        "teacher_accuracy_original_train": round(teacher_acc, 4),
        "float_accuracy_original_test": round(acc_orig, 4),
        "int8_accuracy_original_test": round(int8_orig, 4),
        "int8_teacher_agreement_holdout": None if int8_ho is None else round(int8_ho, 4),
        "bit_exact_samples": same, "bit_exact": same == len(xq), "fit_seconds": round(t_fit, 1),
        "seconds": round(time.time() - t_start, 1),
    }
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _count(items) -> dict:
    c: dict = {}
    for i in items:
        c[i] = c.get(i, 0) + 1
    return c


def cmd_retrain(args) -> int:
    s = retrain(args.collected, args.teacher, args.data, args.model, student_arch=args.student_arch,
                out=args.output, key=args.key, epochs=args.epochs, temperature=args.temperature, alpha=args.alpha,
                collected_weight=args.collected_weight, holdout=args.holdout, lr=args.lr,
                batch_size=args.batch_size, seed=args.seed)
    print(f"v{s['version']} -> {s['elm']} ({s['elm_bytes']} bytes{', signed: ' + s['manifest'] if s['manifest'] else ''}); "
          f"{s['collected']} collected samples from {len(s['devices'])} devices; int8 original test accuracy "
          f"{s['int8_accuracy_original_test']:.4f}"
          + (f", agreement with the teacher on held-out collected samples {s['int8_teacher_agreement_holdout']:.4f}"
             if s["int8_teacher_agreement_holdout"] is not None else "")
          + f"; bit-exact with tflite-micro on {s['bit_exact_samples']} samples; {s['seconds']:.0f}s")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("retrain", help="teacher-label collected samples, re-distill, int8, check vs TFLM, sign "
                                       "(issue 7)")
    p.add_argument("--collected", required=True, help="Parquet data set of `edgeloop collect` (or `logs pull` .npz)")
    p.add_argument("--model", required=True, help="the deployed .elm whose int8 inputs were collected")
    p.add_argument("--teacher", required=True, help="teacher .keras (labels the collected samples)")
    p.add_argument("--data", required=True, help="the original .npz data set (x_train, y_train[, x_test, ...])")
    p.add_argument("--student-arch", default="mlp:32", help="ARCH[:WIDTHS]: mlp:32, cnn:16,24,32, conv1d:16,32")
    p.add_argument("-o", "--output", required=True, help="output .elm (.tflite, .keras, .json, .mf next to it)")
    p.add_argument("--key", help="Ed25519 private key (edgeloop keys generate): writes the signed manifest OUT.mf")
    p.add_argument("--collected-weight", default="1.0",
                   help="loss weight of each collected sample (a number, or 'balanced': as much in total as "
                        "the original data)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of collected samples held out (default 0.2)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.1, help="weight of the hard-label loss (default 0.1)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_retrain)
