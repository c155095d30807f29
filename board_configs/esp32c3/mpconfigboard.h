// edgeloop esp32c3: MicroPython's ESP32_GENERIC_C3 board, renamed.
#define MICROPY_HW_BOARD_NAME               "ESP32C3 module (edgeloop)"
#define MICROPY_HW_MCU_NAME                 "ESP32C3"

// Enable UART REPL for modules that have an external USB-UART and don't use native USB.
#define MICROPY_HW_ENABLE_UART_REPL         (1)
