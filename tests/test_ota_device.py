"""OTA on the device (issue 6), on real MicroPython: every rejection is specific and leaves the active
model untouched; the redundant state record survives a torn or corrupt copy; trial / confirm / revert;
power cut at every flash operation of an update (exhaustive on the unix port, ~5 KB and ~100 KB models;
randomized on the emulated Cortex-M3); pulling over HTTP with a resumed download."""
from __future__ import annotations

import ast
import hashlib
import random
import struct
import zlib

import pytest

import otagen
from edgeloop_host.ota import manifest as M
from edgeloop_host.ota.serve import start as start_server

REPO_DEVICE_TESTS = otagen.__file__.rsplit("/", 1)[0] + "/device"


@pytest.fixture(scope="module")
def fleet():
    return otagen.fleet()


def _put_helpers(t):
    t.put(f"{REPO_DEVICE_TESTS}/ota_check.py", "ota_check.py")
    t.put(f"{REPO_DEVICE_TESTS}/faultbdev.py", "faultbdev.py")
    t.put(f"{REPO_DEVICE_TESTS}/ota_sweep.py", "ota_sweep.py")


def _put_update(t, name, blob, manifest):
    t.put_bytes(blob, f"u_{name}.elm")
    t.put_bytes(manifest, f"u_{name}.mf")


_SETUP = """\
import ota_check as C
from edgeloop import ota
rd = C.rd
PUB = %(pub)r
def U(**kw):
    if 'now' in kw:
        v = kw.pop('now')
        kw['now'] = lambda: v
    return ota.Updater(%(root)r, public_key=PUB, **kw)
C.rmtree(%(root)r)
C.install(U(), rd('u_base.elm'), rd('u_base.mf')); U().load()
C.install(U(), rd('u_new.elm'), rd('u_new.mf')); U().load()
"""


def _flip(b: bytes, i: int) -> bytes:
    b = bytearray(b)
    b[i] ^= 0x01
    return bytes(b)


def _with_header_format(blob: bytes, fmt: int) -> bytes:
    b = bytearray(blob)
    struct.pack_into("<H", b, 4, fmt)
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b[16:])))
    return bytes(b)


