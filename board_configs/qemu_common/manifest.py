# Frozen into the qemu_arm / qemu_rv32 / qemu_m0 firmware: only the boot script (mounts /flash). The edgeloop
# runtime is copied onto /flash/lib by the host (`edgeloop deploy`, targets.py), like on a real board.
freeze("$(BOARD_DIR)/../qemu_common/modules", "_boot.py")
