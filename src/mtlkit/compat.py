"""The original project's notebook API, kept working as thin facades over mtlkit.

>>> from mtlkit.compat import get_data, mmoe_model, CTCVRNet          # doctest: +SKIP
>>> data = get_data("data/", labels=["label0", "label1"])            # doctest: +SKIP
>>> model = mmoe_model(num_features=len(data.columns) - 2)           # doctest: +SKIP
>>> model.train(data, ["label0", "label1"], plot_list=["loss", "auc"], epoches=20, verbose=0)

The compat DataFrame marks a missing class label with ``-1`` (the original's convention);
``train`` turns every ``-1`` of a label column of whole numbers into "missing", which the
masked loss leaves out (it is never learnt as a class). A regression label (other numbers)
marks a missing value with NaN, and its ``-1`` is a value. Labels and plot names are lists;
a single name may be given as a string (``"label0"``, ``plot_list="loss"``). Each ``train``
saves its plots in a folder of its own under ``plot_dir``. Missing feature values stay NaN and are imputed by the data layer (training mean
plus a missing indicator). New code should use :func:`mtlkit.load_tables`,
:func:`mtlkit.split_table` and :class:`mtlkit.MultiTaskEstimator` directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtlkit.data.loading import Sources, load_tables
from mtlkit.data.schema import MultiTaskTable
from mtlkit.data.splits import split_table
from mtlkit.errors import ConfigError, DataError
from mtlkit.evaluation.run_record import History
from mtlkit.files import new_run_dir
from mtlkit.reporting.figures import save_figure
from mtlkit.reporting.plots.curves import plot_pr, plot_roc
from mtlkit.reporting.plots.history import plot_history
from mtlkit.training.build import build_estimator
from mtlkit.training.estimator import MultiTaskEstimator
from mtlkit.training.settings import DEFAULT_MODEL
from mtlkit.validation import check_choice, check_fraction

#: The label value that means "missing" in a compat DataFrame.
MISSING_LABEL = -1
PLOT_NAMES = ("loss", "accuracy", "auc", "pr")


def get_data(path: Sources, labels: Sequence[str], *, seed: int = 0) -> pd.DataFrame:
    """Read every CSV of a folder (or one file), merge and shuffle them into one DataFrame.

    The rows are merged as :func:`mtlkit.load_tables` does: the features are the union of the
    files' columns (NaN where a file lacks one), and a label a file lacks is ``-1``; a ``-1``
    already in a file's label column also means "missing", as in the original project. Prints
    the files and features used.
    """
    table = load_tables(path, labels=_names(labels, "labels"), missing_labels=[MISSING_LABEL])
    frame = table.features.copy()
    for spec in table.tasks:
        ids = table.labels[spec.name]
        present = table.masks[spec.name]
        if spec.kind == "regression":  # the values themselves; NaN where missing
            frame[spec.name] = np.where(present, ids, np.nan)
            continue
        values = np.full(len(table), MISSING_LABEL, dtype=object)
        values[present] = np.asarray(spec.classes, dtype=object)[ids[present].astype(np.int64)]
        frame[spec.name] = pd.Series(values).infer_objects()
    order = np.random.default_rng(seed).permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    sources, counts = np.unique(table.source, return_counts=True)
    print("files used:", ", ".join(f"{s} ({c} rows)" for s, c in zip(sources, counts)))
    print(f"features used ({len(table.features.columns)}):", ", ".join(table.features.columns))
    return frame


def to_table(data: pd.DataFrame, labels: Sequence[str]) -> MultiTaskTable:
    """A compat DataFrame as a :class:`MultiTaskTable`: ``-1`` labels become masked."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame (from get_data), got {type(data)}.")
    labels = _names(labels, "labels")
    missing = [lab for lab in labels if lab not in data.columns]
    if missing:
        raise DataError(
            f"label(s) {missing} are not columns of the data; its columns are "
            f"{list(data.columns)[:30]}. Check the labels passed to train()."
        )
    frame = data.copy()
    for label in labels:
        column = frame[label]
        numbers = pd.to_numeric(column, errors="coerce").dropna()
        if numbers.empty or (numbers % 1 == 0).all():  # class labels, not regression values
            is_missing = column.astype(str).str.strip().isin([str(MISSING_LABEL), "-1.0"])
            frame[label] = column.mask(is_missing)
    return load_tables(frame, labels=labels)


