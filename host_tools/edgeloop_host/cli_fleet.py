"""`edgeloop fleet status | rollout` (issue 7): the command line over edgeloop_host.fleet."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .fleet import FleetError


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise FleetError(f"{path}: {e.strerror}") from None


def cmd_status(args) -> int:
    from .fleet import status

    st = status(args.broker, args.prefix)
    if args.json:
        print(json.dumps(st, indent=1))
        return 0 if st else 1
    if not st:
        print(f"no device has a health report on {args.prefix}/+/health at {args.broker}", file=sys.stderr)
        return 1
    print(f"{'device':14} {'online':6} {'ver':>4} {'sha256':12} {'slot':>4} {'self-test':9} {'confirmed':9} "
          f"{'uptime':>7}  last update / error")
    for d, h in st.items():
        last = h.get("last") or [None, ""]
        note = h.get("error") or (f"v{last[0]} {last[1]}" if last[0] else "")
        on = {True: "yes", False: "NO"}.get(h.get("online"), "?")
        print(f"{d:14} {on:6} {str(h.get('version')):>4} {str(h.get('sha'))[:12]:12} {str(h.get('slot')):>4} "
              f"{str(h.get('self_test')):9} {str(h.get('confirmed')):9} {str(h.get('uptime')) + ' s':>7}  {note}")
    return 0


def cmd_rollout(args) -> int:
    from .fleet import rollout
    from .ota.manifest import ManifestError, load_public_key

    blob = _read(args.model)
    mf = _read(args.manifest or str(Path(args.model).with_suffix(".mf")))
    devices = None
    if args.devices and args.devices != "discover":
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
        if not devices:
            raise FleetError("--devices: give a comma-separated list of device ids, or discover")
    try:
        pub = load_public_key(args.pubkey) if args.pubkey else None
    except ManifestError as e:
        raise FleetError(str(e)) from None
    r = rollout(args.broker, blob, mf, devices=devices, canary=args.canary, timeout=args.timeout,
                prefix=args.prefix, chunk=args.chunk, pubkey=pub, log=lambda s: print(s, flush=True))
    if args.json:
        print(json.dumps({k: v for k, v in r.__dict__.items()}, indent=1, default=str))
    if not r.ok:
        print(f"edgeloop: error: rollout {r.message}", file=sys.stderr)
        return 1
    return 0


def add_parsers(sub) -> None:
    f = sub.add_parser("fleet", help="devices' health over MQTT; staged OTA rollout with canaries")
    fs = f.add_subparsers(dest="fleet_command", required=True)

    def common(p):
        p.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
        p.add_argument("--prefix", default="edgeloop", help="topic prefix (default: edgeloop)")
        p.add_argument("--json", action="store_true")

    s = fs.add_parser("status", help="every device's last (retained) health report")
    common(s)
    s.set_defaults(func=cmd_status)

    r = fs.add_parser("rollout", help="send MODEL to a canary group, then to the rest; halt and roll the "
                                      "canaries back if one fails")
    r.add_argument("model")
    r.add_argument("--manifest", help="signed manifest (default: MODEL with .mf)")
    common(r)
    r.add_argument("--canary", default="10%", help="canary share: 10%% or 0.1 (at least one device)")
    r.add_argument("--devices", default="discover",
                   help="comma-separated device ids, or discover (every device with a health report)")
    r.add_argument("--timeout", type=float, default=60.0, help="seconds each group gets to report")
    r.add_argument("--chunk", type=int, default=4096, help="bytes per MQTT chunk of the blob")
    r.add_argument("--pubkey", help="check the manifest's signature here first")
    r.set_defaults(func=cmd_rollout)
