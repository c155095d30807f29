"""`edgeloop report MODEL`: an HTML page with PNG plots of what quantization costs, and a text summary.

    edgeloop report digits_mlp                      # a zoo model (models/<name>/)
    edgeloop report model.keras --data d.npz [--tflite m.tflite]

Plots (matplotlib, Agg): float vs int8 accuracy (or ROC/AUC and score histograms for an anomaly detector),
the int8 confusion matrix, per-layer quantization error (SQNR of the dequantized int8 activations of the
numpy reference against the Keras float activations, over the test set; each layer's int8 tensor also
checked against tflite-micro's), the blob's size breakdown, MACs per layer, and the arena plan.
"""
from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import ir

# Keras layers after which a ReLU / BatchNorm / Dropout is folded into the same TFLite op.
_FOLDED = ("ReLU", "BatchNormalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise")
_NO_OP = ("InputLayer", "Flatten", "Reshape", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.titlesize": 10})
    return plt


def sqnr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - approx)^2)."""
    ref = np.asarray(ref, np.float64).reshape(-1)
    err = ref - np.asarray(approx, np.float64).reshape(-1)
    p_sig, p_err = float(np.sum(ref * ref)), float(np.sum(err * err))
    if p_err == 0.0:
        return float("inf")
    if p_sig == 0.0:
        return float("-inf")
    return 10.0 * np.log10(p_sig / p_err)


def op_macs(graph: ir.Graph, op: ir.Op) -> int:
    from .inspect import op_macs as _m

    return _m(graph, op)


def keras_op_layers(model) -> list:
    """The Keras layers whose outputs correspond, in order, to the int8 ops' outputs (Sequential-style
    models): every layer that becomes an op, taking the output of a directly following folded ReLU /
    BatchNorm / Dropout instead."""
    layers = [l for l in model.layers]
    out = []
    for i, layer in enumerate(layers):
        kind = type(layer).__name__
        if kind in _NO_OP or kind in _FOLDED:
            continue
        if kind == "Activation" and getattr(layer.activation, "__name__", "") in ("relu", "relu6", "linear"):
            continue
        j = i
        while j + 1 < len(layers) and (type(layers[j + 1]).__name__ in _FOLDED or (
                type(layers[j + 1]).__name__ == "Activation"
                and getattr(layers[j + 1].activation, "__name__", "") in ("relu", "relu6", "linear"))):
            j += 1
        out.append((layer, layers[j]))
    return out


def layer_errors(model, graph: ir.Graph, tflite: bytes, x_float: np.ndarray, xq: np.ndarray,
                 n_tflm: int = 5) -> list[dict]:
    """Per op: name, output shape, MACs, SQNR (dB) of the int8 output vs the Keras float activation of the
    matching layer, and whether the int8 output equals tflite-micro's on the first n_tflm samples."""
    from . import reference

    import keras

    acts_q = reference.run_all_tensors(graph, xq)
    pairs = keras_op_layers(model) if model is not None else []
    floats = []
    if pairs and len(pairs) == len(graph.ops):
        probe = keras.Model(model.inputs, [b.output for _, b in pairs])
        floats = probe.predict(x_float, verbose=0, batch_size=256)
        floats = floats if isinstance(floats, (list, tuple)) else [floats]
    tflm = _tflm_by_name(tflite, xq[:n_tflm])
    rows = []
    for k, op in enumerate(graph.ops):
        (i_out,) = op.outputs()
        t = graph.tensors[i_out]
        q = acts_q[i_out]
        deq = (q.astype(np.float64) - t.zero_point) * np.float32(t.scale)
        row = {"index": k, "op": op.name, "tensor": t.name, "shape": list(t.shape), "macs": op_macs(graph, op),
               "scale": float(t.scale), "zero_point": int(t.zero_point), "layer": None, "sqnr_db": None,
               "tflm_equal": None}
        if floats:
            layer, last = pairs[k]
            f = np.asarray(floats[k])
            if f.size == deq.size:
                row["layer"] = layer.name if last is layer else f"{layer.name}+{last.name}"
                row["sqnr_db"] = round(sqnr_db(f, deq.reshape(f.shape)), 2)
        if tflm is not None:
            names, outs = tflm
            if t.name in names:
                want = np.stack([o[names[t.name]].reshape(-1) for o in outs])
                row["tflm_equal"] = bool(np.array_equal(want, q[:len(outs)].reshape(len(outs), -1)))
        rows.append(row)
    return rows


