"""``mtlkit train``: fit one model on your files and save it; ``mtlkit predict`` scores new files."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from mtlkit.cli.options import add_quiet, add_settings, command, given_settings, plugin_listing
from mtlkit.data.read_options import FEATURE_READ_PARAMS, READ_PARAMS
from mtlkit.errors import ConfigError, DataWarning
from mtlkit.experiments.choices import parse_choice, parse_strategy
from mtlkit.experiments.config import GRID_PARAMS, check_fractions
from mtlkit.experiments.tuning_plan import read_best
from mtlkit.tracking import TRACK
from mtlkit.training.settings import DEFAULT_MODEL, DEFAULT_STRATEGY, TrainConfig

#: The data settings ``mtlkit train`` (and ``predict``: streaming) share with ``mtlkit compare``.
SPLIT_PARAMS = tuple(p for p in GRID_PARAMS if p.name in ("split_seed", "fractions", "stream"))
STREAM = tuple(p for p in SPLIT_PARAMS if p.name == "stream")
TRAIN_FLAGS = tuple(p for p in TrainConfig.params() if p.name != "progress")
#: The file in ``--out`` where training saves its state after every epoch until it converges.
STATE_FILE = "training_state.pt"

TRAIN_DOC = """Fit one model on your files and save it (with its preprocessor).

Fit one model on CSV/Parquet files (rows stacked, a missing label masked), split
them into train/validation/test (--fractions, --split-seed), early-stop on the
validation part, print the test metrics and save the model folder that
'mtlkit predict' uses. --params FILE takes the model, strategy and training
settings that 'mtlkit tune' saved (training flags given here override them).
"""
TRAIN_EXAMPLE = (
    "example: mtlkit train data/ --labels income marital --model mmoe:n_experts=4 "
    "--strategy uncertainty --out my-model"
)
PREDICT_DOC = """Score new files with a model saved by 'mtlkit train'.

Score the rows of new files (label columns not needed) with a saved model and write
one CSV row per input row: the source file, then per task the predicted probability
(binary), one probability per class (multiclass) or the value; funnel models (esmm, aitm)
add their conditional probabilities, e.g. ESMM's pCVR as conversion_given_click.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "train", run_train, TRAIN_DOC, listing=plugin_listing, epilog=TRAIN_EXAMPLE)
    p.add_argument("data", nargs="+", help="data files, folders or globs")
    p.add_argument("--labels", nargs="+", required=True, help="the label columns (one task each)")
    p.add_argument(
        "--model",
        help="a model name, optionally with settings, e.g. mmoe:n_experts=4 (default mmoe; "
        "see 'mtlkit models -v')",
    )
    p.add_argument(
        "--strategy",
        help="a training strategy, optionally with settings, e.g. alternating:order="
        "proportional (default joint; see 'mtlkit strategies -v')",
    )
    p.add_argument(
        "--params",
        type=Path,
        metavar="FILE",
        help="the settings 'mtlkit tune' saved (best.json): model, strategy and training settings",
    )
    p.add_argument("--out", type=Path, required=True, help="the folder to save the model in")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train data-parallel in N processes on this machine (torch.distributed: Gloo on "
        "CPUs, NCCL with a GPU each); the same as 'torchrun --nproc-per-node N -m mtlkit "
        "train ...' (default 1)",
    )
    add_settings(p.add_argument_group("reading the files"), READ_PARAMS, defaults=True)
    add_settings(p.add_argument_group("split"), SPLIT_PARAMS, defaults=True)
    add_settings(p.add_argument_group("training settings"), TRAIN_FLAGS, defaults=False)
    add_settings(p, [TRACK], defaults=True)
    add_quiet(p)

    q = command(
        sub,
        "predict",
        run_predict,
        PREDICT_DOC,
        epilog="example: mtlkit predict my-model new_rows.csv --out predictions.csv",
    )
    q.add_argument("model_dir", type=Path, help="a folder written by 'mtlkit train'")
    q.add_argument("data", nargs="+", help="data files, folders or globs to score")
    q.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    add_settings(q, STREAM, defaults=True)
    reading = q.add_argument_group("reading the files (default: the model's own settings)")
    add_settings(reading, FEATURE_READ_PARAMS, defaults=False)


