"""`edgeloop deploy | repl | image | flash`, and the board side of `diag` / `emulate` (issue 8).

A board is named either by `--port PORT` (a real board's serial port, or any pty) or by
`--board qemu-arm|qemu-rv32|qemu-m0` (an emulated board: the running one, see emulators.py).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .cli import UserError


def _emulated() -> tuple[str, ...]:
    from .targets import BOARDS

    return tuple(BOARDS)


def _board_dirs() -> tuple[str, ...]:
    from .boards import board_names

    return board_names()


def _open(args, start: bool = True):
    """SerialTarget for --port, or for the running emulated --board (started if `start`)."""
    from . import emulators
    from .targets import SerialTarget, TargetError

    try:
        if args.port:
            return SerialTarget(args.port, name=args.port, baudrate=getattr(args, "baud", 115200))
        return emulators.connect(args.board, start=start)
    except TargetError as e:
        raise UserError(str(e)) from None


def _mpremote() -> str:
    cand = Path(sys.executable).with_name("mpremote")
    return str(cand) if cand.exists() else "mpremote"


# ---- deploy ---------------------------------------------------------------------------------

def cmd_deploy(args) -> int:
    from .deploy import DeployError, deploy
    from .targets import TargetError

    for f in (args.model, args.manifest, args.pubkey, args.natmod):
        if f and not Path(f).is_file():
            raise UserError(f"{f}: no such file")
    paths = None
    if args.board_config:
        from .boards import load_board

        paths = load_board(args.board_config)["paths"]
    t = _open(args)
    try:
        rep = deploy(t, model=args.model, manifest=args.manifest, pubkey=args.pubkey, natmod=args.natmod,
                     paths=paths, log=lambda m: print(f"edgeloop: {m}", file=sys.stderr, flush=True))
    except (DeployError, TargetError) as e:
        raise UserError(str(e)) from None
    finally:
        t.close()
    print(rep.summary())
    if rep.model_ok is False:
        return 1
    return 0


# ---- diag -----------------------------------------------------------------------------------

def cmd_diag(args) -> int:
    from . import emulators
    from .diag import as_json, fetch, format_diag
    from .targets import TargetError, open_target

    def _read(p):
        try:
            return Path(p).read_bytes()
        except OSError as e:
            raise UserError(f"{p}: {e.strerror}") from None

    profile = getattr(args, "profile", False)
    if profile and args.runs < 1:
        raise UserError("--profile needs --runs >= 1")
    try:
        if args.port or (args.board in _emulated() and emulators.running(args.board)):
            # a deployed board: report what is on it (the deployed model, if any)
            t = _open(args, start=False)
            try:
                remote = None
                if args.model:
                    t.put_bytes(_read(args.model), "el_diag_model.elm")
                    remote = "el_diag_model.elm"
                elif t.eval("__import__('os').stat('model.elm')[6] if 'model.elm' in __import__('os').listdir() else 0"):
                    remote = "model.elm"
                if profile and remote is None:
                    raise UserError("--profile needs a model: --model M.elm, or one deployed as model.elm")
                try:
                    d = fetch(t, remote, runs=args.runs, backend=args.backend, profile=profile)
                except TargetError as e:
                    if "ImportError" in str(e) and "edgeloop" in str(e):
                        raise UserError(f"the edgeloop runtime is not on the board: run `edgeloop deploy "
                                        f"{'--port ' + args.port if args.port else '--board ' + args.board}` first") from None
                    raise
            finally:
                t.close()
        else:
            # unix / stock, or an emulated board that is not running: a fresh one with the runtime
            if profile and not args.model:
                raise UserError("--profile needs a model: --model M.elm")
            with open_target(args.board) as t:
                t.install_runtime()
                remote = None
                if args.model:
                    t.put_bytes(_read(args.model), "el_diag_model.elm")
                    remote = "el_diag_model.elm"
                d = fetch(t, remote, runs=args.runs, backend=args.backend, profile=profile)
    except TargetError as e:
        raise UserError(str(e)) from None
    print(as_json(d) if args.json else format_diag(d))
    return 0


# ---- repl / emulate -------------------------------------------------------------------------

def cmd_repl(args) -> int:
    """mpremote's REPL on the board (Ctrl-] or Ctrl-X leaves it)."""
    from . import emulators

    if args.port:
        port = args.port
    else:
        info = emulators.running(args.board)
        if info is None:
            info = emulators.start_background(args.board)
            print(f"edgeloop: started {args.board} in the background ({info['pty']}); stop it with "
                  f"`edgeloop emulate --board {args.board} --stop`", file=sys.stderr)
        port = info["pty"]
    cmd = [_mpremote(), "connect", port, "repl", *args.rest]
    print(f"edgeloop: {' '.join(cmd)}  (Ctrl-] or Ctrl-X to leave)", file=sys.stderr, flush=True)
    return subprocess.call(cmd)


