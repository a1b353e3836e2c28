"""``mtlkit affinity``: which tasks belong together (TAG's inter-task affinity and groups)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtlkit.affinity.defaults import DEFAULT_EPOCHS, DEFAULT_PROBES
from mtlkit.cli.options import add_quiet, add_settings, command, given_settings, plugin_listing
from mtlkit.data.read_options import READ_PARAMS
from mtlkit.errors import ConfigError
from mtlkit.training.settings import TrainConfig

#: The training settings the short joint training takes (the rest are fixed by the method).
AFFINITY_TRAIN_FLAGS = tuple(
    p for p in TrainConfig.params() if p.name in ("batch_size", "lr", "weight_decay", "device")
)

DOC = """Measure which tasks help each other, and group them.

Train one shared model on all the labels jointly for a short fixed budget (--epochs
over every row, no early stopping), once per seed, and measure between every ordered
pair of tasks the inter-task affinity of TAG (Fifty et al., "Efficiently Identifying
Task Groupings for Multi-Task Learning", NeurIPS 2021): on a few evenly spaced steps
of each epoch, the shared parameters take one step along task i's gradient alone and
the relative decrease of task j's loss on the same batch is recorded (per unit
learning rate; positive: i's training helps j). The cosine of the task gradients
on the shared parameters is recorded beside it. The tasks are then partitioned
into --n-groups groups, each task in exactly one group, maximising the sum over tasks
of the mean affinity onto each task from its group-mates (exact search up to 10
tasks, agglomerative merging and local moves beyond). Without --n-groups, the fewest
groups whose best score falls short of the highest by no more than the noise (a
one-sided t-test at 5% over the probed steps) are kept. Details: docs/affinity.md.

Writes DIR/affinity.json (tasks, matrix, cosine, groups, seeds, intervals),
DIR/affinity.png and DIR/affinity.html (heatmaps ordered by group).
"""
EXAMPLE = (
    "example: mtlkit affinity data/ --labels income marital education sex "
    "--seeds 0 1 2 --out affinity-census"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "affinity", run_affinity, DOC, listing=plugin_listing, epilog=EXAMPLE)
    p.add_argument("data", nargs="+", help="data files, folders or globs")
    p.add_argument(
        "--labels", nargs="+", required=True, help="the label columns (one task each, >= 2)"
    )
    p.add_argument(
        "--n-groups",
        type=int,
        metavar="K",
        help="partition the tasks into exactly K groups (default: the fewest groups whose "
        "best score is not significantly below the highest)",
    )
    p.add_argument(
        "--seeds",
        "--seed",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        metavar="S",
        help="one training run per seed; the matrix is their mean, with a 95%% t-interval "
        "per pair (default: 0 1 2)",
    )
    p.add_argument(
        "--model",
        default="shared_bottom",
        help="the shared model, optionally with settings, e.g. mmoe:n_experts=4 (default "
        "shared_bottom, the hard sharing TAG uses; see 'mtlkit models -v')",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"epochs of joint training per seed, on every row (default: {DEFAULT_EPOCHS})",
    )
    p.add_argument(
        "--probes-per-epoch",
        type=int,
        default=DEFAULT_PROBES,
        help="evenly spaced training steps per epoch on which the affinity is measured "
        f"(default: {DEFAULT_PROBES})",
    )
    p.add_argument("--out", type=Path, required=True, help="the folder to write the results in")
    add_settings(p.add_argument_group("reading the files"), READ_PARAMS, defaults=True)
    add_settings(p.add_argument_group("training settings"), AFFINITY_TRAIN_FLAGS, defaults=False)
    add_quiet(p)


def run_affinity(args: argparse.Namespace) -> int:
    from mtlkit.affinity import measure_affinity  # here: loads PyTorch
    from mtlkit.data.loading import load_tables
    from mtlkit.experiments.choices import parse_choice
    from mtlkit.files import check_output_folder
    from mtlkit.models import check_hyperparameters
    from mtlkit.reporting.affinity import write_affinity_report

    if len(args.labels) < 2:
        raise ConfigError(
            f"affinity is measured between tasks: give at least two --labels, got {args.labels}."
        )
    if args.n_groups is not None and not 1 <= args.n_groups <= len(args.labels):
        raise ConfigError(
            f"--n-groups must lie between 1 and the number of labels ({len(args.labels)}), "
            f"got {args.n_groups}."
        )
    if args.epochs < 1 or args.probes_per_epoch < 1:
        raise ConfigError("--epochs and --probes-per-epoch must be at least 1.")
    model, model_params = parse_choice(args.model, "model", "mmoe:n_experts=4")
    check_hyperparameters(model, model_params)
    settings = given_settings(args, AFFINITY_TRAIN_FLAGS)
    TrainConfig(**settings)  # every training setting checked before the data is read
    check_output_folder(args.out, "--out")
    options = {p.name: getattr(args, p.name) for p in READ_PARAMS}
    table = load_tables(args.data, labels=args.labels, **options)
    result = measure_affinity(
        table,
        n_groups=args.n_groups,
        seeds=args.seeds,
        model=model,
        model_params=model_params,
        epochs=args.epochs,
        probes_per_epoch=args.probes_per_epoch,
        progress=not args.quiet,
        **settings,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result.save(args.out)
    page = write_affinity_report(result, args.out)
    print(f"groups: {' | '.join(', '.join(g) for g in result.groups)}")
    for k, score in sorted(result.scores.items()):
        print(f"  best score with {k} group(s): {score:.4g}")
    print(f"affinity matrix and groups in {args.out / 'affinity.json'}; heatmap in {page}")
    return 0
