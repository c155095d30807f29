#!/usr/bin/env bash
# Install everything edgeloop needs on a Debian machine; idempotent and fast when all is there.
#   1. Debian packages (cross compilers, qemu, ...) - only the missing ones, `apt-get update` first
#      only when something is missing;
#   2. .venv in the repo root (python3 -m venv);
#   3. `pip install -e '.[test]'` into it - only when pyproject.toml changed since the last
#      install (its sha256 is kept in .venv/.edgeloop-pyproject.sha256).
# Progress goes to stderr. MicroPython itself and the firmware are fetched/built later, into
# $EDGELOOP_CACHE (default ~/.cache/edgeloop), by `make firmware`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "bootstrap: $*" >&2; }

APT_PACKAGES=(
    gcc-arm-none-eabi libnewlib-arm-none-eabi   # qemu-arm firmware, armv6m/armv7m natmods
    qemu-system-arm qemu-system-misc            # emulated boards
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf   # rv32imc natmods
    pkg-config libffi-dev                       # unix port (ffi via pkg-config)
    dpkg-dev                                    # dpkg-source: unpacks the MicroPython source package
    mosquitto                                   # MQTT broker for the update/telemetry loop
    clang                                       # host builds of the C kernels
    libclang-rt-14-dev                          # libFuzzer + ASan/UBSan runtimes (tests/fuzz)
    python3-venv
)
missing=()
status="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${APT_PACKAGES[@]}" 2>/dev/null || true)"
for p in "${APT_PACKAGES[@]}"; do
    if ! grep -q "^$p ii" <<<"$status"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null; then SUDO=(sudo); else
            log "need root (or sudo) to install: ${missing[*]}"; exit 1
        fi
    fi
    log "installing Debian packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
else
    log "Debian packages: all ${#APT_PACKAGES[@]} present"
fi

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
    log "creating .venv with $($PY --version 2>&1)"
    rm -rf .venv
    "$PY" -m venv .venv
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
stamp=.venv/.edgeloop-pyproject.sha256
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    log "pip install -e '.[test]' (pyproject.toml changed or first install; this can take minutes)"
    # (pip's "Location ... is ignored" warnings about absent local indexes are noise)
    quiet() { grep -v "^WARNING: Location '.*' is ignored" >&2 || true; }
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet
    .venv/bin/python -m pip install -q -e '.[test]' 2>&1 | quiet
    echo "$want" >"$stamp"
    log "Python dependencies installed"
else
    log "Python dependencies: up to date (pyproject.toml unchanged)"
fi

# MicroPython board stubs for type-checking device code (tests/test_device_types.py). Each board gets
# its own directory: the stubs replace the standard library's, so they cannot share site-packages.
STUB_VERSION=1.29.0.post1
STDLIB_STUB_VERSION=1.29.0.post2
for board in rp2 esp32; do
    dest=.venv/stubs/$board
    marker="$dest/.edgeloop-$STUB_VERSION-$STDLIB_STUB_VERSION"
    if [[ ! -f "$marker" ]]; then
        log "installing micropython-$board-stubs $STUB_VERSION into $dest"
        rm -rf "$dest"
        .venv/bin/python -m pip install -q --no-deps --target "$dest" \
            "micropython-$board-stubs==$STUB_VERSION" "micropython-stdlib-stubs==$STDLIB_STUB_VERSION" 2>&1 \
            | { grep -v "^WARNING: Location '.*' is ignored" >&2 || true; }
        touch "$marker"
    fi
done
