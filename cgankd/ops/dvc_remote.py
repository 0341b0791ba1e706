"""The team's DVC remote: where the prepared data, the GANs, the fakes and the students of every
checkout go (``dvc push``) and come from (``dvc pull``).

- ``webdav_server``: the remote ``cgankd team-stack`` starts beside PostgreSQL, MLflow and Prefect, a
  WebDAV server (WsgiDAV on cheroot, the protocol of Nextcloud, ownCloud and Apache's mod_dav) on
  127.0.0.1 with basic auth. Its password is generated, kept in the stack's ``secrets/`` and given to
  the server in a 0600 config file, never on a command line. DVC speaks to it through ``dvc-webdav``.
- ``configure``: a checkout's remote, written to ``.dvc/config.local`` (git-ignored, mode 0600, where
  DVC keeps credentials): the team's from ``CGANKD_DVC_REMOTE_URL`` (+ ``_USER``, ``_PASSWORD``:
  ``client.env`` has them), else a folder of this user's (``~/.local/share/cgankd/dvc-store``),
  outside every checkout, so two clones never write into each other's paths. Any S3, SSH or other
  remote a team already runs is set with ``dvc remote add`` as DVC documents; cgankd then leaves
  ``config.local`` alone.
"""

from __future__ import annotations

import configparser
import os
import subprocess
from pathlib import Path

import yaml

from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_path, open_private
from cgankd.ops.servers import bin_path, last_line, wait_http

URL_ENV, USER_ENV, PASSWORD_ENV = "CGANKD_DVC_REMOTE_URL", "CGANKD_DVC_REMOTE_USER", "CGANKD_DVC_REMOTE_PASSWORD"
DAV_USER = "cgankd"
SHARE = "/dvc"
NAME = "team"  # the remote's name in .dvc/config.local


def default_store() -> Path:
    """This user's folder remote: outside every checkout, shared by this user's clones (content-addressed)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "cgankd" / "dvc-store"


def webdav_server(store: Path, password: str, port: int, conf: Path, log: Path) -> subprocess.Popen:
    """WsgiDAV serving ``store`` at ``http://127.0.0.1:<port>/dvc`` to user ``cgankd`` alone."""
    store.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open_private(conf) as f:  # holds the password: 0600, never on a command line
        yaml.safe_dump({
            "host": "127.0.0.1", "port": port, "server": "cheroot", "verbose": 2,
            "provider_mapping": {SHARE: str(store)},
            "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
            "simple_dc": {"user_mapping": {SHARE: {DAV_USER: {"password": password}}}},
            "dir_browser": {"enable": False}, "suppress_version_info": True}, f)
    proc = subprocess.Popen([bin_path("wsgidav"), "--config", str(conf)],
                            stdout=open_private(log, True), stderr=subprocess.STDOUT, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}{SHARE}/", proc, 60, "webdav server", any_status=True)
    return proc


def client_env(password: str, port: int) -> dict[str, str]:
    return {URL_ENV: f"webdav://127.0.0.1:{port}{SHARE}", USER_ENV: DAV_USER, PASSWORD_ENV: password}


def configure(repo: Path, env: dict[str, str] | None = None) -> str:
    """Point the checkout at ``repo`` to the team's remote (``env``'s variables, default the process's)
    or this user's folder; returns what it points at (the URL, without credentials)."""
    env = dict(os.environ if env is None else env)
    if not (repo / ".dvc").is_dir():
        raise CgankdError(str(repo), "is not a DVC checkout (no .dvc/): run it in the repository's root")
    url = env.get(URL_ENV) or str(default_store())
    if not env.get(URL_ENV):
        Path(url).mkdir(parents=True, exist_ok=True)
    elif not url.startswith(("webdav://", "webdavs://", "s3://", "ssh://", "https://", "http://", "/")):
        raise CgankdError(URL_ENV, f"{url!r} is not a remote DVC can use (webdav(s)://, s3://, ssh://, "
                          "http(s):// or an absolute folder)")
    path = repo / ".dvc" / "config.local"
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    if path.is_file():
        cp.read(path)
    section = f"'remote \"{NAME}\"'"
    cp[section] = {"url": url}
    if env.get(USER_ENV):
        cp[section]["user"] = env[USER_ENV]
    if env.get(PASSWORD_ENV):
        cp[section]["password"] = env[PASSWORD_ENV]
    if not cp.has_section("core"):
        cp.add_section("core")
    cp["core"]["remote"] = NAME
    with atomic_path(path, mode=0o600) as tmp, open_private(tmp) as f:  # it holds the password
        cp.write(f)
    return url


def commit_and_push(repo: Path) -> None:
    """Record the outputs in ``repo`` as ``dvc.lock`` (``dvc commit -f``: what a pipeline that ran
    outside ``dvc repro`` made, for the params in ``params.yaml``), then push them to its remote."""
    for args in (("commit", "-f", "-q"), ("push", "-q")):
        res = subprocess.run([bin_path("dvc"), *args], cwd=repo, capture_output=True, text=True)
        if res.returncode != 0:
            raise CgankdError(f"dvc {args[0]}", f"failed in {repo}: {last_line(res)}")