def streaming(args: argparse.Namespace) -> bool:
    """Whether to stream ``args.data`` (``--stream``, else Parquet data above the size)."""
    from mtlkit.data.streaming_table import STREAM_ABOVE, streams_by_default

    if args.stream is not None:
        return args.stream
    if streams_by_default(args.data):
        print(
            f"streaming the data (Parquet over {STREAM_ABOVE / 2**30:.0f} GiB; --no-stream "
            "loads it whole)",
            flush=True,
        )
        return True
    return False


def run_train(args: argparse.Namespace) -> int:
    from mtlkit.training import distributed  # here: loads PyTorch

    if args.nproc < 1:
        raise ConfigError(f"--nproc must be a positive integer, got {args.nproc}.")
    if args.nproc > 1 and not distributed.launched():
        _prepare(args, main=True)  # settings, --out and the tracker checked once, before the ranks
        distributed.launch(args.nproc, args.argv)  # each rank runs this command again
        return 0
    with distributed.process_group():
        return _train(args, distributed.is_main())


def _prepare(args: argparse.Namespace, main: bool) -> tuple:
    """The estimator and the tracker (rank 0's alone: one tracked run, one experiment
    created), every setting, ``--out`` and the tracking target checked before any data is
    read; the launcher of ``--nproc`` runs it before it starts the ranks."""
    from mtlkit.files import check_output_folder
    from mtlkit.tracking import make_tracker
    from mtlkit.training.build import build_estimator

    model, model_params, strategy, strategy_params, saved = _choices(args)
    settings = {**saved, **given_settings(args, TRAIN_FLAGS)}
    settings |= {p.name: getattr(args, p.name) for p in READ_PARAMS}
    est = build_estimator(
        model,
        strategy,
        model_params=model_params,
        strategy_params=strategy_params,
        progress=not args.quiet,
        **settings,
    )
    est.check_params()  # every setting checked before the data is read
    check_output_folder(args.out, "--out", model=True)
    tracker = make_tracker(args.track) if main else None  # the store answers, before training
    return model, strategy, est, tracker


def _train(args: argparse.Namespace, main: bool) -> int:
    """Train (as one rank of several, when launched so); only rank 0 (``main``) evaluates on
    the test split, writes the model folder, tracks the run and prints."""
    import pandas as pd

    from mtlkit.data import protocol
    from mtlkit.data.loading import load_tables
    from mtlkit.data.splits import check_splits
    from mtlkit.data.streaming_table import stream_tables
    from mtlkit.evaluation.metrics import undefined_metrics
    from mtlkit.evaluation.run_record import json_safe
    from mtlkit.files import atomic_write_json
    from mtlkit.tracking.fit import log_fit
    from mtlkit.training.state import load_torch

    model, strategy, est, tracker = _prepare(args, main)
    split = {p.name: p.validate(getattr(args, p.name)) for p in SPLIT_PARAMS}
    check_fractions(split["fractions"])
    options = {p.name: getattr(est, p.name) for p in READ_PARAMS}
    read = stream_tables if streaming(args) else load_tables
    table = read(args.data, labels=args.labels, **options)
    train, val, test = protocol.split(table, split["fractions"], seed=split["split_seed"])
    check_splits(train, val, test)  # in memory and streamed alike
    state_path = args.out / STATE_FILE
    state = None
    if state_path.is_file():
        state = load_torch(state_path)
        if main:
            print(
                f"continuing the training saved in {state_path} after epoch "
                f"{len(state['history']['epochs'])} (delete it to start over)",
                flush=True,
            )
    est.fit(train, validation=val, state=state, state_path=state_path)
    if not main:
        return 0
    metrics = est.evaluate(test)
    undefined = undefined_metrics(metrics, "the test split")
    if undefined:
        warnings.warn(f"{undefined}; they are null in test_metrics.json.", DataWarning, 1)
    est.save(args.out)
    atomic_write_json(args.out / "test_metrics.json", json_safe(metrics))
    if est.history_.converged:
        state_path.unlink(missing_ok=True)  # kept otherwise: a larger --epochs continues it
    history = est.history_
    done = (
        "converged (early stopping ended it)"
        if history.converged
        else "NOT converged: the validation metric was still improving at the epoch cap; "
        "train again with a larger --epochs"
    )
    print(
        f"trained {model} + {strategy} in {est.fit_time_:.1f} s: "
        f"{len(history.epochs)} epochs of batch {history.batch_size}, best epoch "
        f"{history.best_epoch}, {done}"
    )
    print(pd.DataFrame(metrics).T.round(4).to_string())
    print(f"model saved to {args.out} (test metrics in test_metrics.json)")
    if tracker is not None:
        run_id = log_fit(tracker, est, args.out.name, {"test": metrics}, args.out)
        print(f"tracked: {tracker.describe(run_id)}")
    return 0


