"""The team's DVC remote (cgankd/ops/dvc_remote.py) and the data versions runs name
(cgankd/ops/datasets.py): a checkout's remote in .dvc/config.local, the WebDAV server's credentials,
and DVC's own md5 of a file and a folder. The whole team path (push from clone A, pull in clone B)
runs in tests/test_e2e_dvc.py."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import httpx
import pytest
import yaml
from kit import sh

from cgankd.base.errors import CgankdError
from cgankd.ops import dvc_remote
from cgankd.ops.datasets import dvc_md5
from cgankd.ops.servers import stop
from cgankd.serve.process import free_port


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    return repo


def local_config(repo: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(repo / ".dvc" / "config.local")
    return cp


def test_a_checkout_points_at_the_users_folder_or_the_teams_remote_credentials_in_config_local(
        checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for var in (dvc_remote.URL_ENV, dvc_remote.USER_ENV, dvc_remote.PASSWORD_ENV):
        monkeypatch.delenv(var, raising=False)
    folder = dvc_remote.configure(checkout)
    assert folder == str(tmp_path / "xdg" / "cgankd" / "dvc-store") and Path(folder).is_dir()  # outside the checkout
    with open(checkout / ".dvc" / "config.local", "a") as f:
        f.write("[cache]\ntype = symlink\n")  # the user's own setting survives a rewrite
    team = dvc_remote.client_env("s3cret-password-of-the-team", 8190)
    assert dvc_remote.configure(checkout, team) == "webdav://127.0.0.1:8190/dvc"
    cp = local_config(checkout)
    assert dict(cp["'remote \"team\"'"]) == {"url": "webdav://127.0.0.1:8190/dvc", "user": "cgankd",
                                             "password": "s3cret-password-of-the-team"}
    assert cp["core"]["remote"] == "team" and cp["cache"]["type"] == "symlink"
    assert oct((checkout / ".dvc" / "config.local").stat().st_mode & 0o777) == "0o600"
    assert "s3cret" not in (checkout / ".dvc" / "config").read_text()  # the committed config stays clean
    shown = sh("dvc", "remote", "list", cwd=checkout).stdout.split()  # DVC reads the file as its own
    assert shown[:2] == ["team", "webdav://127.0.0.1:8190/dvc"]


def test_a_wrong_remote_or_folder_fails_in_one_line(checkout, tmp_path):
    with pytest.raises(CgankdError, match="CGANKD_DVC_REMOTE_URL: 'ftp://x' is not a remote DVC can use"):
        dvc_remote.configure(checkout, {dvc_remote.URL_ENV: "ftp://x"})
    with pytest.raises(CgankdError, match="is not a DVC checkout"):
        dvc_remote.configure(tmp_path / "nowhere", {})


def test_the_webdav_remote_asks_for_the_password_and_keeps_it_off_the_command_line(tmp_path):
    port = free_port()
    conf = tmp_path / "secrets" / "wsgidav.yaml"
    conf.parent.mkdir()
    proc = dvc_remote.webdav_server(tmp_path / "store", "the-generated-one", port, conf, tmp_path / "webdav.log")
    try:
        url = f"http://127.0.0.1:{port}/dvc/probe.txt"
        assert httpx.put(url, content=b"x", timeout=10).status_code == 401
        assert httpx.put(url, content=b"x", auth=("cgankd", "wrong"), timeout=10).status_code == 401
        assert httpx.put(url, content=b"x", auth=("cgankd", "the-generated-one"), timeout=10).status_code in (
            200, 201, 204)
        assert (tmp_path / "store" / "probe.txt").read_bytes() == b"x"
        assert "the-generated-one" not in " ".join(Path(f"/proc/{proc.pid}/cmdline").read_text().split("\0"))
        assert oct(conf.stat().st_mode & 0o777) == "0o600"
        assert yaml.safe_load(conf.read_text())["host"] == "127.0.0.1"  # loopback only
    finally:
        stop(proc)


def test_dvc_md5_is_the_md5_dvc_records(checkout):
    data = checkout / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.npz").write_bytes(bytes(range(256)) * 50)
    (data / "sub" / "b.json").write_text(json.dumps({"x": 1}))
    (data / "c.txt").write_text("line\r\nwindows line end\n")  # hashed as bytes, as DVC 3's md5
    sh("dvc", "add", "-q", "data", cwd=checkout)
    recorded = yaml.safe_load((checkout / "data.dvc").read_text())["outs"][0]
    assert dvc_md5(data) == recorded["md5"] and recorded["md5"].endswith(".dir")
    (checkout / "one.bin").write_bytes(b"\x00\x01" * 1000)
    sh("dvc", "add", "-q", "one.bin", cwd=checkout)
    assert dvc_md5(checkout / "one.bin") == yaml.safe_load((checkout / "one.bin.dvc").read_text())["outs"][0]["md5"]
