"""``cgankd team-stack`` (``make team-stack``): a team's tracking stack on this machine for a try-out:
a PostgreSQL server, an MLflow tracking server on it (backend store) with proxied artifact storage,
and a Prefect server on it; then the pipeline, ``cgankd serve``, ``cgankd promote`` and the Prefect
deployments use it through the usual variables, which it prints:

    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
    export PREFECT_API_URL=http://127.0.0.1:4200/api

In production the same three servers run where the team runs them (a managed PostgreSQL, the
MLflow and Prefect servers behind the team's proxy); only the two variables change. PostgreSQL
comes from the system (Debian's ``postgresql`` package: ``apt-get install postgresql``); as root
it runs as the ``postgres`` user, as PostgreSQL requires.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cgankd.errors import CgankdError

USER = "cgankd"  # the database role the servers connect as (trust auth on loopback only)


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
    user = _owner()
    if user is not None:
        for p in [path, *path.rglob("*")]:
            os.chown(p, user.pw_uid, user.pw_gid)


@dataclass
class Postgres:
    """A PostgreSQL server in ``data`` on 127.0.0.1:``port``, created on first use."""

    data: Path
    port: int

    def url(self, db: str, driver: str = "postgresql") -> str:
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{db}"

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        res = subprocess.run(_as_owner(list(cmd)), capture_output=True, text=True)
        if res.returncode != 0:
            last = ((res.stderr or res.stdout).strip().splitlines() or ["no output"])[-1]
            raise CgankdError("postgresql", f"{Path(cmd[0]).name} failed: {last}")
        return res

    def start(self) -> Postgres:
        bin_ = pg_bindir()
        self.data.mkdir(parents=True, exist_ok=True)
        _chown(self.data)
        if not (self.data / "PG_VERSION").is_file():
            self._run(str(bin_ / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")
        sock = self.data  # its Unix socket beside the data: no /var/run needed
        self._run(str(bin_ / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1", "start")
        return self

    def create_db(self, name: str) -> None:
        bin_ = pg_bindir()
        query = f"SELECT 1 FROM pg_database WHERE datname='{name}'"
        have = subprocess.run(_as_owner([str(bin_ / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                                         "-d", "postgres", "-tAc", query]), capture_output=True, text=True)
        if have.stdout.strip() != "1":
            self._run(str(bin_ / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            subprocess.run(_as_owner([str(pg_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                           capture_output=True)


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def wait_http(url: str, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CgankdError(what, f"exited with code {proc.returncode} while starting (see its log)")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise CgankdError(what, f"did not answer at {url} within {timeout:.0f} s (see its log)")


def mlflow_server(pg: Postgres, artifacts: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen:
    """``mlflow server`` with PostgreSQL as the backend store, artifacts proxied to ``artifacts``."""
    pg.create_db("mlflow")
    proc = subprocess.Popen([_bin("mlflow"), "server", "--backend-store-uri", pg.url("mlflow"),
                             "--artifacts-destination", str(artifacts), "--serve-artifacts",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    wait_http(f"http://127.0.0.1:{port}/health", proc, 180, "mlflow server")
    return proc


def prefect_server(pg: Postgres, home: Path, port: int, log: Path) -> subprocess.Popen:
    """``prefect server start`` with PostgreSQL (asyncpg) as its database."""
    pg.create_db("prefect")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": pg.url("prefect", "postgresql+asyncpg")}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True, env=env)
    wait_http(f"http://127.0.0.1:{port}/api/health", proc, 180, "prefect server")
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the PID (its process group: the server's own children go too), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def team_stack(root: Path, pg_port: int = 5433, mlflow_port: int = 5000, prefect_port: int | None = 4200
               ) -> Iterator[dict[str, str]]:
    """The stack under ``root`` (data kept between runs); yields the variables that point at it."""
    root.mkdir(parents=True, exist_ok=True)
    pg = Postgres(root / "postgres", pg_port).start()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(mlflow_server(pg, root / "mlartifacts", mlflow_port, root / "mlflow.log", workers=2))
        env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}"}
        if prefect_port:
            procs.append(prefect_server(pg, root / "prefect", prefect_port, root / "prefect.log"))
            env["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
        yield env
    finally:
        for p in reversed(procs):
            stop(p)
        pg.stop()


def serve_forever(root: Path, pg_port: int, mlflow_port: int, prefect_port: int) -> None:
    with team_stack(root, pg_port, mlflow_port, prefect_port) as env:
        print(f"team stack up (data in {root}; Ctrl-C stops it). In another shell:")
        for k, v in env.items():
            print(f"  export {k}={v}")
        print("then: cgankd run / cgankd compare --workers 2 / cgankd serve / cgankd promote / "
              "python flows/deploy.py")
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("stopping the team stack")
