"""Deliberately bad models, for trying the rollback: `edgeloop ota break MODEL.elm -o BAD.elm`."""
from __future__ import annotations

import numpy as np

from .. import blob as blobcodec
from .. import reference


def break_model(data: bytes, version: int | None = None) -> bytes:
    """A blob that loads (valid format, CRC) but fails its own self-test: the first constant int8 tensor
    (weights) is negated, the self-test vector is kept. Optionally restamped with `version`."""
    g = blobcodec.decode(data)
    if g.self_test is None:
        raise ValueError("the model has no self-test vector, so it cannot fail one")
    x, y = g.self_test
    for t in g.tensors:
        if t.data is not None and t.dtype == "int8" and t.data.size > 1:
            t.data = (-(t.data.astype(np.int16))).clip(-127, 127).astype(np.int8)
            out = reference.run(g, np.asarray(x, dtype=np.int8).reshape(1, -1))[0]
            if not np.array_equal(out.reshape(-1), np.asarray(y).reshape(-1)):
                break
            t.data = (t.data.astype(np.int16) // 2).astype(np.int8)  # still passes: try halving too
            out = reference.run(g, np.asarray(x, dtype=np.int8).reshape(1, -1))[0]
            if not np.array_equal(out.reshape(-1), np.asarray(y).reshape(-1)):
                break
    else:
        raise ValueError("could not find weights whose change breaks the self-test")
    if version is not None:
        g.model_version = version
    return blobcodec.encode(g)
