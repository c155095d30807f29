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


def fetch(target, model_path: str | None = None, runs: int = 20, backend: str | None = None) -> dict:
    """edgeloop.diag() from an open target; with model_path (on the board) load it, self-test it and run
    it `runs` times first so the latency figures mean something."""
    load = ""
    if model_path:
        load = LOAD_CODE.format(path=model_path, runs=runs, backend=f", {backend!r}" if backend else "")
    out = target.exec(DIAG_CODE.format(load=load), timeout=120)
    d = json.loads(out.split("EL-DIAG", 1)[1].strip().splitlines()[0])
    for line in out.splitlines():
        if line.startswith("EL-SELFTEST"):
            d["self_test"] = {"True": True, "False": False}.get(line.split()[1])
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
    else:
        lines.append("model       none loaded")
    return "\n".join(lines)


def as_json(d: dict) -> str:
    return json.dumps(d, indent=2, sort_keys=True)
