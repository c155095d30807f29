# Frozen into the qemu_arm firmware: only the boot script (mounts /flash). The edgeloop runtime
# is installed onto /flash/lib by the host (targets.py), like on a real board.
freeze("$(BOARD_DIR)/modules", "_boot.py")
