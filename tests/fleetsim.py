"""A simulated fleet for tests and benchmarks of `edgeloop fleet` (the broker: edgeloop_host.broker):
MicroPython unix-port processes running the real fleet agent (device/edgeloop/fleet_agent.py)
with micropython-lib's umqtt.simple, each in its own directory (its filesystem: ota/ slots and state)."""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UMQTT = REPO / "tests/device/umqtt/simple.py"


_AGENT = """\
import sys
from edgeloop import ota, fleet_agent
from umqtt.simple import MQTTClient
DEV, PORT = %(dev)r, %(port)d
u = ota.Updater('ota', slot_size=%(slot)d)
reboot = (lambda: sys.exit(0)) if %(reboot)r else None     # the process ends; Device restarts it: a reset
fleet_agent.Agent(DEV, lambda: MQTTClient(DEV, '127.0.0.1', PORT, keepalive=10), u, retry_ms=100,
                  reboot=reboot).run()
"""


class Device:
    """One board: directory `root/dev` with the factory model (model.elm + model.mf) and the fleet's
    public key, running the agent until stop()."""

    def __init__(self, fw: Path, lib: Path, root: Path, dev: str, port: int, slot: int = 256 * 1024,
                 reboot: bool = False):
        self.fw, self.lib, self.dev, self.port, self.slot, self.reboot = fw, lib, dev, port, slot, reboot
        self.dir = root / dev
        self.p = None
        self.boots = 0

    def provision(self, pub: bytes, blob: bytes, manifest: bytes):
        (self.dir / "ota").mkdir(parents=True, exist_ok=True)
        (self.dir / "ota/trust.pub").write_bytes(pub)
        (self.dir / "model.elm").write_bytes(blob)
        (self.dir / "model.mf").write_bytes(manifest)
        return self

    def start(self):
        env = dict(os.environ, MICROPYPATH=f".frozen:{self.lib}")
        code = _AGENT % {"dev": self.dev, "port": self.port, "slot": self.slot, "reboot": self.reboot}
        self._stop = False

        def boot():
            self.boots += 1
            return subprocess.Popen([str(self.fw), "-X", "heapsize=2M", "-c", code], cwd=self.dir, env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.txt", "ab"))

        self.p = boot()
        if self.reboot:     # a clean exit is the agent's reboot: start the "board" again
            def supervise():
                while not self._stop and self.p.wait() == 0 and not self._stop:
                    self.p = boot()
            threading.Thread(target=supervise, daemon=True).start()
        return self

    def kill(self):
        self._stop = True
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def manifests(self) -> set[bytes]:
        """The manifests in its two slots (what it ever downloaded and kept)."""
        return {p.read_bytes() for p in (self.dir / "ota").glob("s*.mf")}

    def stderr(self) -> str:
        p = self.dir / "stderr.txt"
        return p.read_text() if p.exists() else ""


def runtime_lib(root: Path) -> Path:
    """The device runtime + umqtt as a MICROPYPATH directory."""
    lib = root / "lib"
    shutil.copytree(REPO / "device/edgeloop", lib / "edgeloop")
    (lib / "umqtt").mkdir()
    shutil.copyfile(UMQTT, lib / "umqtt/simple.py")
    return lib


def wait_for(pred, timeout: float, step: float = 0.05):
    t_end = time.time() + timeout
    while time.time() < t_end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