def _tflm_by_name(tflite: bytes, xq: np.ndarray):
    try:
        from ai_edge_litert.tools import flatbuffer_utils

        from . import oracle

        m = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
        names = {}
        for i, t in enumerate(m.subgraphs[0].tensors):
            n = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            names.setdefault(n, i)
        return names, [oracle.tflm_tensors(tflite, x) for x in xq]
    except Exception as e:  # the report still has everything else
        print(f"report: per-layer TFLM comparison skipped ({type(e).__name__}: {e})", file=sys.stderr)
        return None


def blob_sections(elm: bytes) -> dict[str, int]:
    """{tag: bytes} of the blob's sections plus 'header+table'."""
    from .blob import HEADER, SECTION

    f = HEADER.unpack_from(elm, 0)
    hsize, nsec = f[2], f[8]
    out = {"header+table": hsize + SECTION.size * nsec}
    for i in range(nsec):
        tag, _flags, _off, length = SECTION.unpack_from(elm, hsize + i * SECTION.size)
        out[tag.decode("ascii", "replace").strip()] = length
    return out


def const_bytes_by_op(graph: ir.Graph) -> list[dict]:
    """Per op: bytes of weights, bias and requantization constants (multipliers / shifts)."""
    out = []
    for op in graph.ops:
        words = ir.OP_LAYOUTS[op.opcode][0]
        row = {"weights": 0, "bias": 0, "quant": 0}
        for w, i in zip(words, op.tensors):
            if i < 0 or not graph.tensors[i].is_const:
                continue
            key = "weights" if w in ("weights", "filter") else ("bias" if w == "bias" else "quant")
            row[key] += graph.tensors[i].nbytes
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------


