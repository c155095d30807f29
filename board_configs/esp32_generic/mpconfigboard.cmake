# edgeloop board: MicroPython's ESP32_GENERIC (ESP32, 4 MB flash, partitions-4MiB.csv) with the
# edgeloop runtime frozen in and the _edgeloop C module linked (see README.md). Build with ESP-IDF
# (v5.2.x, `. $IDF_PATH/export.sh`) from an upstream MicroPython 1.25 checkout:
#   make -C ports/esp32 BOARD_DIR=<edgeloop>/board_configs/esp32_generic \
#        USER_C_MODULES=<edgeloop>/device/cmodule/micropython.cmake
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
