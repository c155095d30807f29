"""Human-readable summary of a decoded blob: layers, shapes, quantization, bytes, MACs."""
from __future__ import annotations

import numpy as np

from . import ir


def op_macs(graph: ir.Graph, op: ir.Op) -> int:
    """Multiply-accumulates of one inference of the op (0 for pools, MEAN, ADD, SOFTMAX, LOGISTIC)."""
    if op.opcode == ir.FULLY_CONNECTED:
        w = graph.tensors[op.tensors[1]]
        x = graph.tensors[op.tensors[0]]
        return int(np.prod(w.shape)) * (int(np.prod(x.shape)) // w.shape[1])
    if op.opcode in (ir.CONV_2D, ir.DEPTHWISE_CONV_2D):
        f = graph.tensors[op.tensors[1]].shape  # CONV: [C_out, KH, KW, C_in]; DW: [1, KH, KW, C_out]
        y = graph.tensors[op.tensors[3]].shape  # [1, H, W, C_out]
        positions = int(np.prod(y[:-1]))
        return positions * int(np.prod(f[1:])) * (int(f[0]) if op.opcode == ir.CONV_2D else 1)
    return 0


def op_const_bytes(graph: ir.Graph, op: ir.Op) -> int:
    """Bytes of the op's constants as stored in the blob (sparse weights: their encoded stream)."""
    from .sparse import stored_nbytes

    return sum(stored_nbytes(graph.tensors[i]) for i in op.tensors if i >= 0 and graph.tensors[i].is_const)


def op_weight_encoding(graph: ir.Graph, op: ir.Op) -> str:
    """"dense" or "sparse" and the weights' zero fraction, e.g. "sparse  75%", for ops with weights."""
    words = ir.OP_LAYOUTS[op.opcode][0]
    word = "weights" if "weights" in words else ("filter" if "filter" in words else None)
    if word is None:
        return ""
    t = graph.tensors[op.tensor(word)]
    return f"{ir.ENCODING_NAMES[t.encoding]:<6} {100 * float(np.mean(t.data == 0)):3.0f}%"


def describe(graph: ir.Graph, blob_size: int) -> str:
    x, y = graph.input(), graph.output()
    lines = [
        f"model id {graph.model_id} version {graph.model_version}, {blob_size} bytes, "
        f"arena {graph.arena_size} bytes",
        f"input  {x.shape} int8 scale {x.scale:.6g} zero point {x.zero_point}",
        f"output {y.shape} int8 scale {y.scale:.6g} zero point {y.zero_point}",
    ]
    if graph.meta.get("labels"):
        lines.append("labels " + ", ".join(map(str, graph.meta["labels"])))
    pre = graph.meta.get("input", {}).get("preprocess")
    if isinstance(pre, dict) and pre.get("description"):
        lines.append(f"preprocess {pre['description']}")
    an = graph.meta.get("anomaly")
    if isinstance(an, dict) and "threshold" in an:
        lines.append(f"anomaly threshold {an['threshold']:.6g} on {an.get('score', 'score')}")
    st = graph.meta.get("train_stats")
    if isinstance(st, dict) and "mean" in st:
        lines.append(f"train stats (int8, n={st.get('n')}) per {st.get('axis')}: {len(st['mean'])} means/stds")
    if graph.self_test is not None:
        lines.append("self-test vector: yes")
    lines.append(f"{'#':>2}  {'op':<17} {'in':<11} {'out':<11} {'quant':<12} {'params':<22} {'enc  zeros':<11} "
                 f"{'bytes':>7} {'MACs':>8}")
    total_macs = 0
    for i, op in enumerate(graph.ops):
        t_in, t_out = graph.tensors[op.inputs()[0]], graph.tensors[op.outputs()[0]]
        a = op.attrs
        if "multiplier" in ir.OP_LAYOUTS[op.opcode][0]:
            nq = graph.tensors[op.tensor("multiplier")].shape[0]
            quant = "per-tensor" if nq == 1 else f"per-chan {nq}"
        else:
            quant = f"s {t_out.scale:.3g}"
        params = []
        if op.opcode in (ir.CONV_2D, ir.DEPTHWISE_CONV_2D):
            f = graph.tensors[op.tensor("filter")].shape
            params.append(f"k{f[1]}x{f[2]} s{a['stride_h']}x{a['stride_w']}")
            if a["dilation_h"] != 1 or a["dilation_w"] != 1:
                params.append(f"d{a['dilation_h']}x{a['dilation_w']}")
            if a["pad_top"] or a["pad_left"]:
                params.append(f"p{a['pad_top']},{a['pad_left']}")
            if op.opcode == ir.DEPTHWISE_CONV_2D and a["depth_multiplier"] != 1:
                params.append(f"m{a['depth_multiplier']}")
        elif op.opcode in (ir.AVERAGE_POOL_2D, ir.MAX_POOL_2D):
            params.append(f"k{a['filter_h']}x{a['filter_w']} s{a['stride_h']}x{a['stride_w']}")
            if a["pad_top"] or a["pad_left"]:
                params.append(f"p{a['pad_top']},{a['pad_left']}")
        elif op.opcode == ir.ADD:
            t_b = graph.tensors[op.inputs()[1]]
            params.append(f"+ {'x'.join(map(str, t_b.shape))}")
        if "act_min" in a and (a["act_min"] != -128 or a["act_max"] != 127):
            params.append(f"[{a['act_min']},{a['act_max']}]")
        macs = op_macs(graph, op)
        total_macs += macs
        lines.append(f"{i:>2}  {op.name:<17} {'x'.join(map(str, t_in.shape)):<11} "
                     f"{'x'.join(map(str, t_out.shape)):<11} {quant:<12} {' '.join(params):<22} "
                     f"{op_weight_encoding(graph, op):<11} {op_const_bytes(graph, op):>7} {macs:>8}")
    lines.append(f"total {total_macs} MACs")
    if any(t.encoding for t in graph.tensors):
        lines.append("sparse weights: encoding 1 (needs runtime feature 0x1, docs/FORMAT.md)")
    return "\n".join(lines)
