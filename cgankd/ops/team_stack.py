"""``cgankd team-stack`` (``make team-stack``): a team's tracking stack on this machine for a try-out:
a PostgreSQL server, an MLflow tracking server on it (backend store) with proxied artifact storage,
a Prefect server on it, and a WebDAV server as the team's DVC remote (cgankd/ops/dvc_remote.py); then
the pipeline, ``cgankd serve``, ``cgankd promote``, the Prefect deployments and ``dvc push/pull`` use it
through the usual variables, written to ``<root>/client.env`` (mode 0600):

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000
    MLFLOW_TRACKING_USERNAME=cgankd-pipeline  MLFLOW_TRACKING_PASSWORD=...
    PREFECT_API_URL=http://127.0.0.1:4200/api  PREFECT_API_AUTH_STRING=cgankd:...
    CGANKD_DVC_REMOTE_URL=webdav://127.0.0.1:8190/dvc  CGANKD_DVC_REMOTE_USER=cgankd  ..._PASSWORD=...

Nobody gets in without credentials, and everything listens on 127.0.0.1 only:
- PostgreSQL authenticates every connection, TCP and socket, with ``scram-sha-256``; its
  bootstrap superuser (``cgankd_admin``) only creates the application role ``cgankd``, which owns
  the databases and is not a superuser (no ``COPY ... FROM PROGRAM``, no new roles or databases);
- MLflow runs its basic-auth app (its user store in PostgreSQL); each worker trusts a password it
  checked for ``AUTH_CACHE_S`` s (a changed one too; bench/team_auth.py). Clients get least-privilege
  accounts (cgankd/ops/mlflow_accounts.py): ``client.env`` the pipeline's, ``<root>/serve.env`` a
  read-only one for ``cgankd serve``; the admin's password stays in ``secrets/``;
- Prefect requires its API auth string and answers CORS only for its own origin.
Passwords are generated on first start (``secrets.token_urlsafe``), kept in ``<root>/secrets/`` (0700, files 0600),
given to servers through their environment, never on a command line; a role's is sent as its SCRAM verifier.
In production the three servers run where the team runs them (a managed PostgreSQL, MLflow and Prefect behind the
team's proxy); only the two variables change. PostgreSQL comes from the system (``apt-get install postgresql``); as
root it runs as the ``postgres`` user, as PostgreSQL requires.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cgankd.base.errors import CgankdError
from cgankd.base.io import open_private
from cgankd.ops import dvc_remote
from cgankd.ops.mlflow_accounts import ADMIN as MLFLOW_ADMIN
from cgankd.ops.mlflow_accounts import account_env, create_accounts
from cgankd.ops.mlflow_ui import no_mlflow_jobs
from cgankd.ops.scram import password_sql
from cgankd.ops.servers import bin_path, last_line, stop, wait_http

USER = "cgankd"  # the application role the servers connect as: owns the databases, not a superuser
ADMIN = "cgankd_admin"  # PostgreSQL's bootstrap superuser: creates the role and the databases only
PREFECT_USER = "cgankd"
AUTH_CACHE_S = 30


class Secrets:
    """Generated passwords in ``folder`` (0700), one 0600 file each, created on first use. Files are
    opened without following links, so a planted symlink cannot redirect a write or a read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, name: str) -> str:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700, follow_symlinks=False)
        path = self.folder / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd) as f:
                return f.read().strip()
        value = secrets.token_urlsafe(24)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        return value


