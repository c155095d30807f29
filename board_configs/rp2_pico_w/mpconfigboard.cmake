# edgeloop board: MicroPython's RPI_PICO_W (RP2040 + CYW43 WiFi/BT, 2 MB flash, 848 KB littlefs)
# with the edgeloop runtime frozen in and the _edgeloop C module linked (see README.md):
#   make -C ports/rp2 BOARD_DIR=<edgeloop>/board_configs/rp2_pico_w \
#        USER_C_MODULES=<edgeloop>/device/cmodule/micropython.cmake
set(PICO_BOARD "pico_w")

set(MICROPY_PY_LWIP ON)
set(MICROPY_PY_NETWORK_CYW43 ON)

# Bluetooth
set(MICROPY_PY_BLUETOOTH ON)
set(MICROPY_BLUETOOTH_BTSTACK ON)
set(MICROPY_PY_BLUETOOTH_CYW43 ON)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
