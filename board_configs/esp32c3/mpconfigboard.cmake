# edgeloop board: MicroPython's ESP32_GENERIC_C3 (ESP32-C3, RISC-V, 4 MB flash, partitions-4MiB.csv)
# with the edgeloop runtime frozen in and the _edgeloop C module linked (see README.md):
#   make -C ports/esp32 BOARD_DIR=<edgeloop>/board_configs/esp32c3 \
#        USER_C_MODULES=<edgeloop>/device/cmodule/micropython.cmake
set(IDF_TARGET esp32c3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    boards/ESP32_GENERIC_C3/sdkconfig.c3usb
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