def build_report(name: str, model, tflite: bytes, elm: bytes, x_test: np.ndarray, y_test=None, labels=None,
                 task: str = "classification", out_dir=None) -> dict:
    """Writes out_dir/index.html + PNGs + summary.json; returns the summary dict."""
    from . import blob, oracle, reference
    from . import train as T

    plt = _plt()
    out = Path(out_dir or Path("out/report") / name)
    out.mkdir(parents=True, exist_ok=True)
    graph = blob.decode(elm)
    t_in, t_out = graph.input(), graph.output()
    x_test = np.asarray(x_test, np.float32)
    if model is not None:
        from .data import check_model_input

        x_test = check_model_input(x_test, model.inputs[0].shape[1:], "test data")
    xq = T.quantize_input(x_test, t_in.scale, t_in.zero_point)
    y_tflm = oracle.tflm_run(tflite, xq)
    y_ref = reference.run(graph, xq).reshape(y_tflm.shape)
    bit_exact = bool(np.array_equal(y_ref, y_tflm))
    f_out = model.predict(x_test, verbose=0, batch_size=256) if model is not None else None
    summary = {"model": name, "task": task, "n_test": int(len(x_test)), "bit_exact_with_tflm": bit_exact,
               "blob_bytes": len(elm), "tflite_bytes": len(tflite), "arena_bytes": graph.arena_size}
    figs = []

    # 1. float vs int8 -------------------------------------------------------------------------
    if task == "anomaly":
        from sklearn.metrics import roc_auc_score, roc_curve

        def deq(a, t):
            return (a.reshape(len(a), -1).astype(np.float64) - t.zero_point) * np.float32(t.scale)

        s_int8 = np.mean((deq(y_tflm, t_out) - deq(xq, t_in)) ** 2, axis=1)
        s_float = np.mean((f_out.reshape(len(f_out), -1) - x_test.reshape(len(x_test), -1)) ** 2, axis=1)
        y = np.asarray(y_test)
        summary["float_auc"] = round(float(roc_auc_score(y, s_float)), 4)
        summary["int8_auc"] = round(float(roc_auc_score(y, s_int8)), 4)
        thr = graph.meta.get("anomaly", {}).get("threshold")
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
        for s, lab in ((s_float, f"float AUC {summary['float_auc']:.4f}"), (s_int8, f"int8 AUC {summary['int8_auc']:.4f}")):
            fpr, tpr, _ = roc_curve(y, s)
            ax[0].plot(fpr, tpr, label=lab)
        ax[0].plot([0, 1], [0, 1], "k:", lw=0.8)
        ax[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC: float vs int8")
        ax[0].legend(loc="lower right")
        bins = np.linspace(0, np.percentile(s_int8, 99.5), 60)
        ax[1].hist(s_int8[y == 0], bins=bins, alpha=0.6, label="normal")
        ax[1].hist(s_int8[y == 1], bins=bins, alpha=0.6, label="anomaly")
        if thr is not None:
            ax[1].axvline(thr, color="k", ls="--", label=f"threshold {thr:.4g} (META)")
            summary["threshold"] = thr
            summary["int8_tpr_at_threshold"] = round(float(np.mean(s_int8[y == 1] > thr)), 4)
            summary["int8_fpr_at_threshold"] = round(float(np.mean(s_int8[y == 0] > thr)), 4)
        ax[1].set(xlabel="int8 reconstruction error", ylabel="windows", title="int8 anomaly scores")
        ax[1].legend()
        figs.append(_save(fig, out, "accuracy.png", "Float vs int8: ROC and score distribution"))
        plt.close(fig)
    else:
        y = np.asarray(y_test)
        pred_q = np.argmax(y_tflm.reshape(len(y_tflm), -1), axis=1)
        acc_q = float(np.mean(pred_q == y))
        acc_r = float(np.mean(np.argmax(y_ref.reshape(len(y_ref), -1), axis=1) == y))
        summary["int8_accuracy"] = round(acc_q, 4)
        rows = [("int8 TFLM", acc_q), ("int8 edgeloop\nreference", acc_r)]
        if f_out is not None:
            acc_f = float(np.mean(np.argmax(f_out.reshape(len(f_out), -1), axis=1) == y))
            summary["float_accuracy"] = round(acc_f, 4)
            summary["int8_minus_float_points"] = round(100 * (acc_q - acc_f), 2)
            rows.insert(0, ("float Keras", acc_f))
            summary["prediction_agreement"] = round(float(np.mean(
                np.argmax(f_out.reshape(len(f_out), -1), axis=1) == pred_q)), 4)
            # Output resolution: samples whose float top-2 margin is below one int8 output step can flip.
            top2 = np.sort(f_out.reshape(len(f_out), -1), axis=1)[:, -2:]
            summary["output_step"] = round(float(t_out.scale), 5)
            summary["margin_below_output_step"] = round(float(np.mean(top2[:, 1] - top2[:, 0] < t_out.scale)), 4)
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        bars = ax.bar([r[0] for r in rows], [100 * r[1] for r in rows], color=["#888", "#1f77b4", "#2ca02c"][-len(rows):])
        for b, (_, a) in zip(bars, rows):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), f"{100 * a:.2f}%", ha="center", va="bottom")
        lo = max(0.0, min(100 * r[1] for r in rows) - 5)
        ax.set(ylim=(lo, 100.5), ylabel="test accuracy (%)",
               title=f"float vs int8 on {len(y)} test samples (int8 bit-exact with TFLM: {'yes' if bit_exact else 'NO'})")
        figs.append(_save(fig, out, "accuracy.png", "Float vs int8 accuracy"))
        plt.close(fig)
        # confusion matrix
        n_cls = int(max(y.max(), pred_q.max())) + 1
        cm = np.zeros((n_cls, n_cls), dtype=int)
        np.add.at(cm, (y, pred_q), 1)
        names = labels if labels and len(labels) >= n_cls else [str(i) for i in range(n_cls)]
        fig, ax = plt.subplots(figsize=(0.45 * n_cls + 2.5, 0.45 * n_cls + 2))
        ax.imshow(cm, cmap="Blues")
        for i in range(n_cls):
            for j in range(n_cls):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                            color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
        ax.set_xticks(range(n_cls), names[:n_cls], rotation=45 if max(len(s) for s in names) > 2 else 0, ha="right")
        ax.set_yticks(range(n_cls), names[:n_cls])
        ax.set(xlabel="predicted (int8)", ylabel="true", title="int8 confusion matrix")
        fig.tight_layout()
        figs.append(_save(fig, out, "confusion.png", "Confusion matrix (int8, TFLM)"))
        plt.close(fig)

    # 2. per-layer quantization error ----------------------------------------------------------
    n_layer = min(len(x_test), 300)
    from .tflite_import import load_tflite

    named = load_tflite(tflite)  # the blob keeps no tensor names; the .tflite's map layers to TFLM tensors
    if [op.opcode for op in named.ops] != [op.opcode for op in graph.ops]:
        named = graph
    errs = layer_errors(model, named, tflite, x_test[:n_layer], xq[:n_layer])
    summary["layers"] = errs
    if any(e["sqnr_db"] is not None for e in errs):
        fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(errs) + 2), 3.4))
        labs = [f"{e['index']}:{e['op'].replace('_2D', '').replace('FULLY_CONNECTED', 'FC')}" for e in errs]
        vals = [e["sqnr_db"] if e["sqnr_db"] is not None and np.isfinite(e["sqnr_db"]) else 0 for e in errs]
        bars = ax.bar(labs, vals, color="#1f77b4")
        for b, e in zip(bars, errs):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(),
                    "n/a" if e["sqnr_db"] is None else f"{e['sqnr_db']:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set(ylabel="SQNR (dB), higher is better", title=f"per-layer quantization error vs float ({n_layer} test samples)")
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        fig.tight_layout()
        figs.append(_save(fig, out, "sqnr.png", "Per-layer SQNR (int8 activations vs float activations)"))
        plt.close(fig)

    # 3. size breakdown ------------------------------------------------------------------------
    secs = blob_sections(elm)
    summary["blob_sections"] = secs
    cb = const_bytes_by_op(graph)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1, 2]})
    ax[0].barh(list(secs), list(secs.values()), color="#9467bd")
    for i, v in enumerate(secs.values()):
        ax[0].text(v, i, f" {v}", va="center", fontsize=8)
    ax[0].set(xlabel="bytes", title=f"blob sections ({len(elm)} bytes)")
    ax[0].invert_yaxis()
    labs = [f"{k}:{op.name.replace('_2D', '').replace('FULLY_CONNECTED', 'FC')}" for k, op in enumerate(graph.ops)]
    bottom = np.zeros(len(cb))
    for key, color in (("weights", "#1f77b4"), ("bias", "#ff7f0e"), ("quant", "#2ca02c")):
        v = np.array([c[key] for c in cb], dtype=float)
        ax[1].bar(labs, v, bottom=bottom, label=key if key != "quant" else "multipliers+shifts", color=color)
        bottom += v
    ax[1].set(ylabel="bytes", title="constant data per layer")
    ax[1].legend()
    plt.setp(ax[1].get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    figs.append(_save(fig, out, "size.png", "Size breakdown"))
    plt.close(fig)

    # 4. MACs per layer --------------------------------------------------------------------------
    macs = [op_macs(graph, op) for op in graph.ops]
    summary["macs"] = int(sum(macs))
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(macs) + 2), 3.2))
    bars = ax.bar(labs, macs, color="#d62728")
    for b, m in zip(bars, macs):
        ax.text(b.get_x() + b.get_width() / 2, b.get_height(), f"{m:,}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="multiply-accumulates", title=f"MACs per layer (total {sum(macs):,} per inference)")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    figs.append(_save(fig, out, "macs.png", "MACs per layer"))
    plt.close(fig)

    # 5. arena plan ------------------------------------------------------------------------------
    from .planner import lifetimes

    life = lifetimes(graph)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(graph.ops) + 3), 3.4))
    cmap = plt.get_cmap("tab20")
    for n, (i, (s, e)) in enumerate(sorted(life.items(), key=lambda kv: kv[1])):
        t = graph.tensors[i]
        ax.add_patch(plt.Rectangle((s - 0.45, t.arena_offset), e - s + 0.9, t.nbytes, color=cmap(n % 20),
                                   alpha=0.8, ec="k", lw=0.5))
        ax.text((s + e) / 2, t.arena_offset + t.nbytes / 2, f"{t.nbytes}B", ha="center", va="center", fontsize=7)
    ax.set_xlim(-1.6, len(graph.ops) + 0.6)
    ax.set_ylim(0, max(graph.arena_size, 4) * 1.05)
    ax.axhline(graph.arena_size, color="k", ls="--", lw=0.8)
    ax.set_xticks(range(-1, len(graph.ops) + 1), ["in"] + [str(k) for k in range(len(graph.ops))] + ["out"])
    ax.set(xlabel="op (time)", ylabel="arena offset (bytes)",
           title=f"arena plan: {graph.arena_size} bytes, activations live from producer to last reader")
    fig.tight_layout()
    figs.append(_save(fig, out, "arena.png", "Arena plan"))
    plt.close(fig)

    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    _write_html(out, name, summary, figs, graph)
    summary["html"] = str(out / "index.html")
    return summary


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _save(fig, out: Path, fname: str, title: str):
    fig.savefig(out / fname, bbox_inches="tight")
    return fname, title


