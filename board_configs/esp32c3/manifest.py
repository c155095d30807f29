# Frozen into the edgeloop ESP32 firmware: the port's usual modules plus the edgeloop runtime
# (device/edgeloop, compiled by mpy-cross for the port's arch, so viper kernels are native code).
include("$(PORT_DIR)/boards/manifest.py")
package("edgeloop", base_path="$(BOARD_DIR)/../../device")
