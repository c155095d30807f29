# edgeloop board: qemu `-machine microbit` (nRF51, Cortex-M0, mpy arch armv6m = the RP2040 ISA), built with
#   make -C <micropython>/ports/qemu BOARD_DIR=<this dir> BUILD=<dir> USER_C_MODULES=<repo>/device/cmodule
# (python -m edgeloop_host.toolchain build qemu-m0 does exactly that).
# A real micro:bit v1 has 16 KB of RAM: too little for the runtime (its import alone takes up to
# 16 KB of heap) and a filesystem. Like MicroPython's own MICROBIT qemu board, qemu is run with
# 1 MB of flash and more SRAM than the chip has: MicroPython's own test setup uses 256 KB; here
# 512 KB (`-global nrf51-soc.sram-size=524288`), split into a 320 KB RAM disk on /flash (the
# runtime, a natmod, a model and test data with littlefs' copy-on-write), 160 KB of GC heap (a
# natmod loads as one block) and an 8 KB stack.
# Adds to the stock MICROBIT board: the native emitter for armv6m (natmods, viper), littlefs2,
# `time` (TIMER0 at 1 MHz), sys.stdout.buffer, select, stdio poll, Ctrl-C (so mpremote works).

include $(TOP)/ports/qemu/boards/MICROBIT/mpconfigboard.mk

LDSCRIPT = $(BOARD_DIR)/nrf51_edgeloop.ld

CFLAGS += -DEL_HEAP_SIZE='(160 * 1024)' -DEL_RAMDISK_SIZE='(320 * 1024)' -DEL_STACK_LIMIT='(7 * 1024)'

include $(BOARD_DIR)/../qemu_common/board.mk
