"""Model folders: written atomically, verified when read.

:func:`write_model_folder` writes every file into a staging folder and moves them into place
only once all are written (:func:`mtlkit.files.staged_files`), so a failed save (a full
disk) leaves the model saved there before intact. ``estimator.json`` records the
size and SHA-256 of every other file; :func:`read_meta` checks them and :func:`load_weights`
checks that the weights are finite and fit the model, each problem told in one line
(missing, truncated, changed after saving, incompatible).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from mtlkit import files
from mtlkit.errors import ModelFileError, WriteError
from mtlkit.files import MODEL_META, atomic_write_json, check_output_folder, staged_files
from mtlkit.models.base import MTLModel

META = MODEL_META
#: The fitted post-hoc calibration (mtlkit.training.calibration), when there is one.
CALIBRATION = "calibration.json"
FORMAT = "mtlkit-model/2"


def write_model_folder(folder: str | Path, write: Callable[[Path], None], meta: dict) -> Path:
    """Call ``write(staging)`` to write the model's files into a staging folder, add
    ``estimator.json`` (``meta`` plus the size and checksum of every file), then move them
    into ``folder``, ``estimator.json`` last (other files of ``folder`` are kept)."""
    folder = check_output_folder(folder, "model folder", model=True)
    existed = (folder / META).is_file()
    try:
        with staged_files(folder, last=(META,)) as staging:
            write(staging)
            listed = {p.name: _fingerprint(p.read_bytes()) for p in sorted(staging.iterdir())}
            atomic_write_json(staging / META, {**meta, "format": FORMAT, "files": listed})
    except OSError as err:
        kept = "the model saved there before is unchanged" if existed else "nothing was saved"
        raise WriteError(
            f"cannot save the model in {str(folder)!r}: {err.strerror or err}; {kept}."
        ) from err
    return folder


def read_meta(folder: str | Path) -> dict:
    """``estimator.json`` of ``folder``, after checking every file it lists (present, of the
    recorded size and checksum); folders saved before checksums were recorded are read as
    they are."""
    folder = Path(folder)
    path = folder / META
    if not path.is_file():
        raise ModelFileError(
            f"{folder} holds no saved mtlkit model ({META} is missing); pass the folder given "
            "to MultiTaskEstimator.save() or 'mtlkit train --out'."
        )
    meta = read_json(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("params"), dict):
        raise ModelFileError(f"{path} is not an mtlkit model's {META} (no 'params' mapping).")
    for name, expected in (meta.get("files") or {}).items():
        _verify(folder / name, expected)
    return meta


def read_json(path: Path) -> object:
    """A JSON file of a model folder, or one :class:`ModelFileError` line saying why not."""
    return files.read_json(path, ModelFileError, "save the model again")


def load_weights(path: Path, model: MTLModel) -> None:
    """Load ``model.pt`` into ``model``: readable, finite, and of the model's shapes (weights
    of an earlier mtlkit first brought to today's layout, :meth:`MTLModel.upgrade_state_dict`)."""
    try:
        state = torch.load(io.BytesIO(path.read_bytes()), weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise ModelFileError(f"{path} (the weights) is missing; save the model again.") from None
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise ModelFileError(
            f"{path} is not a readable PyTorch weights file ({_first_line(err)}); it is "
            "truncated or corrupted: save the model again."
        ) from None
    if not isinstance(state, dict):
        raise ModelFileError(f"{path} holds no weights (a {type(state).__name__}, not a dict).")
    state = model.upgrade_state_dict(state)
    _check_fits(path, state, model.state_dict())
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(
                f"{path} holds non-finite weights (NaN or infinite) in {name!r}; the model "
                "cannot predict: retrain it (a lower lr or grad_clip helps)."
            )
    model.load_state_dict(state)


def _check_fits(path: Path, state: dict, expected: dict) -> None:
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        names = f"lacks {missing[:3]}" if missing else f"has unknown {extra[:3]}"
        raise ModelFileError(
            f"{path} does not fit {META}: it {names} (from another model); save the model again."
        )
    for name, tensor in expected.items():
        got = state[name]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = list(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ModelFileError(
                f"{path} does not fit {META}: {name!r} is {shape} in the file, "
                f"{list(tensor.shape)} in the model (incompatible shapes); save the model again."
            )


def _fingerprint(data: bytes) -> dict:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _verify(path: Path, expected: dict) -> None:
    if not path.is_file():
        raise ModelFileError(f"{path} is missing from the model folder; save the model again.")
    data = path.read_bytes()
    size = expected.get("bytes")
    if len(data) < size:
        raise ModelFileError(
            f"{path} is truncated ({len(data)} of {size} bytes); save the model again."
        )
    if _fingerprint(data) != expected:
        raise ModelFileError(
            f"{path} was changed after the model was saved (its size or SHA-256 checksum "
            "differs from the one in estimator.json): corrupted or edited. Save the model again."
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:120]


def plain_json(value: Any) -> Any:
    """A setting as JSON for ``estimator.json`` (tuples become lists)."""
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain_json(v) for k, v in value.items()}
    return value
