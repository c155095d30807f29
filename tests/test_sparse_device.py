"""Sparse weights on the real interpreters: the committed digits_mlp pruned to 75% (int8 magnitude
pruning of its .tflite, so TFLM reads the same weights) and a 1x1 CONV_2D pruned to 80%, converted
with sparse weights, give TFLM's outputs value for value on the unix port (C module, x64 natmod, viper
route), stock MicroPython (pure Python, x64 natmod) and the emulated Cortex-M3 (C module, armv6m natmod,
pure Python, viper). The viper kernel equals the Python one on random streams (long gaps, empty rows,
0% and 100% zeros). A hostile stream raises ValueError on the C and Python paths, at load and in the
kernel."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from edgeloop_host import blob, oracle, sparse
from edgeloop_host.convert import convert

# (target, backend, natmod arch or None, inputs per model)
CASES = [
    ("unix", "c", None, 64),
    ("unix", "c", "x64", 64),
    ("unix", "viper", None, 16),
    ("stock", "python", None, 16),
    ("stock", "c", "x64", 64),
    ("stock", "viper", None, 16),
    ("qemu-arm", "c", None, 32),
    ("qemu-arm", "c", "armv6m", 32),
    ("qemu-arm", "viper", None, 8),
    ("qemu-arm", "python", None, 2),
]


@pytest.fixture(scope="module")
def sparse_models(digits):
    from test_kernels_device import _build_tflite_models

    out = {}
    mlp = sparse.prune_tflite(digits.tflite, 0.75)
    out["mlp75"] = (mlp, np.ascontiguousarray(digits.x[:64]))
    conv, x = _build_tflite_models()["conv2d_1x1_deep"]
    out["conv1x1_80"] = (sparse.prune_tflite(conv, 0.8), x)
    models = {}
    for name, (tfl, x) in out.items():
        elm = convert(tfl, sparse_mode="always")
        g = blob.decode(elm)
        assert [g.tensors[op.tensors[1]].encoding for op in g.ops if op.opcode in (3, 9)] \
            and all(g.tensors[op.tensors[1]].encoding == 1 for op in g.ops if op.opcode in (3, 9)), name
        models[name] = (elm, x, oracle.tflm_run(tfl, x).reshape(len(x), -1))
    assert len(models["mlp75"][0]) < 0.75 * len(convert(mlp, sparse_mode="never"))
    return models


def _run(t, models, backend, c_module, n, tag):
    files = []
    for name, (elm, x, _) in models.items():
        files += [(elm, f"sp_{name}.elm"), (x[:n].tobytes(), f"sp_{name}_{n}.in")]
    t.put_many(files)
    code = ["from edgeloop.batch import run_file", "import binascii, gc"]
    for name in models:
        code.append(f"r = run_file('sp_{name}.elm', 'sp_{name}_{n}.in', 'sp_{name}_{tag}.out', {backend!r}, "
                    f"{c_module!r})")
        code.append(f"print('SP-OUT', {name!r}, r[1], binascii.hexlify(open('sp_{name}_{tag}.out', 'rb').read())"
                    f".decode())")
        code.append("gc.collect()")
    out = t.exec("\n".join(code), timeout=900)
    got = {}
    for line in out.splitlines():
        if line.startswith("SP-OUT"):
            _, name, used, data = line.split()
            got[name] = (used, np.frombuffer(bytes.fromhex(data), np.int8))
    assert set(got) == set(models), out[-800:]
    return got


@pytest.mark.parametrize("target, backend, natmod, n", CASES,
                         ids=[f"{t}-{b}{'-natmod-' + a if a else ''}" for t, b, a, _ in CASES])
def test_sparse_models_bit_exact_with_tflm(request, sparse_models, target, backend, natmod, n):
    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    mod = None
    if natmod:
        mod = f"_elk_{natmod}"
        t.install_natmod(mod, arch=natmod)
    got = _run(t, sparse_models, backend, mod, n, f"{backend}{natmod or ''}")
    for name, (_, x, y_tflm) in sparse_models.items():
        used, y = got[name]
        assert used == backend
        want = y_tflm[:n].reshape(-1)
        assert y.size == want.size and np.array_equal(y, want), \
            f"{name}: {int(np.sum(y != want))} of {want.size} values differ"


@pytest.mark.parametrize("target, n", [("unix", 60), ("stock", 60), ("qemu-arm", 20)])
def test_viper_sparse_kernel_matches_python(request, target, n):
    """kernel 0x109 from the viper and the Python backends on random cases, byte for byte."""
    import json
    from pathlib import Path

    import kernel_cases as kc

    t = request.getfixturevalue(target.replace("-", "_") + "_target")
    rng = np.random.default_rng(zlib.crc32(target.encode()))
    cases = []
    for i in range(n):
        c = kc.fully_connected_sparse(rng, int(rng.integers(1, 3)), int(rng.integers(1, 40 if i % 4 else 600)),
                                      int(rng.integers(1, 12)), float(rng.choice([0.0, 0.5, 0.8, 0.95, 1.0])),
                                      bool(rng.integers(2)), bool(rng.integers(2)), realistic=i % 3 != 0)
        cases.append([0x109, list(c.args), bytes(c.blob).hex(), bytes(c.arena).hex()])
    t.put(Path(__file__).parent / "device" / "kernel_diff.py", "lib/kernel_diff.py")
    t.put_bytes(json.dumps(cases).encode(), "sp_viper_cases.json")
    out = t.exec("import kernel_diff\nprint(*kernel_diff.run('sp_viper_cases.json'))", timeout=600)
    count, mism = out.split(" ", 1)
    assert int(count) == len(cases)
    assert mism.strip() == "[]", f"viper != python on cases {mism}"


def _hostile_blob(elm: bytes) -> bytes:
    """The blob with one sparse row's first delta set to 255 (a column past K = 64 or 32), CRC fixed."""
    g = blob.decode(elm)
    i = next(k for k, t in enumerate(g.tensors) if t.encoding)
    nsec = struct.unpack_from("<H", elm, 28)[0]
    tens = next(struct.unpack_from("<4sIII", elm, 32 + 16 * s)[2] for s in range(nsec)
                if elm[32 + 16 * s:36 + 16 * s] == b"TENS")
    off = struct.unpack_from("<I", elm, tens + 4 + 28 * i + 20)[0]
    n = g.tensors[i].shape[0]
    head = 4 * ((n + 1) // 2)
    b = bytearray(elm)
    b[off + head] = 255
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])))
    return bytes(b)


