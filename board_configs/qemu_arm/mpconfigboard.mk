# edgeloop board: qemu `-machine mps2-an385` (Cortex-M3, armv7m, 4 MB RAM), built with
#   make -C <micropython>/ports/qemu BOARD_DIR=<this dir> BUILD=<dir> USER_C_MODULES=<repo>/device/cmodule
# (python -m edgeloop_host.toolchain build qemu-arm does exactly that).
# Starts from the stock MPS2_AN385 board and adds: littlefs2 on a RAM disk mounted at /flash
# (frozen _boot.py), the `time` module (FPGAIO 1 MHz counter), sys.stdout.buffer, select,
# a real stdio poll and Ctrl-C during execution (so `mpremote mount` works), a heap of ~3 MB.

include $(TOP)/ports/qemu/boards/MPS2_AN385/mpconfigboard.mk

# The stock script places .ARM.exidx after .text, where it overlaps .data once libgcc's 64-bit
# division (pulled in by littlefs) is linked. Ours keeps it inside .text.
LDSCRIPT = $(BOARD_DIR)/mps2_edgeloop.ld

MICROPY_VFS_LFS2 = 1

# The port's main.c still allocates gc_heap[MICROPY_HEAP_SIZE]; board.c replaces main() and
# gives the heap all RAM between .bss and the stack, so keep main.c's array tiny.
MICROPY_HEAP_SIZE = 1024

FROZEN_MANIFEST = $(BOARD_DIR)/manifest.py

CFLAGS += -DMP_CONFIGFILE='"$(BOARD_DIR)/mpconfigport_edgeloop.h"'

SRC_C += $(BOARD_DIR)/board.c

# board.c provides main() (boot script, boot.py/main.py, bigger heap), a stdio poll that sees
# the UART and a stdin reader that honours bytes buffered while Python code runs.
LDFLAGS += -Wl,--wrap=main -Wl,--wrap=mp_hal_stdio_poll -Wl,--wrap=mp_hal_stdin_rx_chr
