"""Compare models x strategies x seeds against single-task; write a report.

Train every model x strategy x seed on the same train/validation/test splits,
plus the single-task baseline, then write tidy results, a summary with 95%
confidence intervals and paired tests against single-task (p-values corrected
for the grid's many comparisons: --correction holm by default), plots and a
self-contained report.html. Every run records whether it converged (early
stopping ended it) or hit the epoch cap while still improving; no winner is
named from runs that did not converge. Rerun the same command (same --out) to
resume an interrupted grid: finished runs are kept and skipped; 'mtlkit compare
--resume RUN_DIR --epochs N' with a larger N continues the runs that did not
converge from where they stopped. Every setting can also be given in a --config
file (the same names, with _ for -).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from mtlkit.cli.options import (
    add_data,
    add_quiet,
    add_settings,
    command,
    given_settings,
    plugin_listing,
)
from mtlkit.errors import ConfigError, install_extra
from mtlkit.experiments.backends import BACKENDS, DEFAULT_BACKEND, Backend
from mtlkit.experiments.cells import (
    COMMAND_FILE,
    CONFIG_FILE,
    RESULTS_TABLE,
    SUMMARY_TABLE,
    read_config,
)
from mtlkit.experiments.config import GRID_PARAMS, TRAIN_PARAMS, CompareConfig
from mtlkit.experiments.config_files import load_config_file, read_yaml
from mtlkit.experiments.tuning_plan import TuneConfig, from_flags, keep_given, tune_flags
from mtlkit.files import atomic_write_text, check_output_folder, new_run_dir
from mtlkit.tracking import TRACK

TUNE_FLAGS = tune_flags("tune", tuned_by_default=False)
BACKEND_NAMES = tuple(BACKENDS.names())


EXAMPLES = (
    "examples:\n"
    "  mtlkit compare synthetic --correlations 0.9 0.5 "
    "--models shared_bottom mmoe --seeds 0 1 2 --epochs 10 --out runs/synth\n"
    "  mtlkit compare data/ --labels income marital --models mmoe --jobs 2\n"
    "  mtlkit compare data/ --labels income marital --models shared_bottom "
    "--label-fractions income=1.0,0.1,0.02\n"
    "  mtlkit compare --resume runs/synth --epochs 200   # finish unconverged runs\n"
    "  mtlkit compare --config grid.yaml --out runs/census\n"
    "  mtlkit compare census-income --dataset-option group=3 --models shared_bottom "
    "--task-groups auto\n"
    "A model may carry hyperparameters: mmoe:n_experts=4:expert_hidden=[32] (see\n"
    "'mtlkit models -v'); a strategy its settings: alternating:order=proportional\n"
    "(see 'mtlkit strategies -v')."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "compare", run, __doc__, listing=plugin_listing, epilog=EXAMPLES)
    add_data(p, "*")
    p.add_argument("--config", type=Path, help="a YAML or TOML file with the grid's settings")
    p.add_argument("--models", nargs="+", help="models to compare (see 'mtlkit models')")
    grid = p.add_argument_group("grid settings")
    add_settings(grid, GRID_PARAMS, defaults=False)
    training = p.add_argument_group("training settings (every run)")
    add_settings(training, TRAIN_PARAMS, defaults=False)
    add_label_fractions(p)
    tuning = p.add_argument_group(
        "tuning: the same Optuna budget for every model x strategy, on the validation split "
        "(config key 'tune': {trials: N, seed: S, pruning: true, keep: [...]})"
    )
    add_settings(tuning, TUNE_FLAGS, defaults=False)
    p.add_argument(
        "--dataset-path",
        type=Path,
        help="built-in data sets only: a local copy of the data (see 'mtlkit datasets')",
    )
    p.add_argument(
        "--dataset-option",
        action="append",
        metavar="KEY=VALUE",
        help="a built-in data set's loader option, e.g. group=2, or synthetic's noise=0.5 "
        "(repeatable)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        type=Path,
        help="the run folder (created, or resumed if it holds this grid); default: a new "
        "time-stamped folder under runs/",
    )
    where.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="finish the grid saved in RUN_DIR"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at once: in parallel processes, or Ray tasks with --backend ray (default 1)",
    )
    p.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default=DEFAULT_BACKEND,
        help="where the runs (and tuning studies) train: this machine, or a Ray cluster, each a Ray "
        f"task asking for one CPU (and one GPU with --device cuda); needs {install_extra('ray')} "
        f"(default {DEFAULT_BACKEND})",
    )
    p.add_argument(
        "--ray-address",
        metavar="auto|HOST:PORT",
        help="--backend ray: the cluster to join ('auto': the one running here); default: a "
        "local Ray started for this grid",
    )
    add_settings(p, [TRACK], defaults=True)
    add_quiet(p)


def add_label_fractions(parser: argparse.ArgumentParser) -> None:
    """The ``--label-fractions TASK=F,F,...`` flag (the ``label_fractions`` setting)."""
    parser.add_argument(
        "--label-fractions",
        metavar="TASK=F,F,...",
        help=next(q.help for q in GRID_PARAMS if q.name == "label_fractions"),
    )


def resolve_config(args: argparse.Namespace) -> CompareConfig:
    """The grid's configuration: --resume's saved one, or --config's file, overridden by the
    settings given on the command line."""
    values: dict = {}
    where = "the command line"
    if args.resume is not None:
        values, where = read_config(args.resume), str(args.resume / CONFIG_FILE)
    elif args.config is not None:
        values, where = load_config_file(args.config), str(args.config)
    values.update(given_settings(args, (*GRID_PARAMS, *TRAIN_PARAMS)))
    tune = from_flags(given_settings(args, TUNE_FLAGS), "tune")
    if tune:
        values["tune"] = given_tune(values.get("tune"), tune, where)
    if values.get("tune") is not None and args.resume is None:
        values["tune"] = keep_given(values["tune"], list(values), where)
    if args.models:
        values["models"] = args.models
    if args.data:
        values["data"] = [str(Path(d).resolve()) if Path(d).exists() else d for d in args.data]
    options = dict(values.get("dataset_options") or {})
    for item in args.dataset_option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--dataset-option takes KEY=VALUE, got {item!r}.")
        options[key] = read_yaml(value, f"--dataset-option {key}")
    if args.dataset_path is not None:
        options["path"] = str(args.dataset_path.resolve())
    if options:
        values["dataset_options"] = options
    if args.label_fractions is not None:
        values["label_fractions"] = args.label_fractions
    return CompareConfig.from_mapping(values, where)


def given_tune(saved: object, flags: dict, where: str) -> dict:
    """The ``tune`` settings of the config (file) with the command line's over them; a
    ``--tune-*`` setting without a budget is refused."""
    base = TuneConfig.from_value(saved, where)
    if base is None and "trials" not in flags:
        raise ConfigError("give the tuning budget (--tune N) to use --tune-* settings.")
    return {**(base.to_dict() if base else {}), **flags}


def run(args: argparse.Namespace) -> int:
    from mtlkit.experiments.backends import make_backend

    backend = make_backend(
        args.backend, args.jobs, args.ray_address
    )  # before any data is read or folder made
    config = resolve_config(args)
    run_dir = args.resume or args.out
    execute(
        config,
        run_dir,
        progress=not args.quiet,
        argv=args.argv,
        track=args.track,
        backend=backend,
    )
    return 0


def execute(
    config: CompareConfig,
    run_dir: Path | None,
    *,
    jobs: int = 1,
    progress: bool = True,
    argv: list[str] | None = None,
    prefix: str = "compare",
    track: str | None = None,
    backend: str | Backend = DEFAULT_BACKEND,
    ray_address: str | None = None,
) -> Path:
    """Run (or resume) the grid of ``config`` (validated) in ``run_dir`` (default: a new folder
    under runs/), build its report and print the summary; returns the run folder. ``track``
    ("mlflow", "tensorboard") logs the grid as a parent run with one child run per cell;
    ``backend`` (a name of :data:`~mtlkit.experiments.backends.BACKENDS`, or one made by
    :func:`~mtlkit.experiments.backends.make_backend`) runs the cells: ``"local"`` in
    ``jobs`` processes, ``"ray"`` as Ray tasks (on the cluster at ``ray_address``)."""
    from mtlkit.experiments.backends import make_backend
    from mtlkit.experiments.grid import (  # loads PyTorch
        check_data,
        load_grid_data,
        measure_task_groups,
        prepare_run_dir,
        run_grid,
    )
    from mtlkit.experiments.grid_tracking import track_grid
    from mtlkit.experiments.stats import correction_note
    from mtlkit.reporting.affinity import write_affinity_report
    from mtlkit.reporting.report import build_report, table_groups
    from mtlkit.tracking import make_tracker

    if isinstance(backend, str):
        backend = make_backend(backend, jobs, ray_address)
    check_output_folder(run_dir or Path("runs"), "run folder")
    tracker = make_tracker(track)  # an unknown tracker or a missing extra: before any folder
    data = load_grid_data(config)  # the data is read once, here
    check_data(config, data)
    run_dir = run_dir or new_run_dir(Path("runs"), prefix)
    run_dir.mkdir(parents=True, exist_ok=True)

    def announce(todo: int, done: int, continued: int) -> None:
        skipped = f", {done} already finished (skipped)" if done else ""
        if continued:
            skipped += (
                f", {continued} not converged: continued from their saved state up to "
                f"{config.train.epochs} epochs"
            )
        print(f"{todo + done} runs in the grid{skipped}; writing to {run_dir}", flush=True)

    record_command(run_dir, argv)
    prepare_run_dir(config, run_dir)  # a folder holding another grid is refused before tracking
    affinity = measure_task_groups(config, data, run_dir, progress)  # train split only
    if affinity is not None:
        write_affinity_report(affinity, run_dir)
        groups = " | ".join(" + ".join(g) for g in affinity.groups)
        print(f"Task groups from the affinity on the training split: {groups}", flush=True)
    with track_grid(track, tracker, run_dir, config) as tracked:
        try:
            records = run_grid(
                config,
                run_dir,
                data,
                backend,
                progress=progress,
                on_start=announce,
                tracking=tracked and tracked.cells,
            )
        except KeyboardInterrupt:
            print(
                f"\nInterrupted. Finished runs are saved in {run_dir}; rerun the same command "
                f"(or 'mtlkit compare --resume {run_dir}') to continue."
            )
            raise
        report = build_report(run_dir, config=config, records=records)
        if tracked:
            tracked.log_report(run_dir)
    print(f"\nTest {config.metric}, mean over seeds (n.s.: not significantly different).")
    print(correction_note(report.summary))
    for title, table in table_groups(report.summary, config.scarce_task):
        print(f"\n{title}")
        print(table[_SHOWN].to_string(index=False))
    print()
    for sentence in report.sentences:
        print(f"- {sentence}")
    tables = [run_dir / f"{stem}.csv" for stem in (RESULTS_TABLE, SUMMARY_TABLE)]
    print(f"\nTables: {tables[0]}, {tables[1]}")
    print(f"Report: {report.html}")
    if tracked:
        print(f"Tracked: {tracked.describe()}")
    return run_dir


def record_command(run_dir: Path, argv: list[str] | None) -> None:
    """Add the command line to the run folder's command file (once), for the report's
    "Reproduce" section: the command that started the grid, then any that continued it."""
    if argv is None:
        return
    path = run_dir / COMMAND_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    command_line = shlex.join(["mtlkit", *argv])
    if command_line not in lines:
        atomic_write_text(path, "\n".join([*lines, command_line]) + "\n")


_SHOWN = [
    "rank",
    "model",
    "strategy",
    "converged",
    "mean ± std",
    "gain vs single-task [95% CI]",
    "adjusted p",
    "vs single-task",
]
