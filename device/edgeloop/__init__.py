# edgeloop device runtime: load an .elm model blob and run it with the fastest kernels present.
from .model import Model, load  # noqa: F401
from .backend import backend_name  # noqa: F401

VERSION = "0.1.0"
