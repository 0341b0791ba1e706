"""The team stack's MLflow server (PostgreSQL backend, basic-auth app, 2 workers) with and without
MLflow's auth cache, side by side.

Every request to the basic-auth app carries the password, and MLflow checks it against its scrypt
hash (~0.1 s of CPU by design). The team stack lets each server worker trust a password it checked
for ``AUTH_CACHE_S`` seconds (``auth_cache_ttl_seconds``; 0 is MLflow's default, no cache). For each
setting, alternately, ``--repeats`` times: one client logs ``--metrics`` metrics one request each
into a new run; the client's seconds and the CPU seconds the server's processes used meanwhile.

    python bench/team_auth.py          # writes bench/results/team_auth.{json,md}; needs PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mlflow_server import group, machine, usage  # noqa: E402  (bench/'s own helper)

from cgankd.base.errors import CgankdError  # noqa: E402
from cgankd.base.io import write_json, write_text  # noqa: E402
from cgankd.ops.servers import stop  # noqa: E402
from cgankd.ops.team_stack import AUTH_CACHE_S, Postgres, client_env, mlflow_server  # noqa: E402
from cgankd.serve.process import free_port  # noqa: E402


def one(pg: Postgres, root: Path, cache_s: int, metrics: int) -> dict:
    port = free_port()
    proc = mlflow_server(pg, root / "mlartifacts", port, root / f"mlflow-{cache_s}.log", workers=2,
                         auth_cache_s=cache_s)
    try:
        os.environ.update(client_env(pg.secrets, port, None))
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"http://127.0.0.1:{port}")
        exp = client.get_experiment_by_name("bench") or client.get_experiment(client.create_experiment("bench"))
        cpu0, _ = usage(group(proc.pid))
        start = time.monotonic()
        run = client.create_run(exp.experiment_id).info.run_id
        for i in range(metrics):
            client.log_metric(run, "loss", 1.0 / (i + 1), step=i)
        client.set_terminated(run)
        seconds = time.monotonic() - start
        cpu1, _ = usage(group(proc.pid))
        return {"auth_cache_s": cache_s, "requests": metrics + 2, "client_s": round(seconds, 2),
                "server_cpu_s": round(cpu1 - cpu0, 1)}
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--metrics", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cgankd-bench-auth-"))
    root.chmod(0o755)  # as root PostgreSQL runs as `postgres`, which must enter it
    try:
        pg = Postgres(root / "postgres", free_port()).start()
    except CgankdError as exc:
        raise SystemExit(f"team_auth: {exc}") from None
    try:
        runs = [one(pg, root, cache, args.metrics) for _ in range(args.repeats) for cache in (0, AUTH_CACHE_S)]
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    write_json(args.out / "team_auth.json", {"machine": machine(), "runs": runs})
    lines = [f"# the team stack's MLflow server, {args.metrics} metrics logged one request each ({machine()})", "",
             "| auth cache (s) | requests | client s | server CPU s |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['auth_cache_s']} | {r['requests']} | {r['client_s']} | {r['server_cpu_s']} |" for r in runs]
    write_text(args.out / "team_auth.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
