"""Board configs, flash images and `edgeloop deploy` / `diag` (issue 8).

Images are built for every board config from stand-in firmware (tests/firmware_standins.py) and read
back: littlefs-python mounts the filesystem found at the board's offset in the output and reads every
file, `esptool image-info` accepts the app part, the UF2 blocks cover the right address ranges.
Deploy and diag run through the real `edgeloop` command against each emulated board (mpremote's
SerialTransport on the emulator's pty), and a second deploy must send nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import firmware_standins as S
from edgeloop_host import boards, image
from edgeloop_host.deploy import DeployError, deploy, parse_mpy_header

REPO = Path(__file__).resolve().parents[1]
EDGELOOP = str(Path(sys.executable).with_name("edgeloop"))
MPREMOTE = str(Path(sys.executable).with_name("mpremote"))
MODEL = REPO / "models/digits_mlp/digits_mlp.elm"
REAL = ("esp32_generic", "esp32c3", "rp2_pico", "rp2_pico_w")
EMULATED = ("qemu-arm", "qemu-rv32", "qemu-m0")


# ---- board configs -------------------------------------------------------------------------------

def test_every_board_has_a_config_and_readme():
    names = boards.board_names()
    for n in (*REAL, "qemu_arm", "qemu_rv32", "qemu_m0"):
        assert n in names
        b = boards.load_board(n)
        assert b["name"] == n and b["filesystem"]["size"] % b["filesystem"]["block_size"] == 0
        assert (REPO / "board_configs" / n / "board.json").is_file()
        budget = boards.budget(b)
        assert budget["free"] > 0, (n, budget)    # runtime + 2 slots + log + reserve fit
    for n in REAL:
        readme = (REPO / "board_configs" / n / "README.md").read_text()
        assert f"edgeloop image --board {n}" in readme and "USER_C_MODULES=" in readme
        for f in ("manifest.py", "mpconfigboard.cmake", "mpconfigboard.h"):
            assert (REPO / "board_configs" / n / f).is_file()
    assert "make -C device/natmod ARCH=xtensawin" in (REPO / "board_configs/esp32_generic/README.md").read_text()


def _src():
    from edgeloop_host import toolchain

    return toolchain.micropython_source()


@pytest.mark.parametrize("name", ["esp32_generic", "esp32c3"])
def test_esp32_layout_is_micropythons(name):
    """board.json's vfs partition is the one in MicroPython's partitions-4MiB.csv (what sdkconfig.base picks)."""
    b = boards.load_board(name)
    src = _src() / "ports/esp32"
    assert 'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions-4MiB.csv"' in (src / "boards/sdkconfig.base").read_text()
    rows = {}
    for line in (src / "partitions-4MiB.csv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            f = [c.strip() for c in line.split(",")]
            rows[f[0]] = (int(f[3], 16), int(f[4], 16))
    assert rows["vfs"] == (b["filesystem"]["offset"], b["filesystem"]["size"])
    assert rows["factory"] == (b["flash"]["app_offset"], b["flash"]["app_max"])
    upstream = json.loads((src / "boards" / b["micropython"]["board"] / "board.json").read_text())
    assert int(upstream["deploy_options"]["flash_offset"], 16) == b["flash"]["firmware_offset"]
    assert "NATIVE_BLOCK_SIZE_BYTES (4096)" in (src / "esp32_partition.c").read_text()
    assert b["filesystem"]["block_size"] == 4096
    # the standin's partition table is the same CSV
    assert [(p[0], p[3], p[4]) for p in S.PARTITIONS_4MIB] == [(k, *v) for k, v in rows.items()]


@pytest.mark.parametrize("name", ["rp2_pico", "rp2_pico_w"])
def test_rp2_layout_is_micropythons(name):
    b = boards.load_board(name)
    src = _src() / "ports/rp2"
    h = (src / "boards" / b["micropython"]["board"] / "mpconfigboard.h").read_text()
    kb = int(re.search(r"MICROPY_HW_FLASH_STORAGE_BYTES\s+\((\d+) \* 1024\)", h).group(1))
    assert b["filesystem"]["size"] == kb * 1024
    assert b["filesystem"]["offset"] == b["flash"]["size"] - kb * 1024      # storage at the end of flash
    assert "progsize=256" in (src / "modules/_boot.py").read_text() and b["filesystem"]["prog_size"] == 256
    ours = (REPO / "board_configs" / name / "mpconfigboard.h").read_text()
    assert f"MICROPY_HW_FLASH_STORAGE_BYTES          ({kb} * 1024)" in ours


@pytest.mark.parametrize("name", REAL)
def test_frozen_manifest_freezes_the_runtime(name, tmp_path):
    """The board's manifest.py, evaluated by MicroPython's own manifest tool, freezes device/edgeloop."""
    src = _src()
    sys.path.insert(0, str(src / "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    port = tmp_path / "port"
    (port / "boards" / "RPI_PICO_W").mkdir(parents=True)
    (port / "boards" / "manifest.py").write_text("# stand-in for the port's manifest\n")
    (port / "boards" / "RPI_PICO_W" / "manifest.py").write_text("# stand-in\n")
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": str(src), "MPY_LIB_DIR": "", "PORT_DIR": str(port),
        "BOARD_DIR": str(REPO / "board_configs" / name)})
    m.execute(str(REPO / "board_configs" / name / "manifest.py"))
    frozen = sorted(r.target_path for r in m.files())
    want = sorted(f"edgeloop/{p.name}" for p in (REPO / "device/edgeloop").glob("*.py"))
    assert frozen == want


# ---- images ---------------------------------------------------------------------------------------

def _standin(name: str, tmp_path: Path, **kw) -> Path:
    b = boards.load_board(name)
    if b["kind"] == "esp32":
        p = tmp_path / f"{name}-fw.bin"
        p.write_bytes(S.esp32_firmware(b["chip"], **kw))
    else:
        p = tmp_path / f"{name}-fw.uf2"
        p.write_bytes(S.rp2_uf2(**kw))
    return p


@pytest.mark.parametrize("name", REAL)
def test_image_reads_back_at_micropythons_offset(name, tmp_path):
    b = boards.load_board(name)
    fs = b["filesystem"]
    fw = _standin(name, tmp_path)
    key = tmp_path / "trust.pub"
    key.write_bytes(bytes(range(32)))
    mf = tmp_path / "model.mf"
    mf.write_bytes(b"manifest bytes (opaque here)")
    out = tmp_path / ("flash.bin" if b["kind"] == "esp32" else "flash.uf2")
    model = tmp_path / "model.elm"
    model.write_bytes(MODEL.read_bytes())
    r = subprocess.run([EDGELOOP, "image", "--board", name, "--firmware", str(fw), "--model", str(model),
                        "--manifest", str(mf), "--pubkey", str(key), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    want = {"model.elm": model.read_bytes(), "model.mf": mf.read_bytes(), "ota/trust.pub": key.read_bytes()}
    data = out.read_bytes()
    if b["kind"] == "esp32":
        base = b["flash"]["firmware_offset"]
        fwb = fw.read_bytes()
        assert data[base:base + len(fwb)] == fwb and set(data[:base]) <= {0xFF}
        assert len(data) == fs["offset"] + fs["size"]
        region = data[fs["offset"]:fs["offset"] + fs["size"]]
        # the app part: esptool image-info (a separate esptool process) accepts it
        app = data[b["flash"]["app_offset"]:fs["offset"]].rstrip(b"\xff")
        (tmp_path / "app.bin").write_bytes(app)
        info = subprocess.run([sys.executable, "-m", "esptool", "--chip", b["chip"], "image-info",
                               str(tmp_path / "app.bin")], capture_output=True, text=True)
        assert info.returncode == 0 and "Checksum" in info.stdout and "(valid)" in info.stdout, info.stdout
        assert "invalid" not in info.stdout.lower()
    else:
        blocks = image.uf2_blocks(data)
        xip = b["flash"]["xip_base"]
        fs_addr = xip + fs["offset"]
        assert all(bl["family"] == 0xE48BFF56 and len(bl["payload"]) == 256 for bl in blocks)
        assert [bl["block_no"] for bl in blocks] == list(range(len(blocks)))
        assert {bl["num_blocks"] for bl in blocks} == {len(blocks)}
        fw_blocks = [bl for bl in blocks if bl["addr"] < fs_addr]
        fs_blocks = [bl for bl in blocks if bl["addr"] >= fs_addr]
        assert min(bl["addr"] for bl in fw_blocks) == xip
        # the filesystem blocks tile [fs_addr, fs_addr + size) exactly, once each
        assert sorted(bl["addr"] for bl in fs_blocks) == list(range(fs_addr, fs_addr + fs["size"], 256))
        assert max(bl["addr"] + 256 for bl in fw_blocks) <= fs_addr
        region = b"".join(bl["payload"] for bl in sorted(fs_blocks, key=lambda x: x["addr"]))
    files = _read_lfs_independently(fs, region)
    for path, content in want.items():
        assert files[path] == content
    names = {p for p in files if p.startswith("lib/edgeloop/")}
    assert "lib/edgeloop/model.mpy" in names and "lib/edgeloop/__init__.mpy" in names
    # stock firmware (no _edgeloop in it): the natmod for the arch rides along where we can build it
    arch = b["mpy_arch"]
    if b["natmod"]["built_here"]:
        assert parse_mpy_header(files["lib/_edgeloop.mpy"])[2] == arch
    else:
        assert "lib/_edgeloop.mpy" not in files and "no natmod for xtensawin" in r.stdout


def _read_lfs_independently(fs: dict, region: bytes) -> dict:
    """Mount with littlefs-python directly (block size/count and prog size as MicroPython uses them)."""
    from littlefs import LittleFS

    lfs = LittleFS(block_size=fs["block_size"], block_count=fs["size"] // fs["block_size"],
                   read_size=fs["read_size"], prog_size=fs["prog_size"], lookahead_size=fs["lookahead"],
                   mount=False)
    lfs.context.buffer[:] = region
    lfs.mount()
    out = {}
    for root, _, names in lfs.walk("/"):
        for n in names:
            p = f"{root.rstrip('/')}/{n}".lstrip("/")
            with lfs.open(p, "rb") as f:
                out[p] = f.read()
    return out


def test_image_with_custom_firmware_carries_no_natmod(tmp_path):
    fw = _standin("rp2_pico", tmp_path, with_cmodule=True)
    r = image.build_image("rp2_pico", fw, tmp_path / "f.uf2", model=MODEL)
    assert "lib/_edgeloop.mpy" not in r.files and any("built in" in n for n in r.notes)


def test_image_failures_are_clear(tmp_path):
    fw = _standin("esp32_generic", tmp_path)
    app_only = tmp_path / "app.bin"
    app_only.write_bytes(fw.read_bytes()[0xF000:])
    with pytest.raises(image.ImageError, match="not the app image alone"):
        image.build_image("esp32_generic", app_only, tmp_path / "o.bin")
    with pytest.raises(image.ImageError, match="natmod for armv7m"):
        image.build_image("esp32c3", _standin("esp32c3", tmp_path), tmp_path / "o.bin",
                          natmod=_natmod("armv7m"))
    big = tmp_path / "big.uf2"
    big.write_bytes(S.rp2_uf2(size=0xA0000 + 4096))
    with pytest.raises(image.ImageError, match="runs into the filesystem"):
        image.build_image("rp2_pico", big, tmp_path / "o.uf2")
    with pytest.raises(image.ImageError, match="emulated board"):
        image.build_image("qemu_rv32", fw, tmp_path / "o.bin")
    bad = tmp_path / "bad.elm"
    bad.write_bytes(MODEL.read_bytes()[:100])
    with pytest.raises(image.ImageError, match="not a valid .elm"):
        image.build_image("rp2_pico", _standin("rp2_pico", tmp_path), tmp_path / "o.uf2", model=bad)


def _natmod(arch: str) -> Path:
    from edgeloop_host import toolchain

    return toolchain.firmware_path(toolchain.natmod_name(arch))


def test_flash_commands(tmp_path):
    fw = _standin("esp32_generic", tmp_path)
    image.build_image("esp32_generic", fw, tmp_path / "flash.bin")
    r = subprocess.run([EDGELOOP, "flash", "--board", "esp32_generic", "--port", "/dev/ttyUSB9", "--dry-run",
                        str(tmp_path / "flash.bin")], capture_output=True, text=True)
    assert r.returncode == 0 and "--chip esp32 --port /dev/ttyUSB9" in r.stdout and "write-flash 0x0" in r.stdout
    r = subprocess.run([EDGELOOP, "flash", "--board", "esp32_generic", "--port", "/dev/ttyUSB9",
                        str(tmp_path / "flash.bin")], capture_output=True, text=True)
    assert r.returncode == 1 and "no board on /dev/ttyUSB9" in r.stderr
    uf2 = tmp_path / "flash.uf2"
    image.build_image("rp2_pico", _standin("rp2_pico", tmp_path), uf2)
    r = subprocess.run([EDGELOOP, "flash", "--board", "rp2_pico", str(uf2)], capture_output=True, text=True)
    assert r.returncode == 0 and "BOOTSEL" in r.stdout and str(uf2) in r.stdout


# ---- deploy: failures, with a scripted board ------------------------------------------------------

class FakeBoard:
    """Answers deploy's probe like a board would, with the given firmware facts."""

    def __init__(self, version=(1, 25, 0), mpy=6 | (3 << 8) | (10 << 10), fs=(4096, 512, 3), cmodule=None):
        self.info = {"frozen_runtime": None, "name": "micropython", "version": version, "mpy": mpy,
                     "machine": "fake", "platform": "esp32", "cmodule": cmodule, "cwd": "/", "fs": fs,
                     "path": ["", ".frozen", "/lib"], "runtime_dir": None, "hashlib": True}
        self.sent = []

    def exec(self, code, timeout=60):
        if "_el_h(p)" in code:
            import ast

            paths = ast.literal_eval(code.split("for p in ", 1)[1].rsplit("]))", 1)[0])
            return repr([None] * len(paths))
        return repr(self.info)

    def put_many(self, files):
        self.sent += files

    def reset(self):
        pass

    def eval(self, expr, timeout=60):
        return (4096, 0, 0, 0)


