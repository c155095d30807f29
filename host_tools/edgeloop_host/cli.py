"""`edgeloop`: the host command line. Each subcommand is a thin shell over a module's Python API."""
from __future__ import annotations

import argparse
import sys

import numpy as np


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 1."""


def _load_inputs(path: str) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: not a readable .npy file ({e})") from None
    if x.dtype != np.int8:
        raise UserError(f"{path}: inputs must be int8, got {x.dtype}")
    if x.ndim < 2:
        raise UserError(f"{path}: inputs must have shape (N, *input_shape), got {x.shape}")
    return x


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None


def cmd_convert(args) -> int:
    from .convert import convert

    meta = {"labels": args.labels.split(",")} if args.labels else None
    data = convert(_read_bytes(args.input), args.output, model_id=args.model_id,
                   model_version=args.model_version, meta=meta, sparse_mode=args.sparse)
    print(f"wrote {args.output} ({len(data)} bytes)")
    return 0


def cmd_run(args) -> int:
    from .run import run_on_target

    model = _read_bytes(args.model)
    x = _load_inputs(args.inputs)
    y, used = run_on_target(model, x, args.target, args.backend)
    np.save(args.output, y)
    print(f"{len(y)} inferences on {args.target} ({used}) -> {args.output}", file=sys.stderr)
    return 0


def cmd_inspect(args) -> int:
    from .inspect import describe
    from . import blob

    print(describe(blob.decode(_read_bytes(args.model)), len(_read_bytes(args.model))))
    return 0


def cmd_emulate(args) -> int:
    from .cli_boards import cmd_emulate as _emulate

    return _emulate(args)


def cmd_diag(args) -> int:
    from .cli_boards import cmd_diag as _diag

    return _diag(args)


def cmd_demo(args) -> int:
    if args.what == "loop":  # issue 7: the drift demo
        from .demo_loop import cmd_demo_loop

        args.epochs = 40 if args.epochs is None else args.epochs
        return cmd_demo_loop(args)
    from .demo import main as demo_main

    return demo_main(epochs=60 if args.epochs is None else args.epochs, board=args.board)


def cmd_package(args) -> int:
    from .package import main as package_main

    return package_main(args.rest)


def cmd_toolchain(args) -> int:
    from .toolchain.__main__ import main as tc_main

    return tc_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    from .run import BACKENDS, TARGETS
    from .targets import BOARDS

    p = argparse.ArgumentParser(prog="edgeloop", description="int8 ML on MicroPython microcontrollers")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="full-int8 .tflite -> .elm blob")
    c.add_argument("input")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--model-id", type=int, default=0)
    c.add_argument("--model-version", type=int, default=1)
    c.add_argument("--labels", help="comma-separated class labels stored in the blob")
    c.add_argument("--sparse", choices=("auto", "never", "always"), default="auto",
                   help="sparse weights for FULLY_CONNECTED / 1x1 CONV_2D: auto (where it saves >= 20%% of "
                        "the layer's bytes), never, always")
    c.set_defaults(func=cmd_convert)

    r = sub.add_parser("run", help="run a blob on a target, int8 .npy in and out")
    r.add_argument("model")
    r.add_argument("--inputs", required=True, help="int8 .npy of shape (N, *input_shape)")
    r.add_argument("-o", "--output", required=True)
    r.add_argument("--target", choices=TARGETS, default="host")
    r.add_argument("--backend", choices=BACKENDS, default="auto")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("inspect", help="print a blob's layers, shapes, quantization and sizes")
    i.add_argument("model")
    i.set_defaults(func=cmd_inspect)

    e = sub.add_parser("emulate", help="start an emulated board and print how to connect to it")
    e.add_argument("--board", default="qemu-arm", choices=tuple(BOARDS))
    e.add_argument("--background", action="store_true", help="keep it running after this command returns")
    e.add_argument("--stop", action="store_true", help="stop the running one")
    e.add_argument("--status", action="store_true", help="is it running, and on which pty")
    e.add_argument("--icount", action="store_true", help="qemu -icount shift=0 (ticks count instructions)")
    e.set_defaults(func=cmd_emulate)

    g = sub.add_parser("diag", help="firmware, runtime, heap, filesystem and model state of a board")
    g.add_argument("--board", default="qemu-arm", choices=("unix", "stock", *BOARDS),
                   help="an emulated board (the running one if any, else a fresh one), or unix / stock")
    g.add_argument("--port", help="a real board's serial port (runtime deployed with `edgeloop deploy`)")
    g.add_argument("--model", help="copy this .elm to the board, load, self-test and run it first")
    g.add_argument("--runs", type=int, default=20)
    g.add_argument("--backend", choices=BACKENDS)
    g.add_argument("--profile", action="store_true",
                   help="also time each op of the model (--runs calls each; edgeloop.profile on the board)")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_diag)

    d = sub.add_parser("demo", help="train, quantize, convert, verify against TFLM, run on an emulated board; "
                                    "`demo loop`: the drift -> collect -> retrain -> rollout loop (issue 7)")
    d.add_argument("what", nargs="?", choices=("loop",), help="loop: the drift demo (edgeloop_host.demo_loop)")
    d.add_argument("--epochs", type=int, default=None, help="training epochs (demo 60, loop 40)")
    d.add_argument("--board", default="qemu-arm")
    d.add_argument("--devices", type=int, default=4, help="loop: simulated devices (unix-port processes)")
    d.add_argument("--stream", type=int, default=400, help="loop: shifted images each device runs")
    d.add_argument("--out", default="out/demo_loop", help="loop: work and result directory")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)

    k = sub.add_parser("package", help="precompile the device runtime (.mpy per arch) + package.json for mip")
    k.add_argument("rest", nargs=argparse.REMAINDER)
    k.set_defaults(func=cmd_package)

    t = sub.add_parser("toolchain", help="fetch MicroPython and build firmware / natmods (cached)")
    t.add_argument("rest", nargs=argparse.REMAINDER)
    t.set_defaults(func=cmd_toolchain)

    from .ota.cli import add_parsers as add_ota_parsers  # keys, sign, ota, serve (issue 6)
    add_ota_parsers(sub)

    from .cli_boards import add_parsers as add_board_parsers  # deploy, repl, image, flash (issue 8)
    add_board_parsers(sub)
    from .cli_pipeline import add_parsers  # train, distill, prune, quantize, report, zoo (issue 4)
    add_parsers(sub)
    from .logs import add_parsers as add_logs_parsers  # logs pull (issue 7)
    add_logs_parsers(sub)
    from .collect import add_parsers as add_collect_parsers  # collect (issue 7)
    add_collect_parsers(sub)
    from .cli_fleet import add_parsers as add_fleet_parsers  # fleet status / rollout (issue 7)
    add_fleet_parsers(sub)
    from .retrain import add_parsers as add_retrain_parsers  # retrain (issue 7)
    add_retrain_parsers(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .blob import BlobError
    from .run import DeviceError

    try:
        return args.func(args) or 0
    except (UserError, BlobError, DeviceError) as e:
        print(f"edgeloop: error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # importer / converter input problems
        print(f"edgeloop: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
