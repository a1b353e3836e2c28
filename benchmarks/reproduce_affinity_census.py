"""Census-Income (KDD): TAG task affinity and groups for six binary targets (issue #22).

Run:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reproduce_affinity_census.py \\
        [--data ../shared/data/census-income.test.gz] [--seeds 0 1 2] [--epochs 3] \\
        [--out runs/reproductions/census_affinity]

Loads ``census-income`` with ``group=3`` (income, marital, education, sex, citizenship,
hispanic; no target's source column, nor a column that restates it, is a feature), measures the affinity with
:func:`~mtlkit.affinity.measure_affinity` (shared_bottom, the given epochs, the number of
groups chosen from the affinity), writes ``affinity.json``, ``affinity.png`` and
``affinity.html`` to ``--out``, copies the figure to ``docs/figures/census_affinity.png``
and prints the matrix (row task onto column task) and the groups as Markdown.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from mtlkit.affinity import measure_affinity
from mtlkit.datasets.census import load_census
from mtlkit.reporting.affinity import write_affinity_report

ROOT = Path(__file__).resolve().parents[1]


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/census-income.test.gz"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "runs/reproductions/census_affinity")
    args = parser.parse_args()
    table = load_census(args.data, group=3)
    result = measure_affinity(table, seeds=args.seeds, epochs=args.epochs, progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result.save(args.out)
    write_affinity_report(result, args.out)
    shutil.copyfile(args.out / "affinity.png", ROOT / "docs/figures/census_affinity.png")
    tasks = result.tasks
    print("| onto -> | " + " | ".join(tasks) + " |")
    print("| --- " * (len(tasks) + 1) + "|")
    for i, task in enumerate(tasks):
        cells = []
        for j in range(len(tasks)):
            mean, low, high = (
                m[i, j] for m in (result.matrix, result.matrix_low, result.matrix_high)
            )
            shown = f"{mean:.3f}" if np.isnan(low) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"
            cells.append(f"*{shown}*" if i == j else shown)
        print(f"| {task} | " + " | ".join(cells) + " |")
    print("groups:", " | ".join(", ".join(g) for g in result.groups))
    print("best score per number of groups:", {k: round(v, 4) for k, v in result.scores.items()})
    print("fit time per seed (s):", [round(t, 1) for t in result.fit_time_s])


if __name__ == "__main__":
    run()