def cmd_emulate(args) -> int:
    from . import emulators
    from .targets import TargetError

    try:
        if args.stop:
            stopped = emulators.stop(args.board)
            print(f"{args.board}: {'stopped' if stopped else 'was not running'}")
            return 0
        if args.status:
            info = emulators.running(args.board)
            print(f"{args.board}: running, pid {info['pid']}, mpremote connect {info['pty']}" if info
                  else f"{args.board}: not running")
            return 0
        if args.background:
            info = emulators.start_background(args.board)
            print(f"mpremote connect {info['pty']}")
            print(f"  {args.board} runs in the background (qemu pid {info['pid']}); "
                  f"`edgeloop emulate --board {args.board} --stop` stops it")
            return 0
        return emulators.emulate(args.board, icount=args.icount)
    except TargetError as e:
        raise UserError(str(e)) from None


# ---- image / flash --------------------------------------------------------------------------

def cmd_image(args) -> int:
    from .image import ImageError, build_image

    try:
        res = build_image(args.board, args.firmware, args.output, model=args.model, manifest=args.manifest,
                          pubkey=args.pubkey, natmod=args.natmod, extra=args.add or ())
    except ImageError as e:
        raise UserError(str(e)) from None
    print(res.summary())
    return 0


def cmd_flash(args) -> int:
    from .image import ImageError, flash

    try:
        return flash(args.board, args.image, port=args.port, baud=args.baud, dry_run=args.dry_run)
    except ImageError as e:
        raise UserError(str(e)) from None


# ---- parsers --------------------------------------------------------------------------------

def _target_args(p, board_help: str) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", help="the board's serial port (e.g. /dev/ttyUSB0, /dev/ttyACM0, COM3)")
    g.add_argument("--board", choices=_emulated(), help=board_help)


def add_parsers(sub) -> None:
    d = sub.add_parser("deploy", help="copy runtime, natmod, model, manifest and key to a board (idempotent)")
    _target_args(d, "an emulated board (the running one; started in the background if none is)")
    d.add_argument("--model", help=".elm model -> model.elm on the board")
    d.add_argument("--manifest", help="its signed manifest (edgeloop sign) -> model.mf")
    d.add_argument("--pubkey", help="the OTA public key (edgeloop keys) -> ota/trust.pub")
    d.add_argument("--natmod", help="a natmod .mpy to use (e.g. xtensawin built with ESP-IDF); default: "
                                    "ours for the board's arch when the firmware has no _edgeloop")
    d.add_argument("--board-config", choices=_board_dirs(), help="take the file paths from this board.json")
    d.add_argument("--baud", type=int, default=115200)
    d.set_defaults(func=cmd_deploy)

    r = sub.add_parser("repl", help="mpremote's REPL on a board (pass-through)")
    _target_args(r, "an emulated board (the running one; started in the background if none is)")
    r.add_argument("rest", nargs=argparse.REMAINDER, help="more mpremote repl options")
    r.set_defaults(func=cmd_repl)

    i = sub.add_parser("image", help="flash image: firmware + littlefs with runtime, model, manifest, key")
    i.add_argument("--board", required=True, choices=_board_dirs())
    i.add_argument("--firmware", required=True,
                   help="MicroPython firmware: ESP32 .bin (bootloader+partitions+app, as released) or rp2 .uf2/.bin")
    i.add_argument("-o", "--output", required=True, help="flash.bin (ESP32) or flash.uf2 (RP2040)")
    i.add_argument("--model")
    i.add_argument("--manifest")
    i.add_argument("--pubkey")
    i.add_argument("--natmod", help="natmod .mpy for the board's arch (firmware without _edgeloop)")
    i.add_argument("--add", action="append", metavar="LOCAL=REMOTE", help="another file for the filesystem")
    i.set_defaults(func=cmd_image)

    f = sub.add_parser("flash", help="write an `edgeloop image` to a board (esptool), or say how (RP2040 UF2)")
    f.add_argument("--board", required=True, choices=_board_dirs())
    f.add_argument("--port", help="serial port (ESP32)")
    f.add_argument("--baud", type=int, default=460800)
    f.add_argument("--dry-run", action="store_true", help="print the esptool command instead of running it")
    f.add_argument("image")
    f.set_defaults(func=cmd_flash)
