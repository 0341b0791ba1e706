"""Least-privilege accounts on the team stack's MLflow server (its basic-auth app).

- ``cgankd-admin`` administers users and permissions; its password stays in the stack's ``secrets/``
  and is given to no client.
- ``cgankd-pipeline`` is what ``client.env`` carries: pipelines, registration, promotion and sweeps
  create the ``cgankd`` experiment and the registered models, so MLflow makes it their manager.
- ``cgankd-serve`` is what ``serve.env`` carries: ``cgankd serve`` reads the registry and the
  artifacts with the server's default permission, READ, and can change no run, version or alias of
  the team's (the server refuses with 403).

Users are created by the admin through MLflow's REST API (``users/create``) when the stack starts,
once; a password is generated into ``secrets/`` like the others and never reaches a command line.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Protocol

from cgankd.base.errors import CgankdError

ADMIN = "cgankd-admin"
ACCOUNTS = {"pipeline": "cgankd-pipeline", "serve": "cgankd-serve"}  # role -> MLflow user


class Store(Protocol):
    def get(self, name: str) -> str: ...


def _auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def create_accounts(uri: str, store: Store) -> None:
    """The pipeline and serve users, made by the admin (an existing one is kept, with its password)."""
    for role, user in ACCOUNTS.items():
        body = json.dumps({"username": user, "password": store.get(f"mlflow-{role}")}).encode()
        req = urllib.request.Request(f"{uri}/api/2.0/mlflow/users/create", body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": _auth(ADMIN, store.get("mlflow-admin"))})
        try:
            urllib.request.urlopen(req, timeout=30).close()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            if "RESOURCE_ALREADY_EXISTS" not in text:
                raise CgankdError("mlflow server", f"could not create the {user} account (HTTP {exc.code})") from None


def account_env(store: Store, uri: str, role: str) -> dict[str, str]:
    """MLflow's variables for ``role`` (pipeline, serve or admin)."""
    user = ADMIN if role == "admin" else ACCOUNTS[role]
    return {"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": store.get(f"mlflow-{role}")}
