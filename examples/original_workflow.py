"""The original project's three notebook lines, on synthetic data written as two CSV files
with one label each (the partial-label case the original generated).

    python examples/original_workflow.py [--rows 20000] [--epochs 20] [--out original-workflow]

Writes the data files into OUT/data and the four plots (loss, accuracy, ROC, PR) into a
folder of the training's own under OUT/plots. The fuller API is shown in the README ("Using it from Python").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtlkit import make_synthetic, write_partial_label_files
from mtlkit.compat import get_data, mmoe_model

LABELS = ["label0", "label1"]


def main(argv: list[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic rows (20000)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (20)")
    parser.add_argument("--out", type=Path, default=Path("original-workflow"), help="output folder")
    args = parser.parse_args(argv)

    # The original generated data: two files, each carrying one of the two labels.
    frame = make_synthetic(args.rows, n_features=100, correlation=0.9, seed=0)
    write_partial_label_files(frame, args.out / "data", LABELS)

    # The original three steps.
    data = get_data(args.out / "data", labels=LABELS)
    model = mmoe_model(len(data.columns) - len(LABELS))
    result = model.train(
        data,
        LABELS,
        plot_list=["loss", "accuracy", "auc", "pr"],
        epoches=args.epochs,
        verbose=0,
        plot_dir=args.out / "plots",
    )
    for task, metrics in result.test_metrics.items():
        print(f"{task}: test ROC-AUC {metrics['roc_auc']:.4f}, accuracy {metrics['accuracy']:.4f}")
    return result.plots


if __name__ == "__main__":
    main()
