# User C module wiring for make-based ports (unix, qemu): USER_C_MODULES=<repo>/device/cmodule
EDGELOOP_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += $(EDGELOOP_MOD_DIR)/el_kernels.c
SRC_USERMOD_C += $(EDGELOOP_MOD_DIR)/mod_edgeloop.c
SRC_USERMOD_C += $(EDGELOOP_MOD_DIR)/el_ed25519.c $(EDGELOOP_MOD_DIR)/el_sha512.c

CFLAGS_USERMOD += -I$(EDGELOOP_MOD_DIR) -O2
