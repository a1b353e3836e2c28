"""``mtlkit export``: a saved model as one file for serving without mtlkit."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mtlkit.cli.options import command

DOC = """Export a model saved by 'mtlkit train' for serving (ONNX or TorchScript).

Write the model as one file that takes the encoded inputs (x_cat: int64 category ids,
x_num: float32 standardized numbers; any batch size) and returns per task the scores of
'mtlkit predict' (probabilities, class probabilities or values, and the conditional
probabilities of funnel models). The file's outputs are checked against PyTorch's. The
preprocessor's JSON and a README of the input contract (columns, order, encoding) are
written next to it. ONNX needs: pip install "mtlkit[export]".
"""


EXAMPLE = "example: mtlkit export my-model --format onnx --out serving/model.onnx"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "export", run, DOC, epilog=EXAMPLE, listing=_formats)
    p.add_argument("model_dir", type=Path, help="a folder written by 'mtlkit train'")
    p.add_argument("--format", default="onnx", help="the file format (default onnx; see below)")
    p.add_argument(
        "--out",
        type=Path,
        help="the file to write (default: MODEL_DIR/export/model.onnx, or .pt for torchscript)",
    )


def _formats() -> str:
    from mtlkit.export import FORMATS  # here: loads PyTorch

    return "formats:\n" + "\n".join(f"  {n}: {d}" for n, d in FORMATS.available().items())


def run(args: argparse.Namespace) -> int:
    from mtlkit.export import export_model  # here: loads PyTorch

    start = time.perf_counter()
    done = export_model(args.model_dir, args.format, args.out)
    seconds = time.perf_counter() - start
    print(
        f"exported {args.model_dir} as {args.format} in {seconds:.1f} s: {done.model} "
        f"(outputs {', '.join(done.output_names)}; largest difference from PyTorch on "
        f"random rows {done.max_difference:.1e})"
    )
    print(f"input contract: {done.readme}; preprocessor: {done.preprocessor}")
    return 0