def rejection_cases(f: otagen.Fleet):
    """name -> (blob, manifest, Updater kwargs, install kwargs, expected code). The device runs v2."""
    w = otagen.SMALL
    v3 = otagen.make_blob(w, 3, 30)
    mf3 = M.sign_blob(v3, f.key, 3)
    v1 = otagen.make_blob(w, 1, 1)
    raw = otagen.raw_manifest
    rnd = random.Random(11)
    return {
        "truncated download": (v3, mf3, {}, {"limit": len(v3) // 2}, "truncated"),
        "wrong SHA-256": (_flip(v3, len(v3) - 40), mf3, {}, {}, "sha256"),
        "bad signature": (v3, _flip(mf3, 100), {}, {}, "signature"),
        "manifest altered after signing": (v3, mf3[:12] + struct.pack("<I", 4) + mf3[16:], {}, {}, "signature"),
        "signed by another key": (v3, M.sign_blob(v3, f.other, 3), {}, {}, "wrong_key"),
        "another key claiming our key id": (v3, raw(v3, f.other, key_id=M.key_id(f.pub)), {}, {}, "signature"),
        "downgrade": (v1, M.sign_blob(v1, f.key, 1), {}, {}, "downgrade"),
        "replay of the running manifest": (None, None, {}, {}, "downgrade"),   # filled in on the device
        "blob larger than a slot": (v3, mf3, {"slot_size": len(v3) - 1}, {}, "too_large"),
        "needs a newer runtime": (v3, raw(v3, f.key, min_runtime=0x090000), {}, {}, "incompatible"),
        "newer blob format (manifest)": (v3, raw(v3, f.key, format_version=2), {}, {}, "incompatible"),
        "newer blob format (blob header)": (_with_header_format(v3, 2), raw(_with_header_format(v3, 2), f.key),
                                            {}, {}, "invalid_model"),
        "garbage manifest": (v3, rnd.randbytes(144), {}, {}, "garbage"),
        "short manifest": (v3, mf3[:100], {}, {}, "garbage"),
        "empty manifest": (v3, b"", {}, {}, "garbage"),
        "unknown manifest flags": (v3, raw(v3, f.key, flags=1), {}, {}, "garbage"),
        "expired manifest": (v3, raw(v3, f.key, expiry=1_000_000_000), {"now": 1_700_000_000}, {}, "expired"),
        "expiry without a clock": (v3, raw(v3, f.key, expiry=2_000_000_000), {"now": None}, {}, "expired"),
        "signed garbage instead of a blob": (rnd.randbytes(3000), None, {}, {}, "invalid_model"),
        "blob without a self-test": (otagen.make_blob(w, 3, 31, self_test=False), None, {}, {}, "invalid_model"),
        "blob version differs from the manifest": (otagen.make_blob(w, 5, 32), None, {}, {"version": 3},
                                                   "mismatch"),
    }


def test_every_rejection_is_specific_and_leaves_the_active_model(unix_target, fleet):
    t = unix_target
    _put_helpers(t)
    for name, (blob, mf) in otagen.update_set(fleet, otagen.SMALL).items():
        _put_update(t, name, blob, mf)
    cases = rejection_cases(fleet)
    lines = [_SETUP % {"pub": fleet.pub, "root": "ota_rej"}, "res = {}"]
    for i, (name, (blob, mf, ukw, ikw, _)) in enumerate(cases.items()):
        if blob is None:   # replay: the manifest and blob the device runs
            blob_expr, mf_expr = "rd('u_new.elm')", "rd('u_new.mf')"
        else:
            if mf is None:   # sign whatever the blob is, as version 3 of our model
                ikw = dict(ikw)
                mf = otagen.raw_manifest(blob, fleet.key, version=ikw.pop("version", 3), model_id=otagen.MODEL_ID)
            t.put_bytes(blob, f"r{i}.elm")
            t.put_bytes(mf, f"r{i}.mf")
            blob_expr, mf_expr = f"rd('r{i}.elm')", f"rd('r{i}.mf')"
        lines.append(f"res[{name!r}] = C.attempt(U(**{ukw!r}), {blob_expr}, {mf_expr}, **{ikw!r})")
    lines.append("good = C.outcome(lambda: C.install(U(), rd('r0.elm'), rd('r0.mf')))")
    lines.append("print(repr((res, good, U().load().version, U().state().counter)))")
    res, good, version, counter = ast.literal_eval(t.exec("\n".join(lines), timeout=300).strip())
    for name, (*_, want) in cases.items():
        code, msg, untouched = res[name]
        assert code == want, f"{name}: got {code} ({msg}), want {want}"
        assert untouched, f"{name}: the active model or state changed"
    # and a valid update still goes through afterwards
    assert good == ("ok", 3) and version == 3 and counter == 3


def test_every_single_bit_flip_of_a_manifest_is_rejected(unix_target, fleet):
    t = unix_target
    _put_helpers(t)
    blob = otagen.make_blob(otagen.SMALL, 7, 70)
    mf = M.sign_blob(blob, fleet.key, 7)
    code = (f"import ota_check as C\nfrom edgeloop import ota\nC.rmtree('ota_flip')\n"
            f"u = ota.Updater('ota_flip', public_key={fleet.pub!r})\n"
            f"print(repr((C.outcome(lambda: u.check_manifest({mf!r}).version), C.flips(u, {mf!r}))))")
    ok, codes = ast.literal_eval(t.exec(code, timeout=300).strip())
    assert ok == ("ok", 7)
    assert "ok" not in codes and sum(codes.values()) == len(mf) * 8
    assert set(codes) <= {"garbage", "signature", "wrong_key"}, codes


_STATE = """\
import ota_check as C, os
from edgeloop import ota
rd = C.rd
PUB = %(pub)r
U = lambda **kw: ota.Updater('ota_st', public_key=PUB, **kw)
C.rmtree('ota_st')
C.install(U(), rd('u_base.elm'), rd('u_base.mf')); U().load()
C.install(U(), rd('u_new.elm'), rd('u_new.mf')); U().load()
s = U().state()
out = {'seq': s.seq, 'version': s.active_version}
newest = 'ota_st/state%%d' %% (s.seq & 1)
good = rd(newest)
with open(newest, 'wb') as f:      # torn write of the newest copy: half of it
    f.write(good[:len(good) // 2])
s2 = U().state()
out['torn'] = (s2.seq, s2.pending_version)
b = bytearray(good); b[9] ^= 0x40  # a flipped bit: the CRC catches it
with open(newest, 'wb') as f:
    f.write(b)
s3 = U().state()
out['flipped'] = (s3.seq, s3.pending_version)
# booting from the older copy (v2 still pending then) tries v2 again and confirms it
out['boot'] = (U().load().version, U().state().active_version, U().state().counter)
print(repr(out))
"""


def test_state_record_survives_a_torn_or_corrupt_copy(unix_target, fleet):
    t = unix_target
    _put_helpers(t)
    for name, (blob, mf) in otagen.update_set(fleet, otagen.SMALL).items():
        _put_update(t, name, blob, mf)
    out = ast.literal_eval(t.exec(_STATE % {"pub": fleet.pub}, timeout=120).strip())
    seq = out["seq"]
    # the other copy, one sequence number older (the state before the confirm of v2), is used
    assert out["torn"] == out["flipped"] == (seq - 1, 2)
    assert out["boot"] == (2, 2, 2)


_TRIAL = """\
import ota_check as C
from edgeloop import ota, model
rd = C.rd
PUB = %(pub)r
U = lambda **kw: ota.Updater('ota_tr', public_key=PUB, **kw)
C.rmtree('ota_tr')
C.install(U(), rd('u_base.elm'), rd('u_base.mf')); U().load()
out = {}
# 1. the app must confirm: a model on trial that is never confirmed is reverted after max_attempts boots
C.install(U(), rd('u_new.elm'), rd('u_new.mf'))
seen = [U(app_confirm=True, max_attempts=2).load().version for _ in range(3)]
out['unconfirmed'] = (seen, U().state().as_dict()['result'], U().state().counter)
# 2. confirmed by the app on the second boot
C.install(U(), rd('u_new.elm'), rd('u_new.mf'))
v = U(app_confirm=True).load().version
out['confirm'] = (v, U(app_confirm=True).confirm(), U().state().active_version, U().state().counter)
# 3. a crash (reset) during the self-test on every boot: counted attempts, then reverted by itself
class Reset(BaseException):
    pass
def crash(self):
    raise Reset()
C.install(U(), rd('u_v3.elm'), rd('u_v3.mf'))
orig = model.Model.self_test
model.Model.self_test = crash
boots = 0
for _ in range(5):
    try:
        U(max_attempts=3).load()
        break
    except Reset:
        boots += 1
model.Model.self_test = orig
s = U().state().as_dict()
out['crash'] = (boots, U(max_attempts=3).load().version, s['result'], s['active_version'])
# 4. a failing self-test reverts at once
C.install(U(), rd('u_bad.elm'), rd('u_bad.mf'))
out['bad'] = (U().load().version, U().state().as_dict()['result'])
# 5. an untried pending update is replaced by a newer one
C.install(U(), rd('u_v3.elm'), rd('u_v3.mf'))
C.install(U(), rd('u_v4.elm'), rd('u_v4.mf'))
out['replaced'] = U().load().version
print(repr(out))
"""


def test_trial_confirm_and_revert(unix_target, fleet):
    t = unix_target
    _put_helpers(t)
    ups = otagen.update_set(fleet, otagen.SMALL)
    for v in (3, 4):
        b = otagen.make_blob(otagen.SMALL, v, 40 + v)
        ups[f"v{v}"] = (b, M.sign_blob(b, fleet.key, v))
    bad5 = otagen.bad_blob(otagen.SMALL, 5, 50)   # version 5: above the counter when it is tried
    ups["bad"] = (bad5, M.sign_blob(bad5, fleet.key, 5))
    for name, (blob, mf) in ups.items():
        _put_update(t, name, blob, mf)
    out = ast.literal_eval(t.exec(_TRIAL % {"pub": fleet.pub}, timeout=300).strip())
    seen, result, counter = out["unconfirmed"]
    assert seen == [2, 2, 1] and result == "reverted: too many boot attempts" and counter == 1
    assert out["confirm"] == (2, True, 2, 2)
    assert out["crash"] == (3, 2, "reverted: too many boot attempts", 2)
    assert out["bad"] == (2, "reverted: self-test failed")
    assert out["replaced"] == 4


def _sweep(target, fleet, widths, nblocks, timeout, **kw):
    _put_helpers(target)
    for name, (blob, mf) in otagen.update_set(fleet, widths).items():
        _put_update(target, name, blob, mf)
    code = ("import ota_sweep as S, ota_check as C, time\nrd = C.rd\n"
            "t = time.ticks_ms()\n"
            f"r = S.sweep({fleet.pub!r}, (rd('u_base.elm'), rd('u_base.mf')), (rd('u_new.elm'), rd('u_new.mf')),"
            f" (rd('u_bad.elm'), rd('u_bad.mf')), {nblocks}, **{kw!r})\n"
            "r['ms'] = time.ticks_diff(time.ticks_ms(), t)\nprint('EL-SWEEP', repr(r))\n")
    out = target.exec(code, timeout=timeout)
    r = ast.literal_eval(out.split("EL-SWEEP", 1)[1].strip())
    return r, len(otagen.make_blob(widths, 1, 1)), out


@pytest.mark.parametrize("widths,nblocks", [(otagen.SMALL, 128), (otagen.LARGE, 700)], ids=["5KB", "100KB"])
def test_power_cut_at_every_flash_operation_unix(unix_target, fleet, widths, nblocks, capsys):
    r, size, out = _sweep(unix_target, fleet, widths, nblocks, timeout=1800)
    assert r["good"] == r["ops_good"] > 0 and r["bad"] == r["ops_bad"] > 0
    with capsys.disabled():
        print(f"\n[ota cut sweep, unix port, {size}-byte model] {r['good']} cut points during a good update + "
              f"{r['bad']} during an update that reverts = {r['good'] + r['bad']} cut points tried, all "
              f"recovered ({r['ms'] / 1000:.1f} s)")


@pytest.mark.qemu
def test_power_cut_randomized_qemu_arm(qemu_arm_target, fleet, capsys):
    seed = random.randrange(1 << 30)
    r, size, out = _sweep(qemu_arm_target, fleet, otagen.SMALL, 128, timeout=1800, sample=(20, seed))
    assert r["good"] == 20 and r["bad"] == 20
    with capsys.disabled():
        print(f"\n[ota cut sweep, qemu-arm, {size}-byte model, seed {seed}] {r['good'] + r['bad']} random cut "
              f"points of {r['ops_good']} + {r['ops_bad']} flash operations, all recovered "
              f"({r['ms'] / 1000:.1f} s)")


def test_pull_over_http_resumes(unix_target, fleet, tmp_path):
    t = unix_target
    _put_helpers(t)
    ups = otagen.update_set(fleet, otagen.SMALL)
    (tmp_path / "base.elm").write_bytes(ups["base"][0])
    (tmp_path / "base.mf").write_bytes(ups["base"][1])
    (tmp_path / "digits.elm").write_bytes(ups["new"][0])
    (tmp_path / "digits.mf").write_bytes(ups["new"][1])
    log = []
    srv = start_server(tmp_path, log=log.append)
    port = srv.server_address[1]
    try:
        code = ("import ota_check as C\nfrom edgeloop import ota, ota_http\nC.rmtree('ota_http')\n"
                f"U = lambda: ota.Updater('ota_http', public_key={fleet.pub!r})\n"
                f"a = ota_http.pull('127.0.0.1', {port}, 'base', U()); U().load()\n"
                f"b = ota_http.pull('127.0.0.1', {port}, 'digits', U(), max_bytes=3000)\n"
                "have = U().status()['download']['have']\n"
                f"c = ota_http.pull('127.0.0.1', {port}, 'digits', U())\n"
                "print(repr((a, b, have, c, U().load().version)))")
        a, b, have, c, v = ast.literal_eval(t.exec(code, timeout=120).strip())
    finally:
        srv.shutdown()
        srv.server_close()
    assert (a, b, c, v) == (1, None, 2, 2)
    assert 0 < have < len(ups["new"][0])
    gets = [ln for ln in log if "digits.elm" in ln]
    assert len(gets) == 2 and " 206 " in gets[1]


def test_factory_model_from_deploy_is_adopted_through_the_verified_path(unix_target, fleet):
    """`edgeloop deploy` puts model.elm + model.mf in the root; a board with no OTA state installs that
    model into a slot (signature, SHA-256, format, self-test) on its first load(); a bad one is refused."""
    t = unix_target
    _put_helpers(t)
    ups = otagen.update_set(fleet, otagen.SMALL)
    t.put_bytes(ups["base"][0], "fac/model.elm")
    t.put_bytes(ups["base"][1], "fac/model.mf")
    t.put_bytes(ups["bad"][0], "fac/bad.elm")
    t.put_bytes(ups["bad"][1], "fac/bad.mf")
    code = ("import ota_check as C\nfrom edgeloop import ota\nC.rmtree('ota_fac')\nC.rmtree('ota_fac2')\n"
            f"U = lambda root, f: ota.Updater(root, public_key={fleet.pub!r}, factory=f)\n"
            "a = U('ota_fac', ('fac/model.elm', 'fac/model.mf')).load().version\n"
            "s = U('ota_fac', None).state()\n"
            "b = C.outcome(lambda: U('ota_fac2', ('fac/bad.elm', 'fac/bad.mf')).load())\n"
            "c = C.outcome(lambda: U('ota_fac2', None).load())\n"
            "print(repr((a, s.active_version, s.counter, b[0], c[0])))")
    assert ast.literal_eval(t.exec(code, timeout=120).strip()) == (1, 1, 1, "no_model", "no_model")