def pg_bindir() -> Path:
    """Where PostgreSQL's server programs are: PATH, then Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, "pg_ctl").is_file():
            return Path(d)
    raise CgankdError("postgresql", "no PostgreSQL server programs (pg_ctl, initdb) found; install them, "
                      "e.g. apt-get install postgresql")


def _owner() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL's programs: ourselves, or as root (which PostgreSQL refuses) the
    ``postgres`` user (``nobody`` where there is none)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")


def _as_owner(cmd: list[str]) -> list[str]:
    user = _owner()
    return cmd if user is None else ["runuser", "-u", user.pw_name, "--", *cmd]


def _chown(path: Path) -> None:
    """Hand ``path`` and what is inside to PostgreSQL's user, never following a link (a planted
    symlink would hand its target over)."""
    user = _owner()
    if user is not None:
        for p in [path, *path.rglob("*")]:
            os.chown(p, user.pw_uid, user.pw_gid, follow_symlinks=False)


@dataclass
class Postgres:
    """A PostgreSQL server in ``data`` on 127.0.0.1:``port``, created on first use with
    scram-sha-256 authentication and passwords from ``secrets`` (default: ``data``'s sibling
    ``secrets/``)."""

    data: Path
    port: int
    secrets: Secrets | None = None

    def __post_init__(self) -> None:
        self.secrets = self.secrets or Secrets(self.data.parent / "secrets")

    def url(self, db: str, driver: str = "postgresql") -> str:
        """The application role's URL, password included: for a server's environment only."""
        return f"{driver}://{USER}:{self.secrets.get('postgres-' + USER)}@127.0.0.1:{self.port}/{db}"

    def _run(self, *cmd: str, env: dict[str, str] | None = None, feed: str | None = None):  # noqa: ANN202
        res = subprocess.run(_as_owner(list(cmd)), capture_output=True, text=True, input=feed,
                             env={**os.environ, **(env or {})})
        if res.returncode != 0:
            raise CgankdError("postgresql", f"{Path(cmd[0]).name} failed: {last_line(res)}")
        return res

    def _admin_sql(self, sql: str, db: str = "postgres") -> str:
        """One statement as the bootstrap superuser over TCP, fed on stdin (none of it in the process list)."""
        res = self._run(str(pg_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", ADMIN, "-d", db,
                        "-v", "ON_ERROR_STOP=1", "-tA", "-f", "-", feed=sql + "\n",
                        env={"PGPASSWORD": self.secrets.get("postgres-" + ADMIN)})
        return res.stdout.strip()

    def start(self) -> Postgres:
        bin_ = pg_bindir()
        self.data.mkdir(parents=True, exist_ok=True)
        if (self.data / "PG_VERSION").is_file() and not (self.secrets.folder / f"postgres-{ADMIN}").is_file():
            raise CgankdError(str(self.data), "was created without credentials by an earlier cgankd; stop it, "
                              "move the folder away (its runs go with it) and start the stack again")
        admin_pw = self.secrets.get("postgres-" + ADMIN)
        _chown(self.data)
        if not (self.data / "PG_VERSION").is_file():
            pwfile = self.data.parent / f".{self.data.name}-initdb-pw"  # PostgreSQL's user alone reads it, once
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(admin_pw + "\n")
            _chown(pwfile)
            try:
                self._run(str(bin_ / "initdb"), "-D", str(self.data), "-U", ADMIN, "--auth=scram-sha-256",
                          f"--pwfile={pwfile}", "-E", "UTF8")
            finally:
                pwfile.unlink(missing_ok=True)
        sock = self.data  # its Unix socket beside the data: no /var/run needed
        self._run(str(bin_ / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1", "start")
        app_pw = self.secrets.get("postgres-" + USER)
        if self._admin_sql(f"SELECT 1 FROM pg_roles WHERE rolname='{USER}'") != "1":
            self._admin_sql(f"CREATE ROLE {USER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE {password_sql(app_pw)}")
        return self

    def create_db(self, name: str) -> None:
        """A database owned by the application role (created by the admin)."""
        if self._admin_sql(f"SELECT 1 FROM pg_database WHERE datname='{name}'") != "1":
            self._admin_sql(f"CREATE DATABASE {name} OWNER {USER}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            subprocess.run(_as_owner([str(pg_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                           capture_output=True)


def mlflow_server(pg: Postgres, artifacts: Path, port: int, log: Path, workers: int = 1,
                  auth_cache_s: int = AUTH_CACHE_S) -> subprocess.Popen:
    """``mlflow server`` with PostgreSQL as the backend store, artifacts proxied to ``artifacts``,
    and its basic-auth app (users in PostgreSQL too); clients authenticate with ``client_env``."""
    pg.create_db("mlflow")
    pg.create_db("mlflow_auth")
    ini = pg.secrets.folder / "mlflow-auth.ini"
    with open_private(ini) as f:  # holds the auth store's URL with its password
        f.write(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {pg.url('mlflow_auth')}\n"
                f"admin_username = {MLFLOW_ADMIN}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                f"auth_cache_ttl_seconds = {auth_cache_s}\n")
    env = {**os.environ, **no_mlflow_jobs(), "MLFLOW_DISABLE_TELEMETRY": "true",
           "MLFLOW_BACKEND_STORE_URI": pg.url("mlflow"),
           "MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_PASSWORD": pg.secrets.get("mlflow-admin"),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": pg.secrets.get("mlflow-flask-key")}
    proc = subprocess.Popen([bin_path("mlflow"), "server", "--app-name", "basic-auth",
                             "--artifacts-destination", str(artifacts), "--serve-artifacts",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                            stdout=open_private(log, True), stderr=subprocess.STDOUT, start_new_session=True, env=env)
    wait_http(f"http://127.0.0.1:{port}/health", proc, 180, "mlflow server")
    create_accounts(f"http://127.0.0.1:{port}", pg.secrets)
    return proc


def prefect_server(pg: Postgres, home: Path, port: int, log: Path) -> subprocess.Popen:
    """``prefect server start`` with PostgreSQL (asyncpg) as its database, its API auth string
    required and CORS for its own origin alone."""
    pg.create_db("prefect")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": pg.url("prefect", "postgresql+asyncpg"),
           "PREFECT_SERVER_API_AUTH_STRING": prefect_auth(pg.secrets),
           "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([bin_path("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=open_private(log, True), stderr=subprocess.STDOUT, start_new_session=True, env=env)
    wait_http(f"http://127.0.0.1:{port}/api/health", proc, 180, "prefect server")
    return proc


def prefect_auth(store: Secrets) -> str:
    return f"{PREFECT_USER}:{store.get('prefect-api')}"


def client_env(store: Secrets, mlflow_port: int, prefect_port: int | None, role: str = "pipeline") -> dict[str, str]:
    """What a client exports to use the stack: the addresses and the credentials of ``role`` (pipeline:
    runs, registers and promotes; serve: reads the registry; cgankd/ops/mlflow_accounts.py)."""
    env = account_env(store, f"http://127.0.0.1:{mlflow_port}", role)
    if prefect_port:
        env.update({"PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
                    "PREFECT_API_AUTH_STRING": prefect_auth(store)})
    return env


@contextmanager
def team_stack(root: Path, pg_port: int = 5433, mlflow_port: int = 5000, prefect_port: int | None = 4200,
               dav_port: int | None = 8190) -> Iterator[dict[str, str]]:
    """The stack under ``root`` (data kept between runs); yields the variables that point at it."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)  # its logs and artifacts are the team's: no other local user reads them past MLflow's auth
    pg = Postgres(root / "postgres", pg_port).start()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(mlflow_server(pg, root / "mlartifacts", mlflow_port, root / "mlflow.log", workers=2))
        if prefect_port:
            procs.append(prefect_server(pg, root / "prefect", prefect_port, root / "prefect.log"))
        env = client_env(pg.secrets, mlflow_port, prefect_port)
        if dav_port:  # the DVC remote: data, models and fakes shared through dvc push / pull
            dav_pw = pg.secrets.get("dvc-webdav")
            procs.append(dvc_remote.webdav_server(root / "dvc-store", dav_pw, dav_port,
                                                  pg.secrets.folder / "wsgidav.yaml", root / "webdav.log"))
            env.update(dvc_remote.client_env(dav_pw, dav_port))
        yield env
    finally:
        for p in reversed(procs):
            stop(p)
        pg.stop()


def serve_forever(root: Path, pg_port: int, mlflow_port: int, prefect_port: int, dav_port: int = 8190) -> None:
    with team_stack(root, pg_port, mlflow_port, prefect_port, dav_port) as env:
        client = root / "client.env"
        with open_private(client) as f:
            f.write("".join(f"{k}={v}\n" for k, v in env.items()))
        with open_private(root / "serve.env") as f:  # cgankd serve: reads the registry, changes nothing
            f.write("".join(f"{k}={v}\n" for k, v in account_env(
                Secrets(root / "secrets"), env["MLFLOW_TRACKING_URI"], "serve").items()))
        print(f"team stack up on 127.0.0.1 (data in {root}; Ctrl-C stops it). Every server asks for "
              f"credentials; they are in {client} (mode 0600). In another shell:")
        print(f"  set -a; . {client}; set +a")
        print("then, in each checkout: cgankd dvc-remote (DVC's remote: this stack's WebDAV server); and "
              "cgankd run / cgankd repro && dvc push / dvc pull / cgankd compare --workers 2 / cgankd serve / "
              "cgankd promote / prefect deploy --all (then prefect worker start --pool cgankd)")
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("stopping the team stack")
