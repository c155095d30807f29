"""OTA host side (issue 6): manifest encoding and signing, `edgeloop keys/sign/ota/serve`, the HTTP server's
byte ranges, and the serial push to the emulated board (resume after a dropped connection, rejections,
rollback), also through the CLI on a separately started emulator (`--port`)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import otagen
from edgeloop_host.ota import manifest as M
from edgeloop_host.ota import push as P
from edgeloop_host.ota.serve import start as start_server

EDGELOOP = [str(Path(sys.executable).parent / "edgeloop")]   # the console script users run


def cli(*args, cwd=None, timeout=600):
    env = dict(os.environ)
    return subprocess.run([*EDGELOOP, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_line_error(r, *words):
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeloop: error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@settings(max_examples=200, deadline=None)
@given(model_id=st.integers(0, 2**32 - 1), version=st.integers(1, 2**32 - 1), size=st.integers(0, 2**32 - 1),
       min_rt=st.integers(0, 2**32 - 1), fmt=st.integers(0, 2**32 - 1), expiry=st.integers(0, 2**64 - 1),
       sha=st.binary(min_size=32, max_size=32), kid=st.binary(min_size=8, max_size=8),
       sig=st.binary(min_size=64, max_size=64))
def test_manifest_layout_roundtrip(model_id, version, size, min_rt, fmt, expiry, sha, kid, sig):
    m = M.Manifest(model_id, version, size, sha, min_rt, fmt, expiry, kid, 0, sig)
    data = m.encode()
    assert len(data) == 144 and data[:4] == b"ELMF" and data[80:] == sig
    assert M.parse_manifest(data) == m


def test_sign_checks_the_blob_and_signs_the_body():
    f = otagen.fleet()
    blob = otagen.make_blob(otagen.SMALL, 4, 4)
    m = M.make_manifest(blob, f.key)
    assert (m.version, m.size, m.model_id) == (4, len(blob), otagen.MODEL_ID)
    assert m.verify(f.pub) and not m.verify(M.public_raw(f.other))
    with pytest.raises(M.ManifestError, match="version 4, not 5"):
        M.make_manifest(blob, f.key, 5)
    with pytest.raises(M.ManifestError, match="not a valid model blob"):
        M.make_manifest(blob[:-1], f.key)


def test_cli_keys_sign_break(tmp_path):
    r = cli("keys", "generate", tmp_path / "fleet")
    assert r.returncode == 0, r.stderr
    assert oct((tmp_path / "fleet.key").stat().st_mode & 0o777) == "0o600"
    one_line_error(cli("keys", "generate", tmp_path / "fleet"), "exists")
    blob = otagen.make_blob(otagen.SMALL, 2, 2)
    (tmp_path / "m.elm").write_bytes(blob)
    r = cli("sign", tmp_path / "m.elm", "--key", tmp_path / "fleet.key", "--expires", "+30d")
    assert r.returncode == 0, r.stderr
    m = M.parse_manifest((tmp_path / "m.mf").read_bytes())
    assert m.verify(M.load_public_key(tmp_path / "fleet.pub")) and m.version == 2
    assert abs(m.expiry - (time.time() + 30 * 86400)) < 60
    one_line_error(cli("sign", tmp_path / "m.elm", "--key", tmp_path / "fleet.key", "--version", "3"),
                   "version 2, not 3")
    one_line_error(cli("sign", tmp_path / "m.elm", "--key", tmp_path / "fleet.pub"), "private key")
    one_line_error(cli("sign", tmp_path / "nope.elm", "--key", tmp_path / "fleet.key"), "nope.elm")
    (tmp_path / "junk.elm").write_bytes(b"junk" * 20)
    one_line_error(cli("sign", tmp_path / "junk.elm", "--key", tmp_path / "fleet.key"), "not a valid model blob")
    one_line_error(cli("sign", tmp_path / "m.elm", "--key", tmp_path / "fleet.key", "--expires", "soon"),
                   "--expires")
    r = cli("ota", "break", tmp_path / "m.elm", "-o", tmp_path / "bad.elm", "--version", "3")
    assert r.returncode == 0, r.stderr
    from edgeloop_host import blob as codec, reference
    import numpy as np

    g = codec.decode((tmp_path / "bad.elm").read_bytes())
    x, y = g.self_test
    assert g.model_version == 3
    assert not np.array_equal(reference.run(g, np.asarray(x).reshape(1, -1))[0].reshape(-1),
                              np.asarray(y).reshape(-1))


def test_serve_ranges_and_index(tmp_path):
    f = otagen.fleet()
    blob = otagen.make_blob(otagen.SMALL, 2, 2)
    (tmp_path / "digits.elm").write_bytes(blob)
    (tmp_path / "digits.mf").write_bytes(M.sign_blob(blob, f.key))
    (tmp_path / "secret.key").write_bytes(b"nope")
    srv = start_server(tmp_path)
    base = f"http://127.0.0.1:{srv.server_address[1]}"

    def get(path, rng=None):
        req = urllib.request.Request(base + path, headers={"Range": rng} if rng else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    try:
        assert get("/digits.elm")[:2] == (200, blob)
        code, body, hdr = get("/digits.elm", "bytes=1000-")
        assert (code, body, hdr["Content-Range"]) == (206, blob[1000:], f"bytes 1000-{len(blob) - 1}/{len(blob)}")
        assert get("/digits.elm", "bytes=10-19")[:2] == (206, blob[10:20])
        assert get("/digits.elm", f"bytes={len(blob)}-")[0] == 416
        assert get("/digits.elm", "bytes=x-")[0] == 416
        for path in ("/secret.key", "/../digits.elm", "/", "/nope.elm"):
            assert get(path)[0] == 404, path
        idx = json.loads(get("/index.json")[1])
        assert idx == [{"name": "digits", "model_id": otagen.MODEL_ID, "version": 2, "size": len(blob),
                        "sha256": __import__("hashlib").sha256(blob).hexdigest(), "blob_present": True}]
    finally:
        srv.shutdown()
        srv.server_close()


# ---- the emulated board --------------------------------------------------------------------------

@pytest.mark.qemu
def test_push_resume_reject_rollback_qemu(qemu_arm_target):
    t = qemu_arm_target
    f = otagen.fleet()
    t.exec("import os\nfor n in ('ota/' + x for x in ('s0.elm','s0.mf','s1.elm','s1.mf','state0','state1',"
           "'trust.pub')):\n try:\n  os.remove(n)\n except OSError:\n  pass")
    P.ensure_runtime(t, f.pub)
    with pytest.raises(P.PushError, match="another key"):
        P.ensure_runtime(t, M.public_raw(f.other))
    ups = otagen.update_set(f, otagen.SMALL)
    base, new, bad = ups["base"], ups["new"], ups["bad"]
    r = P.push(t, *base, chunk=1024)
    assert r.resumed_at == 0 and r.chunks == 6
    assert P.describe_boot(P.boot(t)).startswith("version 1 passed its self-test: confirmed")
    # a dropped connection after two chunks, then the same push resumes where the slot stopped
    r = P.push(t, *new, chunk=1024, stop_after=2)
    assert P.status(t)["download"]["have"] == 2048
    t.reset()   # the board forgets everything in RAM, as after a reconnect
    r = P.push(t, *new, chunk=1024)
    assert r.resumed_at == 2048 and r.chunks == 4
    st = P.status(t)
    assert st["pending_version"] == 2 and st["pending"] is not None
    assert P.describe_boot(P.boot(t)).startswith("version 2 passed its self-test: confirmed")
    # rejections come back as one precise line; the board keeps running version 2
    with pytest.raises(P.PushError, match="downgrade: version 1 is not above the security counter 2"):
        P.push(t, *base)
    with pytest.raises(P.PushError, match="signature"):
        P.push(t, new[0], new[1][:100] + bytes([new[1][100] ^ 1]) + new[1][101:])
    with pytest.raises(P.PushError, match="wrong_key"):
        P.push(t, bad[0], M.sign_blob(bad[0], f.other))
    # a model that fails its self-test is rolled back by the board itself
    P.push(t, *bad)
    assert P.describe_boot(P.boot(t)) == "version 3 reverted: self-test failed: rolled back, running version 2"
    st = P.status(t)
    assert (st["active_version"], st["counter"], st["last_version"]) == (2, 2, 3)


@pytest.mark.qemu
def test_cli_push_over_a_serial_port_with_a_kill_in_the_middle(tmp_path, repo_root):
    """`edgeloop ota push --port` to an emulator we start ourselves; the first push is killed (SIGKILL)
    mid-transfer, the second one resumes; then a bad model is rolled back."""
    from edgeloop_host.targets import QemuMachine

    f = otagen.fleet()
    assert cli("keys", "generate", tmp_path / "fleet").returncode == 0
    key = tmp_path / "fleet.key"
    ups = {}
    for name, blob in (("v1", otagen.make_blob(otagen.SMALL, 1, 1)), ("v2", otagen.make_blob(otagen.LARGE, 2, 2)),
                       ("v3", otagen.bad_blob(otagen.SMALL, 3, 3))):
        (tmp_path / f"{name}.elm").write_bytes(blob)
        assert cli("sign", tmp_path / f"{name}.elm", "--key", key).returncode == 0
        ups[name] = blob
    del f
    with QemuMachine("qemu-arm") as m:
        port = ["--port", m.pty]
        r = cli("ota", "push", tmp_path / "v1.elm", tmp_path / "v1.mf", *port, "--install-runtime",
                "--pubkey", tmp_path / "fleet.pub", "--boot", "-q")
        assert r.returncode == 0, r.stderr
        assert "version 1 passed its self-test: confirmed" in r.stdout
        # kill a push of the ~100 KB model once some chunks are on the board
        p = subprocess.Popen([*EDGELOOP, "ota", "push", tmp_path / "v2.elm", tmp_path / "v2.mf", *port,
                              "--chunk", "2048"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        buf = ""
        while time.monotonic() < deadline:
            ch = p.stderr.read(1)
            buf += ch
            if not ch or "20480/" in buf:
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        r = cli("ota", "push", tmp_path / "v2.elm", tmp_path / "v2.mf", *port, "--boot", "-q")
        assert r.returncode == 0, r.stderr
        resumed = [ln for ln in r.stdout.splitlines() if ln.startswith("resuming at byte")]
        assert resumed and int(resumed[0].split()[3]) >= 20480, r.stdout
        assert "version 2 passed its self-test: confirmed" in r.stdout
        r = cli("ota", "push", tmp_path / "v3.elm", tmp_path / "v3.mf", *port, "--boot", "-q")
        assert r.returncode == 0, r.stderr
        assert "version 3 reverted: self-test failed: rolled back, running version 2" in r.stdout
        one_line_error(cli("ota", "push", tmp_path / "v1.elm", tmp_path / "v1.mf", *port, "-q"),
                       "board rejected the update: downgrade")
        r = cli("ota", "status", *port)
        st = json.loads(r.stdout)
        assert (st["active_version"], st["counter"], st["result"]) == (2, 2, "reverted: self-test failed")