def _write_html(out: Path, name: str, s: dict, figs, graph) -> None:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{e['index']}</td><td>{esc(e['op'])}</td><td>{esc(str(e['layer'] or ''))}</td>"
        f"<td>{'x'.join(map(str, e['shape']))}</td><td>{e['macs']:,}</td><td>{e['scale']:.4g} / {e['zero_point']}</td>"
        f"<td>{'n/a' if e['sqnr_db'] is None else e['sqnr_db']}</td>"
        f"<td>{'n/a' if e['tflm_equal'] is None else ('yes' if e['tflm_equal'] else 'NO')}</td></tr>"
        for e in s["layers"])
    keys = [k for k in ("float_accuracy", "int8_accuracy", "int8_minus_float_points", "prediction_agreement",
                        "output_step", "margin_below_output_step",
                        "float_auc", "int8_auc", "threshold", "int8_tpr_at_threshold", "int8_fpr_at_threshold",
                        "bit_exact_with_tflm", "n_test", "macs", "blob_bytes", "tflite_bytes", "arena_bytes") if k in s]
    facts = "".join(f"<tr><th>{esc(k.replace('_', ' '))}</th><td>{esc(str(s[k]))}</td></tr>" for k in keys)
    imgs = "".join(f"<h2>{esc(t)}</h2><img src='{f}' alt='{esc(t)}'>" for f, t in figs)
    meta = esc(json.dumps(graph.meta, indent=1)[:4000])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgeloop report: {esc(name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}img{{max-width:100%;border:1px solid #eee}}
pre{{background:#f6f6f6;padding:8px;overflow:auto;max-height:300px}}</style></head><body>
<h1>edgeloop report: {esc(name)}</h1><table>{facts}</table>{imgs}
<h2>Layers</h2><p>SQNR: 10&middot;log10(&Sigma;float&sup2; / &Sigma;(float &minus; dequantized int8)&sup2;) of each op's output
over the test samples (the int8 run starts from the quantized input, so errors accumulate layer by layer).
"= TFLM": the int8 tensor equals tflite-micro's on the first test samples.</p>
<table><tr><th>#</th><th>op</th><th>Keras layer</th><th>output</th><th>MACs</th><th>scale / zp</th><th>SQNR dB</th><th>= TFLM</th></tr>{rows}</table>
<h2>Blob metadata (META)</h2><pre>{meta}</pre></body></html>"""
    (out / "index.html").write_text(page)


def text_summary(s: dict) -> str:
    lines = [f"{s['model']}: {s['n_test']} test samples, int8 bit-exact with tflite-micro: "
             f"{'yes' if s['bit_exact_with_tflm'] else 'NO'}"]
    if "int8_auc" in s:
        lines.append(f"  AUC float {s['float_auc']:.4f}  int8 {s['int8_auc']:.4f}"
                     + (f"  (threshold {s['threshold']:.4g}: TPR {s['int8_tpr_at_threshold']:.3f}, "
                        f"FPR {s['int8_fpr_at_threshold']:.3f})" if "threshold" in s else ""))
    else:
        fa = f"float {s['float_accuracy']:.4f}  " if "float_accuracy" in s else ""
        lines.append(f"  accuracy {fa}int8 {s['int8_accuracy']:.4f}"
                     + (f"  ({s['int8_minus_float_points']:+.2f} points)" if "int8_minus_float_points" in s else ""))
        if "margin_below_output_step" in s:
            lines.append(f"  int8 output step {s['output_step']:.4g}; {100 * s['margin_below_output_step']:.1f}% of "
                         "test samples have a float top-2 margin below it (they may flip class; label smoothing "
                         "narrows the logit range)")
    worst = [e for e in s["layers"] if e["sqnr_db"] is not None]
    if worst:
        w = min(worst, key=lambda e: e["sqnr_db"])
        lines.append(f"  per-layer SQNR {min(e['sqnr_db'] for e in worst):.1f}..{max(e['sqnr_db'] for e in worst):.1f} dB "
                     f"(lowest: op {w['index']} {w['op']})")
    lines.append(f"  {s['macs']:,} MACs, blob {s['blob_bytes']} bytes (.tflite {s['tflite_bytes']}), "
                 f"arena {s['arena_bytes']} bytes")
    return "\n".join(lines)


def report_cli(args) -> int:
    from . import zoo
    from .data import DataError

    target = args.model
    if target.endswith(".keras"):
        from . import pipeline as P

        if not args.data:
            raise DataError(f"{target}: a .keras model needs --data (an .npz with x_test, y_test)")
        ds = P.load_dataset(args.data)
        model = P.load_keras(target)
        name = Path(target).stem
        if args.tflite:
            from .cli import _read_bytes

            tfl = _read_bytes(args.tflite)
            from .convert import convert

            elm = convert(tfl)
        else:
            tfl, elm = P.quantize_model(model, ds.x_train, labels=ds.labels)
        x_te, y_te, labels, task = ds.x_test, ds.y_test, ds.labels, "classification"
    else:
        name = Path(target).name
        if name not in zoo.names():
            raise DataError(f"{target}: not a zoo model ({', '.join(zoo.names())}) nor a .keras file")
        d = zoo.MODELS_DIR / name
        missing = [p for p in (d / f"{name}.keras", d / f"{name}.tflite", d / f"{name}.elm") if not p.exists()]
        if missing:
            raise DataError(f"{missing[0]}: missing; run `edgeloop zoo train {name}` first")
        import keras

        from . import train as T

        T.tf()
        model = keras.models.load_model(d / f"{name}.keras", compile=False)
        tfl = (d / f"{name}.tflite").read_bytes()
        elm = (d / f"{name}.elm").read_bytes()
        rd = zoo.recipe(name).report_data()
        x_te, y_te, labels, task = rd["x_test"], rd["y_test"], rd.get("labels"), rd.get("task", "classification")
    out = args.output or os.path.join("out", "report", name)
    s = build_report(name, model, tfl, elm, x_te, y_te, labels, task, out)
    print(text_summary(s))
    print(f"report: {s['html']}")
    return 0
