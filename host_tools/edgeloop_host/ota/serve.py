"""`edgeloop serve DIR`: an HTTP server for boards that pull their updates (device: edgeloop.ota_http).

Serves NAME.elm and NAME.mf (the signed manifest) from DIR, with byte ranges (`Range: bytes=N-`, answered
206) so that a board resumes an interrupted download, and /index.json listing every manifest found
(name, model_id, version, size, sha256). Nothing else is served (no directory listing, no paths).
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .manifest import ManifestError, parse_manifest

_NAME = re.compile(r"^/([A-Za-z0-9_.-]+\.(elm|mf))$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def index(root: Path) -> list[dict]:
    out = []
    for mf in sorted(root.glob("*.mf")):
        try:
            m = parse_manifest(mf.read_bytes())
        except (ManifestError, OSError):
            continue
        out.append({"name": mf.stem, "model_id": m.model_id, "version": m.version, "size": m.size,
                    "sha256": m.sha256.hex(), "blob_present": (root / (mf.stem + ".elm")).is_file()})
    return out


def make_handler(root: Path, log=None):
    root = Path(root)

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgeloop-serve"
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):  # noqa: N802
            if log:
                log(f"{self.address_string()} {fmt % args}")

        def _send(self, code: int, body: bytes, ctype: str = "application/octet-stream", extra=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):  # noqa: N802
            self.do_GET()

        def do_GET(self):  # noqa: N802
            if self.path == "/index.json":
                return self._send(200, json.dumps(index(root), indent=1).encode(), "application/json")
            m = _NAME.match(self.path)
            f = root / m.group(1) if m else None
            if f is None or not f.is_file():
                return self._send(404, b"not found\n", "text/plain")
            data = f.read_bytes()
            rng = self.headers.get("Range")
            if rng:
                r = _RANGE.match(rng.strip())
                if not r:
                    return self._send(416, b"bad range\n", "text/plain")
                a = int(r.group(1))
                b = int(r.group(2)) if r.group(2) else len(data) - 1
                if a >= len(data) or b < a:
                    return self._send(416, b"range not satisfiable\n", "text/plain",
                                      [("Content-Range", f"bytes */{len(data)}")])
                b = min(b, len(data) - 1)
                return self._send(206, data[a:b + 1], extra=[("Content-Range", f"bytes {a}-{b}/{len(data)}")])
            return self._send(200, data)

    return Handler


def serve(root, host: str = "127.0.0.1", port: int = 8080, log=print) -> ThreadingHTTPServer:
    """Bind and return the server (call serve_forever(), or use start() for a background thread)."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: not a directory")
    return ThreadingHTTPServer((host, port), make_handler(root, log))


def start(root, host: str = "127.0.0.1", port: int = 0, log=None) -> ThreadingHTTPServer:
    srv = serve(root, host, port, log)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
