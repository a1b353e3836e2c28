"""Each default and each vocabulary is declared once and read everywhere else (issue #20).

The greps below fail when a module writes a default again instead of reading its one
declaration; the other tests check that what is declared is usable (registered, complete).
"""

from __future__ import annotations

import re
from pathlib import Path

from mtlkit.training.settings import DEFAULT_MODEL, DEFAULT_STRATEGY, TrainConfig

SRC = Path(__file__).resolve().parents[1] / "src" / "mtlkit"


def _hits(pattern: str) -> list[str]:
    """``file:line`` of every match of ``pattern`` in mtlkit's source."""
    rx = re.compile(pattern)
    return [
        f"{path.relative_to(SRC)}:{n}"
        for path in sorted(SRC.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if rx.search(line)
    ]


def test_the_default_model_strategy_and_backend_are_written_once():
    # Written as a default: a constant, a default= / first= argument, a parameter's or a
    # setting's default, an 'or' fallback, a one-name default list or tuple.
    default = r'(^[A-Z_]+ = |default=|first=|: str = |\bor |Str\("\w+", )"{0}"|\("{0}",\)|\["{0}"\]'
    declared_in = {
        "joint": "training/settings.py",
        "mmoe": "training/settings.py",
        "local": "experiments/backends/__init__.py",
    }
    for name, module in declared_in.items():
        hits = _hits(default.format(name))
        assert [h.split(":")[0] for h in hits] == [module], hits


def test_the_monitor_default_is_read_from_train_config():
    assert _hits(r'"monitor",\s*"') == []
    assert TrainConfig.monitor == "loss"


def test_the_defaults_are_registered():
    from mtlkit.models import MODELS
    from mtlkit.training.strategies import STRATEGIES

    assert DEFAULT_MODEL in MODELS.available()
    assert DEFAULT_STRATEGY in STRATEGIES.available()


def test_every_named_extra_is_declared_in_pyproject():
    import tomllib

    root = SRC.parents[1]
    declared = set(
        tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    code = "".join(p.read_text() for p in SRC.rglob("*.py"))
    in_code = set(re.findall(r'missing_extra\([^)]*?"([\w-]+)",\s*(?:err)?\)', code))
    in_code |= set(re.findall(r"install_extra\('([\w-]+)'\)", code))
    docs = "".join(p.read_text() for p in (root / "docs").rglob("*.md"))
    in_docs = set(re.findall(r"mtlkit\[([\w-]+)\]", docs + code))
    assert {"mlflow", "tensorboard", "export", "ray"} <= in_code
    assert in_code | in_docs <= declared


def test_the_install_message_is_written_once():
    from mtlkit.errors import missing_extra

    # Written once as code; module docstrings (the help and API pages) may quote it.
    docstrings = (
        "cli/export.py",
        "tracking/backends/mlflow.py",
        "tracking/backends/tensorboard.py",
    )
    hits = [h for h in _hits(r"pip install") if not h.startswith(docstrings)]
    assert [h.split(":")[0] for h in hits] == ["errors.py"]
    message = str(missing_extra("--backend ray", "ray", ImportError("no ray")))
    assert message.endswith('install them with: pip install "mtlkit[ray]"')


def test_task_and_feature_kinds_are_listed_once():
    from mtlkit.data.schema import CLASSIFICATION_KINDS, FEATURE_KINDS, TASK_KINDS

    assert TASK_KINDS == ("binary", "multiclass", "regression")
    assert FEATURE_KINDS == ("numeric", "categorical")
    assert set(CLASSIFICATION_KINDS) < set(TASK_KINDS)
    # A second listing of the kinds (a tuple, set or frozenset of them) anywhere but schema.py.
    listing = r'[({\[]("binary", "multiclass"|"numeric", "categorical")'
    assert {h.split(":")[0] for h in _hits(listing)} == {"data/schema.py"}


def test_every_metric_declares_its_direction_kinds_and_function():
    from mtlkit.data.schema import TASK_KINDS
    from mtlkit.evaluation.metrics import METRICS

    for name, m in METRICS.items():
        assert m.name == name and isinstance(m.higher_is_better, bool), name
        assert m.task_kinds and m.task_kinds <= set(TASK_KINDS), name
        assert callable(m.compute) and m.description, name


def test_the_metrics_a_task_reports_are_the_tables(monkeypatch):
    import numpy as np

    from mtlkit.data.schema import TaskSpec
    from mtlkit.evaluation import metrics

    rng = np.random.default_rng(0)
    y = {"binary": rng.integers(0, 2, 40), "multiclass": np.arange(40) % 3}
    y["regression"] = rng.normal(size=40)
    p = {"binary": rng.random(40), "multiclass": rng.random((40, 3))}
    p["regression"] = rng.normal(size=40)
    n_classes = {"binary": 2, "multiclass": 3, "regression": 1}
    # A metric added to the table is computed for its kinds, with no other change.
    extra = metrics.Metric("count", True, frozenset({"regression"}), "rows", lambda s: len(s.y))
    monkeypatch.setitem(metrics.METRICS, "count", extra)
    for kind in ("binary", "multiclass", "regression"):
        out = metrics.task_metrics(TaskSpec("t", kind, n_classes[kind]), y[kind], p[kind])
        assert list(out) == metrics.metrics_for(kind), kind
        assert all(np.isfinite(v) for v in out.values()), (kind, out)
    assert out["count"] == 40


def test_every_lr_schedule_builds_a_torch_scheduler():
    import torch

    from mtlkit.training.schedules import SCHEDULES, make_scheduler, resumable, steps_on_metric
    from mtlkit.training.settings import LR_SCHEDULES

    assert LR_SCHEDULES == tuple(SCHEDULES.names()) == ("cosine", "plateau")
    assert make_scheduler(None, None, 5) is None and resumable(None)
    for name in LR_SCHEDULES:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = make_scheduler(name, optimizer, 4)
        for _ in range(4):
            optimizer.step()
            scheduler.step(1.0) if steps_on_metric(name) else scheduler.step()
        assert optimizer.param_groups[0]["lr"] < 1.0, name  # cosine: annealed; plateau: cut
    assert not resumable("cosine") and resumable("plateau")
    assert _hits(r'lr_schedule [!=]= "') == []


def test_report_file_names_and_the_baseline_are_written_once():
    names = r'"(results|summary)\.csv"|"report\.(html|md)"|"single_task"'
    files = sorted({h.split(":")[0] for h in _hits(names)})
    # cells.py declares the report's files, config.py BASELINE, single_task.py registers it.
    assert files == ["experiments/cells.py", "experiments/config.py", "models/single_task.py"]
