# edgeloop board: qemu `-machine virt` RV32IMAC (mpy arch rv32imc), built with
#   make -C <micropython>/ports/qemu BOARD_DIR=<this dir> BUILD=<dir> USER_C_MODULES=<repo>/device/cmodule \
#        RV32_ARCH=rv32imac AFLAGS="-mabi=ilp32 -march=rv32imac_zicsr"
# (python -m edgeloop_host.toolchain build qemu-rv32 does exactly that). Debian's gcc 12 has no
# multilib for `rv32imac_zicsr`, so compile and link for rv32imac and assemble the CSR accesses
# with zicsr (AFLAGS must come from the command line: the port's Makefile appends to it).
# Starts from the stock VIRT_RV32 board and adds what board_configs/qemu_arm adds: littlefs2 on a
# RAM disk mounted at /flash (frozen _boot.py), the `time` module (CLINT mtime), sys.stdout.buffer,
# select, a real stdio poll and Ctrl-C during execution (so mpremote works), a 4 MB heap.

include $(TOP)/ports/qemu/boards/VIRT_RV32/mpconfigboard.mk

LDSCRIPT = $(BOARD_DIR)/virt_edgeloop.ld

CFLAGS += -DEL_HEAP_SIZE='(4 * 1024 * 1024)' -DEL_RAMDISK_SIZE='(512 * 1024)' -DEL_STACK_LIMIT='(60 * 1024)'

include $(BOARD_DIR)/../qemu_common/board.mk
