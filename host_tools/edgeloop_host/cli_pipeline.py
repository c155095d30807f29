"""`edgeloop train|distill|prune|quantize|report|zoo`: the host pipeline's subcommands (registered by cli.py).

Each is a thin shell over edgeloop_host.pipeline / report / zoo. Problems with the user's files raise
ValueError (DataError) with one line naming the file; cli.main prints it and exits 1.
"""
from __future__ import annotations

import os
import sys


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _out_dir(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        from .data import DataError

        raise DataError(f"{path}: directory {d} does not exist")


def _labels(args, ds):
    if getattr(args, "labels", None):
        return [s.strip() for s in args.labels.split(",")]
    return ds.labels if ds is not None else None


def cmd_train(args) -> int:
    from . import pipeline as P

    ds = P.load_dataset(args.data)  # checked before TensorFlow spends any time
    _out_dir(args.output)
    _say(f"training a {args.arch} classifier on {len(ds.x_train)} samples of shape {ds.sample_shape}, "
         f"{ds.n_classes} classes, {args.epochs} epochs")
    model = P.train_classifier(ds, arch=args.arch, hidden=P.parse_hidden(args.hidden), epochs=args.epochs,
                               lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                               label_smoothing=args.label_smoothing)
    model.save(args.output)
    _, xt = P._fit_input(ds, model)
    print(f"float test accuracy {P.accuracy(model, xt, ds.y_test):.4f} on {len(xt)} samples; "
          f"{P.count_params(model)} parameters -> {args.output}")
    return 0


def cmd_distill(args) -> int:
    from . import pipeline as P

    ds = P.load_dataset(args.data)
    teacher = P.load_keras(args.teacher)
    student = P.load_keras(args.student) if args.student else None
    _out_dir(args.output)
    _say(f"distilling {args.teacher} ({P.count_params(teacher)} parameters) at temperature {args.temperature}, "
         f"hard-label weight {args.alpha}, {args.epochs} epochs")
    s = P.distill_classifier(ds, teacher, student, hidden=P.parse_hidden(args.hidden), arch=args.arch,
                             epochs=args.epochs, temperature=args.temperature, alpha=args.alpha, lr=args.lr,
                             batch_size=args.batch_size, seed=args.seed)
    s.save(args.output)
    _, xt = P._fit_input(ds, s)
    print(f"student test accuracy {P.accuracy(s, xt, ds.y_test):.4f} (teacher {P.accuracy(teacher, xt, ds.y_test):.4f}); "
          f"{P.count_params(s)} parameters ({P.count_params(s) / P.count_params(teacher):.1%} of the teacher) "
          f"-> {args.output}")
    return 0


def cmd_prune(args) -> int:
    from . import pipeline as P

    ds = P.load_dataset(args.data)
    model = P.load_keras(args.model)
    _out_dir(args.output)
    _, xt = P._fit_input(ds, model)
    before = P.accuracy(model, xt, ds.y_test)
    pruned, info = P.prune_classifier(ds, model, sparsity=args.sparsity, structured=args.structured,
                                      epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                      final_lr=args.final_lr, scope=args.scope)
    pruned.save(args.output)
    after = P.accuracy(pruned, xt, ds.y_test)
    print(f"test accuracy {before:.4f} -> {after:.4f}; MACs {info['macs_before']} -> {info['macs_after']} "
          f"({1 - info['macs_after'] / max(1, info['macs_before']):.0%} fewer); parameters {info['params_before']} -> "
          f"{info['params_after']}; weight sparsity {info['sparsity']:.1%} -> {args.output}")
    return 0


def cmd_quantize(args) -> int:
    from . import pipeline as P
    from .data import DataError, load_samples

    if args.model.endswith(".tflite"):
        raise DataError(f"{args.model}: a .tflite cannot be re-quantized here; give the Keras model (.keras) "
                        "it came from, or convert a full-int8 .tflite with `edgeloop convert`")
    model = P.load_keras(args.model)
    P.check_layers(model)
    x = P.check_model_input(load_samples(args.data), model.inputs[0].shape[1:], args.data)
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    if labels is None and args.data.endswith(".npz"):
        import numpy as np

        with np.load(args.data, allow_pickle=False) as f:
            labels = [str(s) for s in f["labels"].tolist()] if "labels" in f.files else None
    elm_path = args.output
    tfl_path = args.tflite or os.path.splitext(elm_path)[0] + ".tflite"
    _out_dir(elm_path)
    _say(f"full-integer quantization with {min(len(x), args.max_samples)} representative samples")
    tfl, elm = P.quantize_model(model, x, tfl_path, elm_path, labels=labels, per_channel=not args.per_tensor,
                                max_samples=args.max_samples, model_id=args.model_id,
                                model_version=args.model_version)
    print(f"wrote {tfl_path} ({len(tfl)} bytes) and {elm_path} ({len(elm)} bytes)")
    return 0


def cmd_report(args) -> int:
    from .report import report_cli

    return report_cli(args)


def cmd_zoo(args) -> int:
    from . import zoo

    if args.action == "list":
        for name in zoo.names():
            print(f"{name:<16} {zoo.summary(name)}")
        return 0
    names = zoo.names() if args.name in (None, "all") else [args.name]
    for n in names:
        zoo.recipe(n)  # unknown names fail before any training
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ValueError(f"--max-seconds must be > 0, got {args.max_seconds}")
    return zoo.train_all(names, quick=args.quick, out=args.out, max_seconds=args.max_seconds)


def add_parsers(sub) -> None:
    def common(p, epochs):
        p.add_argument("--data", required=True, help=".npz with x_train, y_train [, x_test, y_test, labels]")
        p.add_argument("-o", "--output", required=True, help="output .keras model")
        p.add_argument("--epochs", type=int, default=epochs)
        p.add_argument("--lr", type=float, default=3e-3)
        p.add_argument("--batch-size", type=int, default=32)
        p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train a float classifier (mlp / cnn / conv1d) on an .npz data set")
    common(p, 40)
    p.add_argument("--arch", default="auto", choices=("auto", "mlp", "cnn", "conv1d"))
    p.add_argument("--hidden", default="32", help="layer widths / filters, comma-separated (default 32)")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="e.g. 0.1: bounds the logits so the int8 output keeps resolution")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="train a small student from a teacher's soft targets")
    common(p, 60)
    p.add_argument("--teacher", required=True, help="trained teacher .keras (logits or softmax output)")
    p.add_argument("--student", help="untrained student .keras (default: built from --arch/--hidden)")
    p.add_argument("--arch", default="auto", choices=("auto", "mlp", "cnn", "conv1d"))
    p.add_argument("--hidden", default="32")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.1, help="weight of the hard-label loss (default 0.1)")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("prune", help="magnitude pruning to a sparsity and/or structured pruning of units")
    p.add_argument("model", help="trained .keras model")
    common(p, 20)
    p.set_defaults(lr=1e-3)
    p.add_argument("--sparsity", type=float, default=0.0, help="magnitude pruning target, e.g. 0.75")
    p.add_argument("--structured", type=float, default=0.0,
                   help="fraction of the neurons/filters of every hidden layer to remove, e.g. 0.5")
    p.add_argument("--final-lr", type=float, help="cosine-decay the learning rate to this (e.g. 1e-5)")
    p.add_argument("--scope", choices=("layer", "global"), default="layer",
                   help="magnitude threshold per layer (default) or one over all layers")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("quantize", help="Keras model + representative data -> full-int8 .tflite + .elm")
    p.add_argument("model", help=".keras model")
    p.add_argument("--data", required=True, help="representative float samples: .npy, or .npz (x_train)")
    p.add_argument("-o", "--output", required=True, help="output .elm (the .tflite goes next to it)")
    p.add_argument("--tflite", help="output .tflite path")
    p.add_argument("--labels", help="comma-separated class labels (default: the .npz's labels)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per layer (default per-channel)")
    p.add_argument("--max-samples", type=int, default=1000)
    p.add_argument("--model-id", type=int, default=0)
    p.add_argument("--model-version", type=int, default=1)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("report", help="HTML report with plots: float vs int8, SQNR per layer, sizes, MACs, arena")
    p.add_argument("model", help="zoo model name (see `edgeloop zoo list`) or a .keras model with --data")
    p.add_argument("--data", help=".npz test data (for a .keras model)")
    p.add_argument("--tflite", help="int8 .tflite of the .keras model (default: quantized from --data)")
    p.add_argument("-o", "--output", help="output directory (default out/report/<name>)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("zoo", help="list or retrain the model zoo (models/)")
    p.add_argument("action", choices=("list", "train"))
    p.add_argument("name", nargs="?", help="zoo model name or 'all' (default all)")
    p.add_argument("--quick", action="store_true", help="few epochs, to check the recipes run (results not saved)")
    p.add_argument("--out", help="write the artifacts to OUT/<name>/ instead of models/<name>/ (also with --quick)")
    p.add_argument("--max-seconds", type=float, help="fail (exit 1) if an entry takes longer than this")
    p.set_defaults(func=cmd_zoo)

