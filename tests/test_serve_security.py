"""`cgankd serve` tried as an attacker on the same machine or behind a web page would (issue 25):
/reload without a token, with a wrong one, with a file path, from a foreign Host or a text/plain
form post is refused with a 4xx and the old model keeps serving; without a token configured
management is off (403, saying how to turn it on); a token file readable by others is refused;
error bodies carry no absolute path."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import numpy as np
import pytest
from conftest import shrunk
from kit.onnx_student import export, trained_student

from cgankd.serve.management import TOKEN_ENV, public_message, reload_target
from cgankd.serve.process import bearer, free_port, start_server, stop_server

TOKEN = "security-operator-0123456789abcdef012345"


@pytest.fixture(scope="module")
def onnx(tmp_path_factory):
    from cgankd.stages.prepare import build

    tmp = tmp_path_factory.mktemp("security")
    data = build(shrunk(tmp / "artifacts"))
    model = trained_student(data, steps=10)
    return export(model, data, tmp / "student.onnx"), export(model, data, tmp / "other.onnx"), data


def _predict_ok(url: str, data) -> bool:
    body = {"inputs": (data["test"].images[:2].astype(np.float32) / 255.0).tolist()}
    return httpx.post(f"{url}/predict", json=body).status_code == 200


def test_reload_is_the_operators_alone(onnx):
    path, other, data = onnx
    proc, url = start_server(str(path), "--threads", "1", token=TOKEN)
    try:
        before = httpx.get(f"{url}/metadata").json()
        r = httpx.post(f"{url}/reload")
        assert r.status_code == 401 and "Bearer" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
        assert httpx.post(f"{url}/reload", headers=bearer("wrong-token-0123456789")).status_code == 401
        # a path, in the query (as the old API took it) or in the body, is never loaded
        r = httpx.post(f"{url}/reload", headers=bearer(TOKEN), params={"model": str(other)})
        assert r.status_code == 400 and "never a path" in r.json()["error"]
        r = httpx.post(f"{url}/reload", headers=bearer(TOKEN), params={"model": "../other.onnx"})
        assert r.status_code == 400
        r = httpx.post(f"{url}/reload", headers=bearer(TOKEN), json={"model": str(other)})
        assert r.status_code == 400
        r = httpx.post(f"{url}/reload", headers=bearer(TOKEN), json={"alias": "champion"})
        assert r.status_code == 400 and "serves a file" in r.json()["error"]
        # a form post from a web page (text/plain, no preflight), and a rebound DNS name
        r = httpx.post(f"{url}/reload", headers={**bearer(TOKEN), "Content-Type": "text/plain",
                                                  "Origin": "http://evil.example"}, content=b'{"version": 1}')
        assert r.status_code == 415
        r = httpx.post(f"{url}/reload", headers={**bearer(TOKEN), "Host": "evil.example"})
        assert r.status_code == 400
        assert httpx.get(f"{url}/metadata", headers={"Host": "evil.example:80"}).status_code == 400
        after = httpx.get(f"{url}/metadata").json()
        assert after["reloads"] == before["reloads"] and after["uri"] == before["uri"]
        assert _predict_ok(url, data)
        # the operator's own reload works
        r = httpx.post(f"{url}/reload", headers=bearer(TOKEN))
        assert r.status_code == 200 and r.json()["reloaded"] is True
    finally:
        stop_server(proc)


def test_without_a_token_management_is_off_and_a_wide_bind_warns(onnx, tmp_path):
    path, _, data = onnx
    proc, url = start_server(str(path), "--threads", "1")
    try:
        r = httpx.post(f"{url}/reload", headers=bearer(TOKEN))
        assert r.status_code == 403 and TOKEN_ENV in r.json()["error"]
        assert _predict_ok(url, data)
    finally:
        stop_server(proc)
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    wide = subprocess.Popen([sys.executable, "-m", "cgankd", "serve", str(path), "--host", "0.0.0.0",
                             "--port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = wide.stderr.readline()
        assert "warning" in line and "/reload stays off" in line
    finally:
        wide.kill()
        wide.communicate()
    loose = tmp_path / "token"
    loose.write_text(TOKEN)
    loose.chmod(0o644)
    out = subprocess.run([sys.executable, "-m", "cgankd", "serve", str(path), "-S", f"serve.token_file={loose}",
                          "--port", str(free_port())], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "chmod 600" in out.stderr and out.stderr.strip().count("\n") == 0
    loose.chmod(0o600)
    proc, url = start_server(str(path), "--threads", "1", "-S", f"serve.token_file={loose}")
    try:
        assert httpx.post(f"{url}/reload", headers=bearer(TOKEN)).status_code == 200
    finally:
        stop_server(proc)


def bomb_png(width: int, height: int) -> bytes:
    """A 16x16 PNG whose header claims ``width`` x ``height`` (CRC fixed): a decoder that trusted
    it would unpack width x height pixels."""
    import io
    import struct
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_a_pixel_bomb_is_refused_from_its_header_and_deep_json_is_a_400(onnx):
    path, _, data = onnx
    from cgankd.serve.card import ModelCard
    from cgankd.serve.decode import BadInput, from_json, image
    from cgankd.serve.runtime import load_onnx

    card: ModelCard = load_onnx(path, providers="cpu").card
    with pytest.raises(BadInput) as e:  # a decoder would fail on this body: the header check came first
        image(bomb_png(7500, 7500), card)
    assert e.value.status == 422 and "7500x7500" in e.value.message
    with pytest.raises(BadInput) as e:
        from_json(b"[" * 100000 + b"]" * 100000, card)
    assert e.value.status == 400 and "nested" in e.value.message
    proc, url = start_server(str(path), "--threads", "1")
    try:
        r = httpx.post(f"{url}/predict", content=bomb_png(7500, 7500))
        assert r.status_code == 422 and "7500x7500" in r.json()["error"]
        r = httpx.post(f"{url}/predict", content=b"[" * 50000 + b"]" * 50000,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert httpx.get(f"{url}/healthz").status_code == 200 and _predict_ok(url, data)
    finally:
        stop_server(proc)


def test_reload_targets_and_public_messages():
    src = "models:/cgankd-objects@champion"
    assert reload_target(src, "", b"", {}) == src
    assert reload_target(src, "application/json", b'{"alias": "challenger"}', {}) == "models:/cgankd-objects@challenger"
    assert reload_target("models:/m/3", "application/json", b'{"version": 5}', {}) == "models:/m/5"
    for body in (b'{"alias": "../x"}', b'{"alias": "a", "version": 1}', b'{"version": -1}', b'{"version": true}',
                 b"[1]", b"[" * 100000):
        with pytest.raises(Exception) as e:
            reload_target(src, "application/json", body, {})
        assert getattr(e.value, "status", None) == 400
    msg = public_message("/home/alice/models/student.onnx: ONNX file not found; see /etc/passwd")
    assert "/home" not in msg and "/etc" not in msg and "student.onnx" in msg


def test_a_cuda_session_that_fell_back_to_the_cpu_is_named():
    """onnxruntime drops a CUDA provider whose libraries do not load and runs on the CPU silently:
    asked for cuda, that is an error; on auto, one line."""
    from cgankd.base.errors import CgankdError
    from cgankd.compute.providers import PROVIDERS, check_providers

    cuda, cpu = PROVIDERS["cuda"], ["CPUExecutionProvider"]
    assert check_providers(cuda, cuda, "cuda", "m.onnx") is None
    assert check_providers(cpu, cpu, "cpu", "m.onnx") is None
    with pytest.raises(CgankdError) as e:
        check_providers(cuda, cpu, "cuda", "m.onnx")
    assert "did not start its CUDA provider" in str(e.value)
    assert "serving on the CPU" in check_providers(cuda, cpu, "auto", "/models/m.onnx")


def test_tokens_are_long_owned_and_guessing_is_throttled(tmp_path, monkeypatch):
    """A token has at least 32 characters (environment or file); a token file owned by another user is
    refused; after 5 wrong tokens in 10 s every attempt is a 429 until the window has passed."""
    from cgankd.base.errors import CgankdError
    from cgankd.serve.management import TOKEN_ENV, Throttle, load_token

    monkeypatch.setenv(TOKEN_ENV, "short-token-0123456789")
    with pytest.raises(CgankdError, match="is 22 characters; a token needs at least 32"):
        load_token(None)
    monkeypatch.delenv(TOKEN_ENV)
    f = tmp_path / "token"
    f.write_text("x" * 31)
    f.chmod(0o600)
    with pytest.raises(CgankdError, match="shorter than 32 characters"):
        load_token(str(f))
    f.write_text(TOKEN)
    assert load_token(str(f)) == TOKEN
    monkeypatch.setattr("os.geteuid", lambda: 4242)  # the server's user is not the file's owner
    with pytest.raises(CgankdError, match="is owned by uid .*, not by the server's user"):
        load_token(str(f))

    now = [0.0]
    throttle = Throttle(clock=lambda: now[0])
    for _ in range(5):
        with pytest.raises(Exception) as e:
            throttle.check(TOKEN, "Bearer guess-0123456789abcdef0123456789abc")
        assert e.value.status == 401
    with pytest.raises(Exception) as e:  # the right token too: no comparison while throttled
        throttle.check(TOKEN, f"Bearer {TOKEN}")
    assert e.value.status == 429 and "refuses every attempt" in e.value.message
    now[0] = 10.5
    throttle.check(TOKEN, f"Bearer {TOKEN}")  # the window has passed


@pytest.mark.parametrize("command", [["serve", "missing.onnx"], ["ui"], ["team-stack", "--root", "stack"]])
def test_the_servers_refuse_root_unless_allowed(command, tmp_path, monkeypatch, capsys):
    """As root (geteuid 0) each server stops in one line before it starts anything; --allow-root or
    CGANKD_ALLOW_ROOT=1 lets `cgankd serve` go on (to the missing model, which stops it)."""
    from cgankd.cli import main
    from cgankd.cli.root import ALLOW_ROOT_ENV

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ALLOW_ROOT_ENV, raising=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"cgankd {command[0]}: refuses to run as root" in err and "--allow-root" in err, err
    assert not (tmp_path / "stack").exists()  # nothing was started
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    if command[0] == "serve":  # past the check: the model is what stops it
        assert main([*command, "--allow-root"]) == 2 and "missing.onnx" in capsys.readouterr().err
        monkeypatch.setattr("os.geteuid", lambda: 0)
        monkeypatch.setenv(ALLOW_ROOT_ENV, "1")
        assert main(command) == 2 and "missing.onnx" in capsys.readouterr().err
