"""`edgeloop logs pull`: copy a board's flash log (device/edgeloop/flashlog.py) over its serial REPL,
decode it into a data set and acknowledge what was saved, so the board frees those segments (issue 7).

    edgeloop logs pull --board qemu-arm -o DIR      # or --port /dev/ttyUSB0

Each pull writes DIR/log_<first>-<last>.npz with one row per record:
    seq (int64), kind ("S" sample, "M" summary, "?" other), t_ms, reason, x / y (int8, padded, with
    x_len / y_len), summary (the decoded summary as JSON, "" for other kinds), raw (the payload bytes, as
    a uint8 array with offsets)
Samples are the records of edgeloop.select.Sample.pack(), summaries those of edgeloop.summary
(edgeloop_host.records decodes both). The acknowledgement goes to the board only
after the file is written and fsync'ed: a pull cut short re-sends the same records next time (the
sequence numbers tell duplicates apart).
"""
from __future__ import annotations

import binascii
import json
import os
import struct
from pathlib import Path

import numpy as np

from .records import decode_sample, decode_summary  # noqa: F401  (decode_sample: its old home)

_DUMP = """\
from edgeloop import flashlog as _FL
import binascii as _B
_L = _FL.FlashLog(%(root)r)
print('EL-ACKED', _L.acked)
for _q, _p in _L.read(%(after)s):
    print('EL-R', _q, _B.hexlify(_p).decode())
print('EL-END', _L.next_seq)
_L.close()
"""

_ACK = """\
from edgeloop import flashlog as _FL
_L = _FL.FlashLog(%(root)r)
_L.ack(%(seq)d)
print('EL-ACK', _L.acked)
_L.close()
"""


def fetch(target, root: str = "log", after: int | None = None, timeout: float = 300.0) -> list[tuple[int, bytes]]:
    out = target.exec(_DUMP % {"root": root, "after": "None" if after is None else int(after)}, timeout=timeout)
    recs, ended = [], False
    for line in out.splitlines():
        if line.startswith("EL-R "):
            _, q, h = line.split(" ", 2)
            recs.append((int(q), binascii.unhexlify(h.strip())))
        elif line.startswith("EL-END"):
            ended = True
    if not ended:
        raise ValueError("logs pull: the board's answer ended early (no EL-END): nothing acknowledged")
    return recs


def write_dataset(recs: list[tuple[int, bytes]], out_dir: str | os.PathLike) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dec = [decode_sample(p) for _, p in recs]
    summ = [decode_summary(p) for _, p in recs]
    n = len(recs)
    xl = max([len(d["x"]) for d in dec if d] + [0])
    yl = max([len(d["y"]) for d in dec if d] + [0])
    x = np.zeros((n, xl), np.int8)
    y = np.zeros((n, yl), np.int8)
    x_len = np.zeros(n, np.int32)
    y_len = np.zeros(n, np.int32)
    for i, d in enumerate(dec):
        if d:
            x[i, :len(d["x"])] = np.frombuffer(d["x"], np.int8)
            y[i, :len(d["y"])] = np.frombuffer(d["y"], np.int8)
            x_len[i], y_len[i] = len(d["x"]), len(d["y"])
    raw = np.frombuffer(b"".join(p for _, p in recs), np.uint8)
    offsets = np.cumsum([0] + [len(p) for _, p in recs]).astype(np.int64)
    path = out_dir / f"log_{recs[0][0]}-{recs[-1][0]}.npz"
    tmp = path.with_suffix(".tmp.npz")
    with open(tmp, "wb") as f:
        np.savez(f, seq=np.array([q for q, _ in recs], np.int64),
                 kind=np.array(["S" if d else ("M" if m else "?") for d, m in zip(dec, summ)]),
                 t_ms=np.array([d["t_ms"] if d else (m["t_ms"] if m else 0) for d, m in zip(dec, summ)], np.int64),
                 summary=np.array([json.dumps(m) if m else "" for m in summ]),
                 reason=np.array([d["reason"] if d else "" for d in dec]),
                 x=x, y=y, x_len=x_len, y_len=y_len, raw=raw, raw_offsets=offsets)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def pull(target, out_dir, root: str = "log", ack: bool = True) -> dict:
    """Copies the records the board has not had acknowledged, writes them, then acknowledges them."""
    recs = fetch(target, root)
    if not recs:
        return {"records": 0, "path": None, "acked": None}
    path = write_dataset(recs, out_dir)
    acked = None
    if ack:
        out = target.exec(_ACK % {"root": root, "seq": recs[-1][0]})
        acked = int(out.split("EL-ACK", 1)[1].split()[0])
    return {"records": len(recs), "first": recs[0][0], "last": recs[-1][0], "path": str(path), "acked": acked,
            "samples": sum(1 for _, p in recs if decode_sample(p)),
            "summaries": sum(1 for _, p in recs if decode_summary(p))}


def cmd_logs_pull(args) -> int:
    from .cli import UserError
    from .cli_boards import _open
    from .targets import TargetError

    t = _open(args, start=False)
    try:
        r = pull(t, args.out, root=args.root, ack=not args.no_ack)
    except TargetError as e:
        if "ImportError" in str(e) and "flashlog" in str(e):
            raise UserError("the edgeloop runtime on the board has no flash log: run `edgeloop deploy` first") from None
        raise UserError(str(e)) from None
    finally:
        t.close()
    if not r["records"]:
        print("no new records on the board")
    else:
        print(f"{r['records']} records (seq {r['first']}..{r['last']}, {r['samples']} samples, {r['summaries']} summaries) -> {r['path']}"
              + (f"; acknowledged up to {r['acked']}" if r["acked"] is not None else "; not acknowledged"))
    return 0


def add_parsers(sub) -> None:
    from .cli_boards import _target_args

    lp = sub.add_parser("logs", help="the board's flash log (issue 7)")
    ls = lp.add_subparsers(dest="logs_command", required=True)
    p = ls.add_parser("pull", help="copy and decode the board's flash log into DIR, then acknowledge it")
    _target_args(p, "an emulated board (running, e.g. after `edgeloop deploy --board ...`)")
    p.add_argument("-o", "--out", required=True, help="output directory (one .npz per pull)")
    p.add_argument("--root", default="log", help="the log's directory on the board (default: log)")
    p.add_argument("--no-ack", action="store_true", help="copy without acknowledging (the board keeps the records)")
    p.set_defaults(func=cmd_logs_pull)
