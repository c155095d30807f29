# edgeloop: `make test` on a fresh Debian machine installs, builds and tests everything.
#   make bootstrap   Debian packages + .venv + pip install -e '.[test]' (tools/bootstrap.sh)
#   make firmware    MicroPython source + unix / qemu-arm firmware + natmods, cached by input hash
#                    in $$EDGELOOP_CACHE (default ~/.cache/edgeloop)
#   make test        the above, then pytest (extra arguments: PYTEST_ARGS='-k qemu -x')
#   make demo        the above, then `edgeloop demo`
PYTHON := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: bootstrap firmware test demo

bootstrap:
	tools/bootstrap.sh

firmware: bootstrap
	$(PYTHON) -m edgeloop_host.toolchain build all

test: bootstrap firmware
	$(PYTHON) -m pytest -q tests $(PYTEST_ARGS)

demo: bootstrap firmware
	.venv/bin/edgeloop demo
