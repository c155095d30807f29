# edgeloop board: qemu `-machine mps2-an385` (Cortex-M3, armv7m, 4 MB RAM), built with
#   make -C <micropython>/ports/qemu BOARD_DIR=<this dir> BUILD=<dir> USER_C_MODULES=<repo>/device/cmodule
# (python -m edgeloop_host.toolchain build qemu-arm does exactly that).
# Starts from the stock MPS2_AN385 board and adds, with the code shared by all qemu boards
# (board_configs/qemu_common): littlefs2 on a 512 KB RAM disk mounted at /flash (frozen _boot.py),
# the `time` module (FPGAIO 1 MHz counter), sys.stdout.buffer, select, a real stdio poll and
# Ctrl-C during execution (so `mpremote mount` works), a 3 MB heap, WFI while waiting for input.

include $(TOP)/ports/qemu/boards/MPS2_AN385/mpconfigboard.mk

# The stock script places .ARM.exidx after .text, where it overlaps .data once libgcc's 64-bit
# division (pulled in by littlefs) is linked. Ours keeps it inside .text.
LDSCRIPT = $(BOARD_DIR)/mps2_edgeloop.ld

CFLAGS += -DEL_HEAP_SIZE='(3 * 1024 * 1024)' -DEL_RAMDISK_SIZE='(512 * 1024)' -DEL_STACK_LIMIT='(60 * 1024)'
CFLAGS += -DEL_RX_BUF_SIZE=1024

include $(BOARD_DIR)/../qemu_common/board.mk
