"""A Mosquitto broker on a free loopback port, configured and started by the code that needs it (the
`edgeloop demo loop`, the MQTT, fleet and load tests, the fleet benchmark). Persistence is on by default,
as on a production broker: a restart keeps sessions and queued QoS 1 messages."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Mosquitto:
    """d: its directory (config, database, log). port: fixed, or a free one. nodelay: without it each
    small message waits for the peer's delayed ACK (~40 ms on loopback: the fleet's chunks, the uplink)."""

    def __init__(self, d: Path, port: int | None = None, persistence: bool = True, nodelay: bool = True):
        if not os.path.exists(MOSQUITTO):
            raise BrokerError("mosquitto is not installed (Debian package `mosquitto`)")
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        self.d, self.port, self.p = d, port or free_port(), None
        self.url = f"mqtt://127.0.0.1:{self.port}"
        (d / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence {str(persistence).lower()}\n"
            # started as root, mosquitto would switch to user "mosquitto", which cannot write its database here
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
            f"persistence_location {d}/\nmax_queued_messages 100000\n"
            f"set_tcp_nodelay {str(nodelay).lower()}\nlog_dest file {d}/mosquitto.log\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.p = subprocess.Popen([MOSQUITTO, "-c", str(self.d / "mosquitto.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.p.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not start on port {self.port} (see {self.d}/mosquitto.log)")

    def stop(self) -> None:
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
