# Type stub of the `_edgeloop` C module (device/cmodule/edgeloop, usermod or natmod).
# Every kernel takes (blob, arena, args): args is an array('i') of int32 words laid out as in el_kernels.h.
from array import array
from typing import Any

KERNELS_VERSION: int
BUILD: str  # "usermod" or "natmod"

def crc32(data: Any, crc: int = 0, /) -> int: ...
def __getattr__(name: str) -> Any: ...  # op kernels: fully_connected, conv_2d, ... (one per opcode)
