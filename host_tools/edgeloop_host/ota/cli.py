"""The OTA subcommands of `edgeloop` (issue 6): keys, sign, ota (push/boot/status/break), serve."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class OTAUserError(ValueError):
    """A one-line CLI error (cli.main prints ValueErrors as `edgeloop: error: ...`, exit status 1)."""


def _user_error(msg: str):
    return OTAUserError(msg)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise _user_error(f"{path}: {e.strerror}") from None


def _parse_expiry(s: str | None) -> int:
    """Unix seconds, or +DAYSd / +HOURSh from now, or an ISO date (UTC)."""
    if not s:
        return 0
    import datetime as dt

    try:
        if s.startswith("+") and s[-1] in "dh":
            n = float(s[1:-1])
            return int(time.time() + n * (86400 if s[-1] == "d" else 3600))
        if s.isdigit():
            return int(s)
        d = dt.datetime.fromisoformat(s)
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
        return int(d.timestamp())
    except ValueError:
        raise _user_error(f"--expires {s!r}: give Unix seconds, +30d / +12h, or an ISO date") from None


def cmd_keys(args) -> int:
    from .manifest import generate_keys, key_id, load_public_key

    priv, pub = generate_keys(args.output)
    raw = load_public_key(pub)
    print(f"wrote {priv} (private: keep it off the devices) and {pub} (public, key id {key_id(raw).hex()})")
    return 0


def cmd_sign(args) -> int:
    from .manifest import load_private_key, make_manifest

    blob = _read(args.model)
    key = load_private_key(args.key)
    m = make_manifest(blob, key, args.version, min_runtime=args.min_runtime,
                      expiry=_parse_expiry(args.expires))
    out = args.output or str(Path(args.model).with_suffix(".mf"))
    Path(out).write_bytes(m.encode())
    exp = f", expires {m.expiry}" if m.expiry else ""
    print(f"wrote {out}: model {m.model_id} version {m.version}, {m.size} bytes, sha256 "
          f"{m.sha256.hex()[:16]}..., key id {m.key_id.hex()}{exp}")
    return 0


def _connect(args):
    from ..targets import TargetError

    try:
        if args.port:
            from ..targets import SerialTarget

            return SerialTarget(args.port)
        from .. import emulators

        return emulators.connect(args.board)
    except TargetError as e:
        raise _user_error(str(e).splitlines()[0]) from None


def _errors(fn):
    def run(args):
        from ..targets import TargetError
        from .push import PushError

        try:
            return fn(args)
        except (PushError, TargetError) as e:
            raise _user_error(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    return run


@_errors
def cmd_ota_push(args) -> int:
    from .manifest import load_public_key
    from .push import boot, describe_boot, ensure_runtime, push

    blob, manifest = _read(args.model), _read(args.manifest)
    t = _connect(args)
    try:
        pub = load_public_key(args.pubkey) if args.pubkey else None
        if args.install_runtime or pub is not None:
            ensure_runtime(t, pub, install=args.install_runtime)

        def progress(off, n):
            print(f"\r  {off}/{n} bytes", end="", file=sys.stderr, flush=True)

        r = push(t, blob, manifest, chunk=args.chunk, progress=None if args.quiet else progress)
        if not args.quiet:
            print(file=sys.stderr)
        for line in r.log:
            print(line)
        print(f"sent version {r.version} ({r.size} bytes, {r.chunks} chunk{'s' if r.chunks != 1 else ''}) in {r.seconds:.1f} s; "
              "verified on the board (size, SHA-256, signature, format): pending, tried on the next boot")
        if args.boot:
            print(describe_boot(boot(t)))
    finally:
        t.close()
    return 0


@_errors
def cmd_ota_boot(args) -> int:
    from .push import boot, describe_boot

    t = _connect(args)
    try:
        print(describe_boot(boot(t)))
    finally:
        t.close()
    return 0


@_errors
def cmd_ota_status(args) -> int:
    import json

    from .push import status

    t = _connect(args)
    try:
        print(json.dumps(status(t), indent=1))
    finally:
        t.close()
    return 0


def cmd_ota_break(args) -> int:
    from .faults import break_model

    Path(args.output).write_bytes(break_model(_read(args.model), args.version))
    print(f"wrote {args.output}: loads, but fails its self-test")
    return 0


def cmd_serve(args) -> int:
    from .serve import index, serve

    srv = serve(args.dir, args.bind, args.port)
    items = index(Path(args.dir))
    print(f"serving {args.dir} on http://{args.bind}:{srv.server_address[1]}/ "
          f"({len(items)} manifests: {', '.join(i['name'] + ' v' + str(i['version']) for i in items)})",
          flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


def _board_args(p):
    g = p.add_mutually_exclusive_group(required=True)
    from ..targets import BOARDS

    g.add_argument("--board", choices=tuple(BOARDS),
                   help="an emulated board: the running one (`edgeloop emulate`), else one started in the background")
    g.add_argument("--port", help="serial port of a board (e.g. /dev/ttyUSB0, or an emulator's /dev/pts/N)")


def add_parsers(sub) -> None:
    k = sub.add_parser("keys", help="OTA signing keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kg = ksub.add_parser("generate", help="write NAME.key (private) and NAME.pub (public)")
    kg.add_argument("output", nargs="?", default="edgeloop", help="file stem (default: edgeloop)")
    kg.set_defaults(func=cmd_keys)

    s = sub.add_parser("sign", help="signed OTA manifest for a blob (docs/OTA.md)")
    s.add_argument("model")
    s.add_argument("--key", required=True, help="private key from `edgeloop keys generate`")
    s.add_argument("--version", type=int, help="model version (must equal the blob's; default: the blob's)")
    s.add_argument("--min-runtime", default="0.1.0", help="oldest device runtime that may run it")
    s.add_argument("--expires", help="Unix seconds, +30d / +12h, or an ISO date (default: never)")
    s.add_argument("-o", "--output", help="manifest path (default: MODEL with .mf)")
    s.set_defaults(func=cmd_sign)

    o = sub.add_parser("ota", help="over-the-air model updates over serial")
    osub = o.add_subparsers(dest="ota_command", required=True)
    op = osub.add_parser("push", help="send MODEL + MANIFEST (chunked, resumable); the board verifies it")
    op.add_argument("model")
    op.add_argument("manifest")
    _board_args(op)
    op.add_argument("--chunk", type=int, default=4096)
    op.add_argument("--boot", action="store_true", help="then reboot into it (self-test: confirm or roll back)")
    op.add_argument("--pubkey", help="provision this public key if the board has none")
    op.add_argument("--install-runtime", action="store_true", help="copy device/edgeloop to the board first")
    op.add_argument("-q", "--quiet", action="store_true")
    op.set_defaults(func=cmd_ota_push)
    ob = osub.add_parser("boot", help="soft-reset the board and load its model as at start-up")
    _board_args(ob)
    ob.set_defaults(func=cmd_ota_boot)
    os_ = osub.add_parser("status", help="the board's OTA state record and download in progress")
    _board_args(os_)
    os_.set_defaults(func=cmd_ota_status)
    ok = osub.add_parser("break", help="write a copy of MODEL that loads but fails its self-test")
    ok.add_argument("model")
    ok.add_argument("-o", "--output", required=True)
    ok.add_argument("--version", type=int)
    ok.set_defaults(func=cmd_ota_break)

    v = sub.add_parser("serve", help="HTTP server for boards that pull updates (NAME.elm + NAME.mf)")
    v.add_argument("dir")
    v.add_argument("--port", type=int, default=8080)
    v.add_argument("--bind", default="127.0.0.1")
    v.set_defaults(func=cmd_serve)


__all__ = ["add_parsers", "argparse"]
