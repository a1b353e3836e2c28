"""A comparison grid in a tracker: any :class:`Tracker` works, not only dataclasses (the
grid keeps the tracker's ``location()`` to resume its parent run)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mtlkit.errors import ConfigError
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.grid_tracking import TRACKING_FILE, track_grid
from mtlkit.tracking import TrackedRun, Tracker

#: What the trackers of this module were asked to do, in order.
EVENTS: list[tuple] = []


class NotesRun(TrackedRun):
    def __init__(self, run_id: str) -> None:
        self.id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        EVENTS.append(("params", self.id, dict(params)))

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        EVENTS.append(("metrics", self.id, dict(values), step))

    def log_artifacts(self, path: Path, name: str | None = None) -> None:
        EVENTS.append(("artifacts", self.id, Path(path).name))

    def finish(self, failed: bool = False) -> None:
        EVENTS.append(("finish", self.id, failed))


class NotesTracker(Tracker):
    """A plain class (not a dataclass): runs are notes in :data:`EVENTS`."""

    def __init__(self, book: str) -> None:
        self.book = book

    @classmethod
    def create(cls) -> NotesTracker:
        return cls("default")

    def start_run(self, name: str, parent: str | None = None) -> NotesRun:
        run = NotesRun(f"{self.book}/{name}/{len(EVENTS)}")
        EVENTS.append(("start", run.id, parent))
        return run

    def resume_run(self, run_id: str) -> NotesRun:
        EVENTS.append(("resume", run_id))
        return NotesRun(run_id)

    def describe(self, run_id: str) -> str:
        return f"note {run_id}"


class ClientTracker(NotesTracker):
    """Holds a value that is not JSON among its attributes, and does not say its location."""

    def __init__(self, book: str) -> None:
        super().__init__(book)
        self.client = object()


@pytest.fixture
def config() -> CompareConfig:
    EVENTS.clear()
    return CompareConfig.from_mapping({"data": ["synthetic"], "models": ["mmoe"]}, validate=False)


def test_a_tracker_that_is_not_a_dataclass_tracks_and_resumes_a_grid(config, tmp_path):
    with track_grid("notes", NotesTracker("lab"), tmp_path, config) as grid:
        parent = grid.run.id
        assert grid.describe() == f"note {parent}"
        copy = pickle.loads(pickle.dumps(grid.cells))  # what the worker processes get
        assert (copy.parent, copy.tracker.location()) == (parent, {"book": "lab"})
    assert EVENTS[0] == ("start", parent, None)
    assert EVENTS[1][:2] == ("params", parent) and EVENTS[1][2]["models"] == ["mmoe"]
    assert EVENTS[-1] == ("finish", parent, False)
    saved = json.loads((tmp_path / TRACKING_FILE).read_text())
    assert saved == {"track": "notes", "tracker": {"book": "lab"}, "run": parent}

    EVENTS.clear()  # resumed with the same tracker: the same parent run
    with track_grid("notes", NotesTracker("lab"), tmp_path, config) as grid:
        assert grid.run.id == parent
    assert [("resume", parent), ("finish", parent, False)] == EVENTS

    EVENTS.clear()  # another location: a new parent run
    with track_grid("notes", NotesTracker("other"), tmp_path, config) as grid:
        assert grid.run.id != parent
    assert EVENTS[0][0] == "start"


def test_a_location_that_is_not_json_is_a_clear_error(config, tmp_path):
    with (
        pytest.raises(ConfigError, match=r"ClientTracker.location\(\) must return JSON values"),
        track_grid("notes", ClientTracker("lab"), tmp_path, config),
    ):
        pass
    assert EVENTS == [] and not (tmp_path / TRACKING_FILE).exists()
