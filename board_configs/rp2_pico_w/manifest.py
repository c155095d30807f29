# Frozen into the edgeloop Pico W firmware: MicroPython's RPI_PICO_W modules (networking, aioble)
# plus the edgeloop runtime.
include("$(PORT_DIR)/boards/RPI_PICO_W/manifest.py")
package("edgeloop", base_path="$(BOARD_DIR)/../../device")