def _choices(args: argparse.Namespace) -> tuple[str, dict, str, dict, dict]:
    """Model, its settings, strategy, its settings and training settings: from --params
    (the file of 'mtlkit tune') or from --model and --strategy."""
    if args.params is None:
        model, model_params = parse_choice(args.model or DEFAULT_MODEL, "model", "mmoe:n_experts=4")
        return model, model_params, *parse_strategy(args.strategy or DEFAULT_STRATEGY), {}
    if args.model or args.strategy:
        raise ConfigError(
            "--params gives the model and strategy; leave out --model and --strategy (or "
            f"edit {args.params})."
        )
    saved = read_best(args.params)
    train = {k: v for k, v in saved["train_params"].items() if k in {p.name for p in TRAIN_FLAGS}}
    return saved["model"], saved["model_params"], saved["strategy"], saved["strategy_params"], train


def run_predict(args: argparse.Namespace) -> int:
    from mtlkit.data.streaming_data import StreamingData
    from mtlkit.data.streaming_table import stream_features
    from mtlkit.files import atomic_writer, check_output_file
    from mtlkit.training.estimator import MultiTaskEstimator  # here: loads PyTorch

    check_output_file(args.out, "--out", (".csv",))
    est = MultiTaskEstimator.load(args.model_dir)
    est.set_params(**given_settings(args, FEATURE_READ_PARAMS))
    ignore = est.schema_.task_names
    if streaming(args):  # one record batch at a time, written as it is scored
        data = StreamingData(
            stream_features(args.data, ignore=ignore), est.preprocessor_, require_labels=False
        )
        parts = ((path, chunk) for path, chunk in data.chunks())
    else:
        table = est.read_features(args.data)  # with the kinds the model was fitted with
        parts = [(table.source, est.preprocessor_.transform(table, require_labels=False))]
    rows = 0
    with atomic_writer(args.out, "w") as out:
        for source, chunk in parts:
            frame = _scores_frame(est, source, est.trainer_.predict_scores(chunk, conditional=True))
            frame.to_csv(out, index=False, header=rows == 0)
            rows += len(frame)
    print(f"{rows:,} rows scored for {est.schema_.task_names}; written to {args.out}")
    return 0


def _scores_frame(est, source, scores: dict):  # noqa: ANN001, ANN202
    """One CSV row per scored row: its source file, then the scores of every task."""
    import pandas as pd

    columns: dict = {"source": source}
    for spec in est.schema_.tasks:
        values = scores.pop(spec.name)
        if spec.kind == "multiclass":
            for k, cls in enumerate(spec.classes or range(spec.n_classes)):
                columns[f"{spec.name}_p_{cls}"] = values[:, k]
        else:
            columns[spec.name] = values
    columns.update(scores)  # conditional funnel probabilities, e.g. ESMM's pCVR
    return pd.DataFrame(columns)
