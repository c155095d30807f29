# edgeloop device runtime: load an .elm model blob and run it with the fastest kernels present.
from .model import Model, load, current  # noqa: F401
from .backend import backend_name  # noqa: F401

VERSION = "0.1.0"


def diag(model=None):
    """Firmware, runtime, heap, filesystem and model state as a JSON-serialisable dict."""
    from .diag import diag as _diag
    return _diag(model)
