"""Arena memory planner: greedy-by-size placement of activation tensors by lifetime.

Time is the op index. A tensor is live from the op that writes it (graph inputs: from before op 0) to the
last op that reads it (graph outputs: until after the last op). An op's inputs and output are live during
the op, so they never share bytes. Offsets are 4-byte aligned. Reshape views (Tensor.alias_of) are placed
on the bytes of the tensor they alias, whose lifetime covers every use of its views.
"""
from __future__ import annotations

from . import ir

ALIGN = 4


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def op_io(op: ir.Op) -> tuple[list[int], list[int]]:
    """(activation inputs, outputs) tensor indices of an op (ADD reads two)."""
    if op.opcode not in ir.OP_IO:
        raise ValueError(f"planner: unknown op {op.name}")
    return op.inputs(), op.outputs()


def lifetimes(graph: ir.Graph) -> dict[int, tuple[int, int]]:
    """{buffer: (first, last)} inclusive op-index interval during which the buffer is live.

    A buffer is an activation that owns its bytes (`alias_of` None); a reshape view counts as a use of
    the buffer it aliases (graph.buffer_of).
    """
    n = len(graph.ops)
    start: dict[int, int] = {}
    end: dict[int, int] = {}
    for i in graph.inputs:
        b = graph.buffer_of(i)
        start[b] = -1
        end[b] = -1
    for k, op in enumerate(graph.ops):
        ins, outs = op_io(op)
        for i in ins + outs:
            if graph.tensors[i].is_const:
                continue
            b = graph.buffer_of(i)
            start.setdefault(b, k)
            end[b] = max(end.get(b, k), k)
    for i in graph.outputs:
        b = graph.buffer_of(i)
        start.setdefault(b, n)
        end[b] = n
    return {i: (start[i], end[i]) for i in start}


def plan_arena(graph: ir.Graph) -> None:
    """Sets Tensor.arena_offset for every activation and graph.arena_size."""
    life = lifetimes(graph)
    order = sorted(life, key=lambda i: (-graph.tensors[i].nbytes, life[i][0], i))
    placed: list[tuple[int, int, int]] = []  # (offset, end_offset, tensor)
    size = 0
    for i in order:
        t = graph.tensors[i]
        s, e = life[i]
        busy = sorted((o, oe) for (o, oe, j) in placed if not (life[j][1] < s or e < life[j][0]))
        offset = 0
        for o, oe in busy:
            if offset + t.nbytes <= o:
                break
            offset = max(offset, _align(oe))
        t.arena_offset = offset
        placed.append((offset, offset + t.nbytes, i))
        size = max(size, offset + t.nbytes)
    for i, t in enumerate(graph.tensors):  # views share their buffer's bytes
        if not t.is_const and t.alias_of is not None:
            b = graph.tensors[graph.buffer_of(i)]
            if b.nbytes != t.nbytes:
                raise ValueError(f"view '{t.name}' ({t.nbytes} bytes) of '{b.name}' ({b.nbytes} bytes) "
                                 "changes the size")
            t.arena_offset = b.arena_offset
    graph.arena_size = _align(size)


def verify_plan(graph: ir.Graph) -> None:
    """Raises ValueError if two simultaneously live activations overlap or one leaves the arena."""
    life = lifetimes(graph)
    items = sorted(life)
    for a, ta in enumerate(graph.tensors):
        if ta.is_const:
            continue
        if ta.arena_offset % ALIGN or ta.arena_offset < 0 or ta.arena_offset + ta.nbytes > graph.arena_size:
            raise ValueError(f"tensor {a} '{ta.name}' at {ta.arena_offset}+{ta.nbytes} is misaligned "
                             f"or outside the arena ({graph.arena_size})")
        b = graph.tensors[graph.buffer_of(a)]
        if (b.arena_offset, b.nbytes) != (ta.arena_offset, ta.nbytes):
            raise ValueError(f"view {a} '{ta.name}' does not sit on the bytes of the tensor it aliases")
    for x, a in enumerate(items):
        for b in items[x + 1:]:
            (sa, ea), (sb, eb) = life[a], life[b]
            if ea < sb or eb < sa:
                continue
            ta, tb = graph.tensors[a], graph.tensors[b]
            if ta.arena_offset < tb.arena_offset + tb.nbytes and tb.arena_offset < ta.arena_offset + ta.nbytes:
                raise ValueError(f"tensors {a} '{ta.name}' and {b} '{tb.name}' are live together "
                                 "but overlap in the arena")
