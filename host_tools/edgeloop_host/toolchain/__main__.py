"""python -m edgeloop_host.toolchain build [all|unix|qemu-arm|natmod-*|source] ... | paths"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import ALL, RECIPES, BuildError, Toolchain, source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgeloop_host.toolchain",
                                 description="Fetch MicroPython and build edgeloop firmware/natmods "
                                             "(cached by input hash).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build targets (default: all)")
    b.add_argument("targets", nargs="*", default=["all"],
                   choices=["all", "source", *ALL], metavar="TARGET",
                   help="all | source | " + " | ".join(ALL))
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    sub.add_parser("paths", help="print cache / source / artifact paths as JSON")
    a = ap.parse_args(argv)
    tc = Toolchain()
    try:
        if a.cmd == "paths":
            builds = {}
            for n in ALL:
                try:
                    key, _ = tc.key(n)
                    out = tc.output_dir(n, key)
                    art = out / RECIPES[n].output.rsplit("/", 1)[-1]
                    builds[n] = {"path": str(art), "built": art.is_file(), "key": key[:16],
                                 "description": RECIPES[n].description}
                except BuildError as e:
                    builds[n] = {"path": None, "built": False, "error": str(e)}
            src = source.source_dir(tc.cache)
            print(json.dumps({"repo": str(tc.repo), "cache": str(tc.cache),
                              "micropython_version": source.MICROPYTHON_VERSION,
                              "micropython_source": str(src),
                              "micropython_source_ready": (src / ".edgeloop-source-ok").is_file(),
                              "builds": builds}, indent=2))
            return 0
        t0 = time.monotonic()
        targets = list(dict.fromkeys(ALL if "all" in a.targets else a.targets))
        if "source" in a.targets or "all" in a.targets:
            print(tc.micropython_source())
        names = [t for t in targets if t != "source"]
        if names:
            if a.force:
                results = [tc.build(n, force=True) for n in names]
            else:
                results = tc.build_many(names, skip_missing_natmod="all" in a.targets)
            for r in results:
                print(f"{r.name}\t{'cached' if r.cached else f'built {r.seconds:.1f}s'}\t{r.path}")
        print(f"edgeloop: toolchain done in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        return 0
    except BuildError as e:
        print(f"edgeloop: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
