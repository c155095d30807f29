# edgeloop board: MicroPython's RPI_PICO (RP2040, 2 MB flash, 1408 KB littlefs) with the edgeloop
# runtime frozen in and the _edgeloop C module linked (see README.md). Build with the Pico SDK from
# an upstream MicroPython 1.25 checkout (`make -C ports/rp2 submodules` fetches the SDK):
#   make -C ports/rp2 BOARD_DIR=<edgeloop>/board_configs/rp2_pico \
#        USER_C_MODULES=<edgeloop>/device/cmodule/micropython.cmake
set(PICO_BOARD "pico")
set(PICO_PLATFORM "rp2040")

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
