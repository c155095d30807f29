// edgeloop rp2_pico: MicroPython's RPI_PICO board, renamed. The filesystem keeps MicroPython's
// size (the last 1408 KB of the 2 MB flash, from 0x100A0000), which board.json and
// `edgeloop image` rely on: change both together.
#define MICROPY_HW_BOARD_NAME                   "Raspberry Pi Pico (edgeloop)"
#define MICROPY_HW_FLASH_STORAGE_BYTES          (1408 * 1024)
