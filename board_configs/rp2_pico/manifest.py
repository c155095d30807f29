# Frozen into the edgeloop RP2040 firmware: the port's usual modules plus the edgeloop runtime
# (device/edgeloop, compiled by mpy-cross -march=armv6m, so viper kernels are native code).
include("$(PORT_DIR)/boards/manifest.py")
package("edgeloop", base_path="$(BOARD_DIR)/../../device")
