// edgeloop esp32_generic: MicroPython's ESP32_GENERIC board, renamed.
#define MICROPY_HW_BOARD_NAME "Generic ESP32 module (edgeloop)"
#define MICROPY_HW_MCU_NAME "ESP32"
