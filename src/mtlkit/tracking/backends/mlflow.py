"""MLflow: one MLflow run per training run, a grid's cells nested under one parent run.

The runs go to ``MLFLOW_TRACKING_URI`` when it is set (a server, a database...), else to a
local file store ``./mlruns`` (MLflow >= 3.7 keeps that store behind
``MLFLOW_ALLOW_FILE_STORE``, which is set for it here), in the experiment
``MLFLOW_EXPERIMENT_NAME`` (default ``mtlkit``). Only the client API of ``mlflow-skinny`` is
used (``pip install "mtlkit[mlflow]"``).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mtlkit.errors import ConfigError, missing_extra
from mtlkit.tracking.base import TRACKERS, TrackedRun, Tracker

DEFAULT_STORE = "mlruns"
DEFAULT_EXPERIMENT = "mtlkit"
#: MLflow refuses longer parameter values.
MAX_PARAM_LENGTH = 6000
#: How long a tracking server has to accept a connection before a run starts, in seconds.
CONNECT_TIMEOUT_S = 5.0


@TRACKERS.register(
    "mlflow", "MLflow runs ($MLFLOW_TRACKING_URI, else ./mlruns), cells nested", extra="mlflow"
)
@dataclass(frozen=True)
class MlflowTracker(Tracker):
    """Runs in the experiment ``experiment_id`` of the tracking store at ``uri``."""

    uri: str
    experiment_id: str

    @classmethod
    def create(cls) -> MlflowTracker:
        """The tracker, after checking that the store answers (a server within
        :data:`CONNECT_TIMEOUT_S` seconds) and that the experiment can take runs: a
        :class:`~mtlkit.errors.ConfigError` naming what to fix otherwise, before any training."""
        try:
            from mlflow.exceptions import MlflowException
        except ImportError as err:
            raise missing_extra("tracking with MLflow", "mlflow", err) from None
        uri = os.environ.get("MLFLOW_TRACKING_URI") or Path(DEFAULT_STORE).resolve().as_uri()
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        _probe(uri)
        try:
            client = _client(uri)
            experiment = client.get_experiment_by_name(name)
            if experiment is not None and experiment.lifecycle_stage == "deleted":
                raise ConfigError(
                    f"the MLflow experiment {name!r} at {uri} is deleted: restore it (mlflow "
                    "experiments restore) or set MLFLOW_EXPERIMENT_NAME to another name."
                )
            if experiment is None:
                return cls(uri, client.create_experiment(name))
        except MlflowException as err:
            raise _unusable(uri, err) from None
        return cls(uri, experiment.experiment_id)

    def start_run(self, name: str, parent: str | None = None) -> MlflowRun:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {MLFLOW_PARENT_RUN_ID: parent} if parent else {}
        run = _client(self.uri).create_run(self.experiment_id, run_name=name, tags=tags)
        return MlflowRun(self.uri, run.info.run_id)

    def resume_run(self, run_id: str) -> MlflowRun:
        _client(self.uri).update_run(run_id, status="RUNNING")
        return MlflowRun(self.uri, run_id)

    def describe(self, run_id: str) -> str:
        where = f"MLflow run {run_id} (experiment {self.experiment_id}) at {self.uri}"
        if urlparse(self.uri).scheme == "file":
            where += (
                "; browse it with the full mlflow package: MLFLOW_ALLOW_FILE_STORE=true "
                f"mlflow ui --backend-store-uri {self.uri}"
            )
        return where


class MlflowRun(TrackedRun):
    def __init__(self, uri: str, run_id: str) -> None:
        self.uri, self.id = uri, run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        _client(self.uri).log_batch(
            self.id, params=[Param(k, _text(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        )

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(k, float(v), stamp, step or 0) for k, v in values.items()]
        _client(self.uri).log_batch(self.id, metrics=metrics)

    def log_artifacts(self, path: Path, name: str | None = None) -> None:
        client = _client(self.uri)
        if Path(path).is_dir():
            client.log_artifacts(self.id, str(path), name)
        else:
            client.log_artifact(self.id, str(path), name)

    def finish(self, failed: bool = False) -> None:
        _client(self.uri).set_terminated(self.id, "FAILED" if failed else "FINISHED")


def _probe(uri: str) -> None:
    """A tracking server at ``uri`` (http/https) accepts a connection within
    :data:`CONNECT_TIMEOUT_S` seconds; MLflow's own client would retry for minutes."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ConfigError(
            f"no MLflow tracking server answers at MLFLOW_TRACKING_URI={uri} "
            f"({err.strerror or err}); start it (mlflow server) or fix the address."
        ) from None


def _unusable(uri: str, err: Exception) -> ConfigError:
    """The error for a tracking URI MLflow refuses (an unknown scheme, a store it cannot open)."""
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    if isinstance(err, UnsupportedModelRegistryStoreURIException):
        reason = f"{urlparse(uri).scheme}: is not a scheme MLflow tracks to"
    else:
        reason = str(err).strip().splitlines()[0][:150] if str(err).strip() else type(err).__name__
    return ConfigError(
        f"MLflow cannot track to MLFLOW_TRACKING_URI={uri!r} ({reason}); set it to a server "
        "(http://HOST:PORT), a database (sqlite:///mlflow.db) or a folder (file:///PATH)."
    )


@functools.cache
def _client(uri: str):
    """One MLflow client per store and process."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as err:
        raise missing_extra("tracking with MLflow", "mlflow", err) from None
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):  # MLflow >= 3.7 keeps its file store behind this switch
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(uri)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