@dataclass
class TrainResult:
    """What ``train`` returns: the history, test metrics, plot files and training time."""

    history: History
    test_metrics: dict[str, dict[str, float]]
    plots: dict[str, Path] = field(default_factory=dict)
    train_time_s: float = 0.0


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class _CompatModel:
    """Shared ``train`` of the facades: convert, split, fit, time, evaluate, plot."""

    model_name = DEFAULT_MODEL

    def __init__(self, num_features: int | None, model_params: dict, settings: dict) -> None:
        per_call = sorted({"epochs", "epoches", "seed", "progress", "verbose"} & set(settings))
        if per_call:
            raise ConfigError(f"pass {per_call} to train(...), not to {type(self).__name__}(...).")
        self.num_features = num_features
        self.model_params = model_params
        self.settings = settings
        self.estimator: MultiTaskEstimator | None = None

    def _check(self, data: pd.DataFrame, labels: list[str]) -> None:
        """Subclasses check the labels; the feature count is checked here."""
        n = len(data.columns) - len(labels)
        if self.num_features is not None and n != self.num_features:
            raise DataError(
                f"the model was built for {self.num_features} features but the data has {n} "
                f"feature columns ({len(data.columns)} columns minus {len(labels)} labels); "
                f"build it with {type(self).__name__}({n})."
            )

    def train(
        self,
        data: pd.DataFrame,
        labels: Sequence[str],
        plot_list: Sequence[str] = PLOT_NAMES,
        epochs: int | None = None,
        verbose: int = 1,
        *,
        epoches: int | None = None,
        test_size: float = 0.15,
        val_size: float = 0.15,
        plot_dir: str | Path = "mtlkit-plots",
        seed: int = 0,
    ) -> TrainResult:
        """Split ``data`` (70/15/15 by default), train, print the training time, evaluate on
        the test split and draw the plots of ``plot_list`` ("loss", "accuracy", "auc" for ROC
        curves, "pr"): shown inline in a notebook and saved as PNG in a new folder of this
        training under ``plot_dir`` (so another training never draws over them).

        ``epoches`` is the original's spelling of ``epochs`` (default 20). ``verbose=0`` shows
        no progress bars.
        """
        epochs = _epochs(epochs, epoches)
        plot_list = _names(plot_list, "plot_list")
        for name in plot_list:
            check_choice("plot name", name, PLOT_NAMES)
        check_fraction("test_size", test_size)
        check_fraction("val_size", val_size)
        if test_size + val_size >= 1:
            raise ConfigError(f"test_size + val_size must be below 1, got {test_size + val_size}.")
        labels = _names(labels, "labels")
        table = to_table(data, labels)
        self._check(data, labels)
        train, val, test = split_table(
            table, (1 - test_size - val_size, val_size, test_size), seed=seed
        )
        self.estimator = build_estimator(
            self.model_name,
            model_params=self.model_params,
            epochs=epochs,
            seed=seed,
            progress=verbose > 0,
            **self.settings,
        )
        start = time.perf_counter()
        self.estimator.fit(train, validation=val)
        elapsed = time.perf_counter() - start
        print(f"training time: {elapsed:.1f} s ({len(self.estimator.history_.epochs)} epochs)")
        metrics = self.estimator.evaluate(test)
        if verbose:
            for task, values in metrics.items():
                print(task, {k: round(v, 4) for k, v in values.items()})
        folder = new_run_dir(Path(plot_dir), type(self).__name__) if plot_list else None
        plots = _plots(type(self).__name__, self.estimator, plot_list, test, folder)
        return TrainResult(self.estimator.history_, metrics, plots, elapsed)


