"""Two clients of one tracking store writing the same new row at once (cgankd/ops/conflicts.py):
the experiment both pipelines create, and the champion alias both registers move. A real sqlite
store; each test puts the code on the losing side of the race by having the other client's
write land between this client's read and its write."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, RESOURCE_ALREADY_EXISTS, TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient

from cgankd.ops import tracking
from cgankd.ops.conflicts import conflict
from cgankd.ops.model_registry import _promote_unlocked

NAME = "cgankd-race"


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    mlflow.set_tracking_uri(None)


def unique_violation() -> MlflowException:
    """What the store answers the second of two concurrent inserts of one key (sqlite's words)."""
    return MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_aliases.name, "
                           "registered_model_aliases.alias", error_code=BAD_REQUEST)


def test_conflicts_are_told_from_other_errors():
    assert conflict(unique_violation())
    # what the client of a tracking server on PostgreSQL receives
    assert conflict(RestException({"error_code": "BAD_REQUEST", "message": "(psycopg2.errors.UniqueViolation) "
                                   "duplicate key value violates unique constraint \"registered_model_alias_pk\""}))
    assert conflict(MlflowException("exists", error_code=RESOURCE_ALREADY_EXISTS))
    assert not conflict(MlflowException("Invalid value for alias", error_code=BAD_REQUEST))
    assert not conflict(MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE))
    assert not conflict(ConnectionError("refused"))


def test_the_pipeline_that_loses_the_experiment_race_logs_into_that_experiment(store, monkeypatch, tmp_path):
    """The other pipeline creates ``cgankd`` between this one's lookup and its create: this one's
    parent run still lands in ``cgankd`` (``mlflow.set_experiment`` alone would leave it in Default)."""
    from conftest import shrunk

    real = MlflowClient.create_experiment
    calls = {"n": 0}

    def other_first(self, name, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:  # both looked and found none; the other pipeline creates it first
            real(store, name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "create_experiment", other_first)
    cfg = shrunk(tmp_path / "out")
    with tracking.pipeline_run(cfg) as run_id:
        pass
    assert calls["n"] == 1
    exp = store.get_experiment_by_name(cfg.tracking.experiment)
    assert store.get_run(run_id).info.experiment_id == exp.experiment_id != "0"
    assert store.get_experiment(exp.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def _versions(client: MlflowClient, metrics: list[float]) -> list[str]:
    """Complete versions (cgankd/ops/registry_lock.py) of NAME with these test accuracies."""
    client.create_registered_model(NAME)
    versions = []
    for acc in metrics:
        v = client.create_model_version(NAME, "file:///nowhere", None).version
        client.set_model_version_tag(NAME, v, "metric_name", "test_acc")
        client.set_model_version_tag(NAME, v, "test_metric", str(acc))
        versions.append(str(v))
    return versions


class Racing(MlflowClient):
    """This register's client; ``before_write`` runs once, just before its first alias move
    reaches the store (the other register's move landing first)."""

    def __init__(self, uri: str, before_write) -> None:
        super().__init__(uri)
        self.before_write = before_write

    def set_registered_model_alias(self, name, alias, version):
        hook, self.before_write = self.before_write, None
        if hook is not None:
            hook()
        return super().set_registered_model_alias(name, alias, version)


def test_a_refused_alias_move_is_decided_again_against_the_new_champion(store):
    """Both registers read "no champion"; the other (worse) sets it first and this one's insert is
    refused: this one decides again against the other and becomes champion."""
    worse, better = _versions(store, [50.0, 60.0])

    def other_first():
        store.set_registered_model_alias(NAME, "champion", worse)
        raise unique_violation()

    client = Racing(store.tracking_uri, other_first)
    result = _promote_unlocked(client, NAME, client.get_model_version(NAME, better), 0.0, False)
    assert result["alias"] == "champion" and str(store.get_model_version_by_alias(NAME, "champion").version) == better
    assert result["reason"].startswith(f"test_acc 60 vs champion v{worse} 50: improves")


def test_a_champion_taken_right_after_this_move_is_decided_again(store):
    """This register moves the champion; the other (worse) overwrites it before this one reads it
    back: this one decides again and takes it back. A worse one that loses becomes challenger."""
    worse, better = _versions(store, [50.0, 60.0])
    client = Racing(store.tracking_uri, None)
    real_move = MlflowClient.set_registered_model_alias

    def move_then_overwritten(name, alias, version):
        real_move(client, name, alias, version)
        if alias == "champion" and version == better and client.overwrites:
            client.overwrites -= 1
            store.set_registered_model_alias(NAME, "champion", worse)

    client.overwrites = 1
    client.set_registered_model_alias = move_then_overwritten
    result = _promote_unlocked(client, NAME, client.get_model_version(NAME, better), 0.0, False)
    assert result["alias"] == "champion" and str(store.get_model_version_by_alias(NAME, "champion").version) == better
    assert client.overwrites == 0 and result["reason"].startswith(f"test_acc 60 vs champion v{worse} 50")
    loser = _promote_unlocked(store, NAME, store.get_model_version(NAME, worse), 0.0, False)
    assert loser["alias"] == "challenger" and str(store.get_model_version_by_alias(NAME, "champion").version) == better


def test_other_errors_of_an_alias_move_are_not_retried(store):
    _, better = _versions(store, [50.0, 60.0])
    calls = {"n": 0}

    def broken():
        calls["n"] += 1
        raise MlflowException("Invalid alias", error_code=BAD_REQUEST)

    client = Racing(store.tracking_uri, broken)
    with pytest.raises(MlflowException, match="Invalid alias"):
        _promote_unlocked(client, NAME, client.get_model_version(NAME, better), 0.0, False)
    assert calls["n"] == 1 and not store.get_registered_model(NAME).aliases
