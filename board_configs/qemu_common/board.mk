# The part of mpconfigboard.mk shared by the qemu_arm / qemu_rv32 / qemu_m0 board dirs: each includes
# its stock board, sets LDSCRIPT and the EL_* sizes, then includes this file.

EL_COMMON = $(BOARD_DIR)/../qemu_common

MICROPY_VFS_LFS2 = 1

# The port's main.c still allocates gc_heap[MICROPY_HEAP_SIZE]; el_qemu_board.c replaces main()
# and has its own heap (EL_HEAP_SIZE).
MICROPY_HEAP_SIZE = 1024

FROZEN_MANIFEST = $(EL_COMMON)/manifest.py

CFLAGS += -DMP_CONFIGFILE='"$(EL_COMMON)/mpconfigport_edgeloop.h"'

SRC_C += $(EL_COMMON)/el_qemu_board.c

# el_qemu_board.c provides main() (boot script, boot.py/main.py, its heap), a stdio poll that sees
# the UART and a stdin reader that honours bytes buffered while Python code runs.
LDFLAGS += -Wl,--wrap=main -Wl,--wrap=mp_hal_stdio_poll -Wl,--wrap=mp_hal_stdin_rx_chr
