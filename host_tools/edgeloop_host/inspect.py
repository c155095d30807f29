"""Human-readable summary of a decoded blob: layers, shapes, quantization, bytes, MACs."""
from __future__ import annotations

import numpy as np

from . import ir


def op_macs(graph: ir.Graph, op: ir.Op) -> int:
    """Multiply-accumulates of the conv / FC ops (0 for the others)."""
    if op.opcode == ir.FULLY_CONNECTED:
        w = graph.tensors[op.tensors[1]]
        x = graph.tensors[op.tensors[0]]
        return int(np.prod(w.shape)) * (int(np.prod(x.shape)) // w.shape[1])
    if op.opcode == ir.CONV_2D:
        f = graph.tensors[op.tensor("filter")]
        return int(np.prod(graph.tensors[op.tensor("output")].shape)) * int(np.prod(f.shape[1:]))
    if op.opcode == ir.DEPTHWISE_CONV_2D:
        f = graph.tensors[op.tensor("filter")]
        return int(np.prod(graph.tensors[op.tensor("output")].shape)) * f.shape[1] * f.shape[2]
    return 0


def op_const_bytes(graph: ir.Graph, op: ir.Op) -> int:
    return sum(graph.tensors[i].nbytes for i in op.tensors if i >= 0 and graph.tensors[i].is_const)


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
    lines.append(f"{'#':>2}  {'op':<17} {'in':<10} {'out':<10} {'quant':<12} {'clamp':<11} {'bytes':>7} {'MACs':>8}")
    total_macs = 0
    for i, op in enumerate(graph.ops):
        t_in, t_out = graph.tensors[op.inputs()[0]], graph.tensors[op.outputs()[0]]
        if op.opcode in (ir.FULLY_CONNECTED, ir.CONV_2D, ir.DEPTHWISE_CONV_2D):
            nq = graph.tensors[op.tensor("multiplier")].shape[0]
            quant = "per-tensor" if nq == 1 else f"per-chan {nq}"
        else:
            quant = "-"
        clamp = f"[{op.attrs['act_min']},{op.attrs['act_max']}]" if "act_min" in op.attrs else "-"
        macs = op_macs(graph, op)
        total_macs += macs
        lines.append(f"{i:>2}  {op.name:<17} {'x'.join(map(str, t_in.shape)):<10} "
                     f"{'x'.join(map(str, t_out.shape)):<10} {quant:<12} {clamp:<11} "
                     f"{op_const_bytes(graph, op):>7} {macs:>8}")
    lines.append(f"total {total_macs} MACs")
    return "\n".join(lines)
