"""`edgeloop diag`: run edgeloop.diag() on a board through mpremote and print it readably."""
from __future__ import annotations

import json

DIAG_CODE = """
import edgeloop, json
{load}
print('EL-DIAG', json.dumps(edgeloop.diag()))
"""

LOAD_CODE = """
m = edgeloop.load({path!r}{backend})
st = m.self_test() if m._self_test is not None else None
x = bytes(m.input_size)
for _ in range({runs}):
    m.predict(x)
print('EL-SELFTEST', st)
"""

# per-op ticks of the loaded model on the same zero input (edgeloop.profile: each op `runs` times)
PROFILE_CODE = """
from edgeloop import profile as _pf
print('EL-PROFILE', json.dumps(_pf.profile(m, x, {runs})))
"""


def fetch(target, model_path: str | None = None, runs: int = 20, backend: str | None = None,
          profile: bool = False) -> dict:
    """edgeloop.diag() from an open target; with model_path (on the board) load it, self-test it and run
    it `runs` times first so the latency figures mean something; with `profile` also time each of its
    ops `runs` times (d["profile"]: runs and [op name, MACs, microseconds per call] per op)."""
    if profile and runs < 1:
        raise ValueError("profiling needs runs >= 1")
    load = ""
    if model_path:
        load = LOAD_CODE.format(path=model_path, runs=runs, backend=f", {backend!r}" if backend else "")
        if profile:
            load += PROFILE_CODE.format(runs=runs)
    elif profile:
        raise ValueError("profiling needs a model")
    out = target.exec(DIAG_CODE.format(load=load), timeout=120 + (60 if profile else 0))
    d = json.loads(out.split("EL-DIAG", 1)[1].strip().splitlines()[0])
    for line in out.splitlines():
        if line.startswith("EL-SELFTEST"):
            d["self_test"] = {"True": True, "False": False}.get(line.split()[1])
        elif line.startswith("EL-PROFILE"):
            d["profile"] = {"runs": runs, "ops": [[op, macs, ticks / runs] for op, macs, ticks in
                                                  json.loads(line.split(None, 1)[1])]}
    return d


def format_diag(d: dict) -> str:
    fw, heap = d["firmware"], d["heap"]
    lines = [
        f"firmware    {fw['name']} {fw['version']} on {fw['machine']} (mpy {fw['mpy']}, {fw['platform']})",
        f"runtime     edgeloop {d['runtime']}; backends {', '.join(d['backends'])}"
        f"{'; C module: ' + d['c_module'] if d['c_module'] else '; no C module'}",
        f"heap        {heap['free']} B free, {heap['used']} B used, largest free block {heap['largest_free_block']} B",
    ]
    if d.get("fs"):
        fs = d["fs"]
        lines.append(f"filesystem  {fs['path']}: {fs['free']} B free of {fs['total']} B")
    m = d.get("model")
    if m:
        lat = m.get("latency_us")
        lat_s = f"{lat['min']}/{lat['median']}/{lat['max']} us (min/median/max)" if lat else "no runs yet"
        lines += [
            f"model       id {m['id']} version {m['version']}, {m['bytes']} B, arena {m['arena']} B, "
            f"backend {m['backend']}",
            f"            input {m['input_shape']} -> output {m['output_shape']}, {m['runs']} runs, latency {lat_s}",
        ]
        if "self_test" in d:
            lines.append(f"self-test   {'passed' if d['self_test'] else 'FAILED' if d['self_test'] is False else 'none'}")
        if "profile" in d:
            p = d["profile"]
            lines.append(f"profile     per op, microseconds per call over {p['runs']} calls "
                         f"(under qemu -icount, 1 us = 1000 instructions):")
            lines += [f"            {i:>2} {op:<17} {macs:>8} MACs {us:>10.1f} us"
                      for i, (op, macs, us) in enumerate(p["ops"])]
            lines.append(f"            {'':>2} {'sum':<17} {sum(o[1] for o in p['ops']):>8} MACs "
                         f"{sum(o[2] for o in p['ops']):>10.1f} us")
    else:
        lines.append("model       none loaded")
    return "\n".join(lines)


def as_json(d: dict) -> str:
    return json.dumps(d, indent=2, sort_keys=True)