def test_hostile_sparse_stream_raises_on_c_and_python(unix_target, stock_target, sparse_models):
    elm = sparse_models["mlp75"][0]
    bad = _hostile_blob(elm)
    # at load: the blob reader checks every row of the stream
    for t in (unix_target, stock_target):
        t.put_many([(bad, "sp_bad.elm")])
        out = t.exec("import edgeloop\ntry:\n    edgeloop.load('sp_bad.elm')\n    print('LOADED')\n"
                     "except ValueError as e:\n    print('VE', e)\n")
        assert "VE tensor" in out and "sparse row 0 reaches column" in out, out
    # in the kernels: the words of the good model pointed at the hostile blob
    unix_target.put_many([(elm, "sp_good.elm"), (bad, "sp_bad.elm")])
    code = (
        "import _edgeloop\n"
        "from edgeloop import blob as B, pykernels\n"
        "info = B.parse(open('sp_good.elm', 'rb').read())\n"
        "op, args = info['ops'][0]\n"
        "print('OP', op, len(args))\n"
        "bad = open('sp_bad.elm', 'rb').read()\n"
        "arena = bytearray(info['arena_size'])\n"
        "from array import array\n"
        "for name, a in (('hostile', args), ('counts', array('i', list(args[:14]) + [args[14] + 4]))):\n"
        "    msgs = []\n"
        "    for k in (_edgeloop.fully_connected_sparse, pykernels.fully_connected_sparse):\n"
        "        try:\n"
        "            k(bad, arena, a)\n"
        "            msgs.append('ok')\n"
        "        except ValueError as e:\n"
        "            msgs.append(str(e))\n"
        "    print('K', name, '|'.join(msgs), arena == bytearray(len(arena)))\n")
    lines = unix_target.exec(code).strip().splitlines()
    assert f"OP {0x109} 15" in lines, lines
    ks = [ln for ln in lines if ln.startswith("K ")]
    assert ks == ["K hostile sparse weight counts or column indices out of range|"
                  "sparse weight counts or column indices out of range True",
                  "K counts sparse weight counts or column indices out of range|"
                  "sparse weight counts or column indices out of range True"], lines


def test_old_runtime_feature_bit_and_unknown_encoding(unix_target, sparse_models):
    """A reader without the sparse kernels rejects the blob up front (feature bit), and this runtime
    rejects an encoding it does not know, naming it."""
    elm = bytearray(sparse_models["mlp75"][0])
    g = blob.decode(bytes(elm))
    i = next(k for k, t in enumerate(g.tensors) if t.encoding)
    nsec = struct.unpack_from("<H", elm, 28)[0]
    tens = next(struct.unpack_from("<4sIII", elm, 32 + 16 * s)[2] for s in range(nsec)
                if elm[32 + 16 * s:36 + 16 * s] == b"TENS")
    elm[tens + 4 + 28 * i + 3] = 7
    struct.pack_into("<I", elm, 12, zlib.crc32(bytes(elm[16:])))
    unix_target.put_many([(bytes(elm), "sp_enc7.elm")])
    out = unix_target.exec("import edgeloop\ntry:\n    edgeloop.load('sp_enc7.elm')\nexcept ValueError as e:\n"
                           "    print('VE', e)\n")
    assert f"VE tensor {i}: unknown weight encoding 7: needs a newer runtime" in out, out
