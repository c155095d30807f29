# Runs ON the device: every case through two kernel modules, outputs (or errors) compared byte for byte.
import json

from edgeloop import backend


def run(path, names=("viper", "python")):
    tables = [backend.select(n)[1] for n in names]
    with open(path) as f:
        cases = json.load(f)
    mism = []
    for i, (opcode, args, blob_hex, arena_hex) in enumerate(cases):
        from array import array
        a = array("i", args)
        blob = bytes(bytearray.fromhex(blob_hex))
        results = []
        for t in tables:
            arena = bytearray.fromhex(arena_hex)
            try:
                t[opcode](blob, arena, a)
                results.append(bytes(arena))
            except ValueError as e:
                results.append(str(e))
        if results[0] != results[1]:
            mism.append(i)
    return len(cases), mism
