# Pull an update over HTTP from `edgeloop serve DIR` (boards with a network stack: socket module).
#   from edgeloop import ota, ota_http
#   ota_http.pull("192.168.1.10", 8080, "digits", ota.Updater("ota"))
# Downloads NAME.mf, verifies it (Updater.begin), then NAME.elm from the offset the slot already holds
# (HTTP Range), committing every chunk; an interrupted pull is resumed by the next one. Then finish().
import socket


def _get(host, port, path, start=None, max_bytes=None, sink=None):
    """GET `path`; returns the body (or feeds it to sink(bytes) and returns the byte count)."""
    ai = socket.getaddrinfo(host, port)[0][-1]
    s = socket.socket()
    try:
        s.settimeout(10)
        s.connect(ai)
        req = "GET /%s HTTP/1.0\r\nHost: %s\r\n" % (path, host)
        if start:
            req += "Range: bytes=%d-\r\n" % start
        s.send((req + "\r\n").encode())
        f = s.makefile("rb") if hasattr(s, "makefile") else s
        status = f.readline().split()
        if len(status) < 2 or status[1] not in (b"200", b"206"):
            raise OSError("HTTP %s for /%s" % (status[1].decode() if len(status) > 1 else "?", path))
        if start and status[1] != b"206":
            raise OSError("server ignored the byte range for /%s" % path)
        while f.readline() not in (b"\r\n", b"\n", b""):
            pass
        if sink is None:
            out = b""
            while True:
                b = f.read(1024)
                if not b:
                    return out
                out += b
        n = 0
        while max_bytes is None or n < max_bytes:
            b = f.read(4096 if max_bytes is None else min(4096, max_bytes - n))
            if not b:
                break
            sink(b)
            n += len(b)
        return n
    finally:
        s.close()


def pull(host, port, name, updater, max_bytes=None):
    """Download and verify NAME from the server; returns the version now pending. `max_bytes` stops
    the body early (tests: a dropped connection); the next pull resumes."""
    manifest = _get(host, port, name + ".mf")
    off = updater.begin(manifest)
    from .ota import Manifest
    size = Manifest(manifest).size
    if off < size:
        state = [off]

        def sink(b):
            state[0] = updater.write(state[0], b)

        _get(host, port, name + ".elm", start=off, max_bytes=max_bytes, sink=sink)
        if state[0] < size:
            return None
    return updater.finish()