def _names(value: str | Sequence[str], what: str) -> list[str]:
    """A list of names; a single string is one name (never read letter by letter)."""
    if isinstance(value, str):
        return [value]
    names = list(value) if isinstance(value, Iterable) else None
    if names is None or not all(isinstance(v, str) for v in names):
        raise ConfigError(f"{what} must be a name or a list of names, got {value!r:.80}.")
    return names


def _plots(
    label: str,
    est: MultiTaskEstimator,
    names: list[str],
    test: MultiTaskTable,
    folder: Path | None,
) -> dict[str, Path]:
    """Draw the named plots with :mod:`mtlkit.reporting.plots`; show inline, save as PNG."""
    scores = est.predict_proba(test)
    predictions = {
        t: (test.labels[t][test.masks[t]], scores[t][test.masks[t]]) for t in test.task_names
    }
    draw = {
        "loss": lambda: plot_history("loss", {label: [est.history_]}),
        "accuracy": lambda: plot_history("accuracy", {label: [est.history_]}),
        "auc": lambda: plot_roc({label: [predictions]}),
        "pr": lambda: plot_pr({label: [predictions]}),
    }
    show = _in_notebook()
    paths = {}
    for name in names:
        try:
            fig = draw[name]()
        except ConfigError as err:  # e.g. accuracy or ROC asked for on regression tasks only
            print(f"{name} plot skipped: {err}")
            continue
        if show:
            from IPython.display import display

            display(fig)
        paths[name] = save_figure(fig, folder / f"{name}.png")
        print(f"{name} plot saved to {paths[name]}")
    return paths


def _epochs(epochs: int | None, epoches: int | None) -> int:
    if epochs is not None and epoches is not None and epochs != epoches:
        raise ConfigError(
            f"got epochs={epochs} and epoches={epoches}; pass one of them (epoches is the "
            "original spelling of epochs)."
        )
    value = epochs if epochs is not None else epoches
    return 20 if value is None else value


class mmoe_model(_CompatModel):  # noqa: N801 - the original's name
    """MMoE (Ma et al., KDD 2018) for ``num_features`` feature columns: ``n_experts`` experts
    of ``expert_units`` units, towers of ``tower_units`` (8, 16 and 8, as the original).
    ``expert_units``/``tower_units`` are the original's spellings of mtlkit's
    ``expert_hidden=[16]``/``tower_hidden=[8]``, which may be given instead (e.g. deeper
    experts: ``expert_hidden=[32, 16]``).

    Other keyword arguments go to :class:`mtlkit.MultiTaskEstimator` (``lr``, ``batch_size``,
    ``embedding_dim``...).
    """

    model_name = "mmoe"

    def __init__(
        self,
        num_features: int,
        n_experts: int = 8,
        expert_units: int = 16,
        tower_units: int = 8,
        **settings: object,
    ) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ConfigError(f"num_features must be a positive integer, got {num_features!r}.")
        params = {
            "n_experts": n_experts,
            "expert_hidden": settings.pop("expert_hidden", [expert_units]),
            "tower_hidden": settings.pop("tower_hidden", [tower_units]),
        }
        super().__init__(num_features, params, settings)


class CTCVRNet(_CompatModel):
    """ESMM (Ma et al., "Entire Space Multi-Task Model", SIGIR 2018): CTR and CVR towers,
    pCTCVR = pCTR x pCVR, trained on every impression.

    ``train`` takes two labels in funnel order: the click and the conversion over impressions
    (1 = clicked and converted). Keyword arguments go to :class:`mtlkit.MultiTaskEstimator`.
    As in the original project, labels that are not a funnel (e.g. Titanic's Survived and
    Pclass) train with a warning rather than an error (``funnel_check="warn"``).
    """

    model_name = "esmm"

    def __init__(self, num_features: int | None = None, **settings: object) -> None:
        settings.setdefault("funnel_check", "warn")
        super().__init__(num_features, {}, settings)

    def _check(self, data: pd.DataFrame, labels: list[str]) -> None:
        if len(labels) != 2:
            raise ConfigError(
                f"CTCVRNet trains two labels in funnel order (click, conversion); got {labels}."
            )
        super()._check(data, labels)