def test_deploy_refuses_old_firmware_wrong_natmod_and_full_filesystem():
    with pytest.raises(DeployError, match=r"firmware too old: MicroPython 1\.19\.1"):
        deploy(FakeBoard(version=(1, 19, 1), mpy=6 | (1 << 8)), check=False)
    with pytest.raises(DeployError, match="natmod for armv6m, but this board runs xtensawin"):
        deploy(FakeBoard(), natmod=_natmod("armv6m"), check=False)
    with pytest.raises(DeployError, match="not enough filesystem space"):
        deploy(FakeBoard(fs=(4096, 512, 3)), model=MODEL, check=False)
    b = FakeBoard(fs=(4096, 512, 400))
    rep = deploy(b, model=MODEL, check=False)
    assert rep.runtime_flavour == "xtensawin" and rep.natmod is None
    assert any("no natmod for arch xtensawin" in w for w in rep.warnings)
    assert {r for _, r in b.sent} >= {"model.elm", "lib/edgeloop/model.mpy"}


def test_deploy_to_a_missing_or_silent_port(tmp_path):
    r = subprocess.run([EDGELOOP, "deploy", "--port", "/dev/ttyUSB9"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no board on /dev/ttyUSB9" in r.stderr
    master, slave = os.openpty()          # a serial port with nothing answering behind it
    try:
        r = subprocess.run([EDGELOOP, "deploy", "--port", os.ttyname(slave)], capture_output=True, text=True,
                           timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 1 and "does not answer" in r.stderr and "reset button" in r.stderr


# ---- deploy + diag against every emulated board, through the real command -------------------------

@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("EDGELOOP_RUN_DIR", str(d))
    yield d
    from edgeloop_host import emulators
    from edgeloop_host.targets import BOARDS

    for b in BOARDS:
        emulators.stop(b)


@pytest.mark.qemu
@pytest.mark.parametrize("board", EMULATED)
def test_deploy_then_diag_on_emulated_board(board, run_dir, tmp_path):
    def edgeloop(*args, timeout=600):
        r = subprocess.run([EDGELOOP, *args], capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    model = tmp_path / "model.elm"      # a private copy: the committed model may be regenerated meanwhile
    model.write_bytes(MODEL.read_bytes())
    mf = tmp_path / "model.mf"
    mf.write_bytes(b"opaque manifest")
    key = tmp_path / "trust.pub"
    key.write_bytes(hashlib.sha256(b"key").digest())

    def runtime_state():
        return sorted((p.name, p.read_bytes()) for p in (REPO / "device/edgeloop").glob("*.py"))

    state = runtime_state()
    first = edgeloop("deploy", "--board", board, "--model", str(model), "--manifest", str(mf), "--pubkey", str(key))
    sent = re.search(r"sent\s+(\d+) file\(s\), (\d+) B in ([\d.]+) s", first)
    assert int(sent.group(1)) >= 12 and "model       loads on the board: yes" in first, first
    for _ in range(3):   # other engineers may edit device/edgeloop between two deploys: then deploy again
        second = edgeloop("deploy", "--board", board, "--model", str(model), "--manifest", str(mf),
                          "--pubkey", str(key))
        now = runtime_state()
        if "sent        0 file(s), 0 B" in second or now == state:
            break
        state = now
    assert "sent        0 file(s), 0 B" in second and "copied" not in second, second
    print(f"{board}: first deploy {sent.group(1)} files, {sent.group(2)} B in {sent.group(3)} s; second: "
          + re.search(r"sent .*", second).group(0))
    d = json.loads(edgeloop("diag", "--board", board, "--json"))
    assert d["runtime"] and d["model"]["bytes"] == len(model.read_bytes()) and d["self_test"] is True
    assert d["c_module"] == "usermod" and d["model"]["backend"] == "c"
    assert d["fs"]["path"] == "/flash"
    # the real mpremote CLI sees the same files (its own sha256 over its own connection)
    info = json.loads((run_dir / f"{board}.json").read_text())
    r = subprocess.run([MPREMOTE, "connect", info["pty"], "fs", "sha256sum", ":model.elm", ":ota/trust.pub"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(model.read_bytes()).hexdigest() in r.stdout
    assert hashlib.sha256(key.read_bytes()).hexdigest() in r.stdout
    r = subprocess.run([EDGELOOP, "emulate", "--board", board, "--stop"], capture_output=True, text=True)
    assert "stopped" in r.stdout


@pytest.mark.qemu
def test_emulate_background_status_and_repl_passthrough(run_dir):
    """`edgeloop emulate --background/--status/--stop`, and `edgeloop repl` is mpremote's REPL on it."""
    import pty
    import select
    import time

    r = subprocess.run([EDGELOOP, "emulate", "--board", "qemu-rv32", "--background"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "mpremote connect /dev/pts/" in r.stdout, r.stderr
    r = subprocess.run([EDGELOOP, "emulate", "--board", "qemu-rv32", "--status"], capture_output=True, text=True)
    assert "running, pid" in r.stdout
    pid, fd = pty.fork()
    if pid == 0:  # child: the real command on a terminal
        os.execv(EDGELOOP, [EDGELOOP, "repl", "--board", "qemu-rv32"])
    buf = b""
    try:
        deadline = time.monotonic() + 60
        sent = False
        while b"42" not in buf.split(b"6*7", 1)[-1] and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    buf += os.read(fd, 4096)
                except OSError:
                    break
            if not sent and b"Connected to MicroPython" in buf:
                time.sleep(0.5)
                os.write(fd, b"\r")
                time.sleep(0.3)
                os.write(fd, b"print(6*7)\r")
                sent = True
        os.write(fd, b"\x1d")   # Ctrl-] leaves mpremote's REPL
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert b"42" in buf.split(b"6*7", 1)[-1], buf[-500:]
    assert os.waitstatus_to_exitcode(status) == 0
    r = subprocess.run([EDGELOOP, "emulate", "--board", "qemu-rv32", "--stop"], capture_output=True, text=True)
    assert "stopped" in r.stdout
    r = subprocess.run([EDGELOOP, "emulate", "--board", "qemu-rv32", "--status"], capture_output=True, text=True)
    assert "not running" in r.stdout
