"""Post-hoc calibration of a trained model's probabilities, fitted on the validation split.

Methods (the ``calibration`` setting):

- ``temperature``: one scalar ``T`` per task, fitted by minimising the negative
  log-likelihood of the validation rows (Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017): ``sigmoid(z / T)`` (binary), ``softmax(z / T)`` (multiclass).
- ``platt``: ``sigmoid(a z + b)`` fitted by logistic regression on the logit ``z`` (Platt,
  "Probabilistic Outputs for Support Vector Machines", 1999), with Platt's smoothed targets
  ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` (given to scikit-learn's LogisticRegression
  as two weighted copies of each row); multiclass: one per class (one-vs-rest), the results
  normalised to sum to 1, as scikit-learn's ``CalibratedClassifierCV`` does.
- ``isotonic``: scikit-learn's IsotonicRegression of the label on the probability
  (Zadrozny & Elkan, KDD 2002), predicted by linear interpolation between its thresholds
  (``np.interp``, as IsotonicRegression predicts) and clipped outside them; multiclass:
  one-vs-rest, normalised (uniform where every class maps to 0).

The calibrators read the model's probabilities ``p``; the logit is ``log(p) - log(1 - p)``
(multiclass: ``log p``, equal to the logits up to a constant that softmax ignores), with
``p`` clipped to ``[1e-6, 1 - 1e-6]`` first: a difference from scaling the raw logits only
beyond |logit| 13.8. They compute in float64.

Funnel models (``task_roles``: click -> conversion ...) are calibrated step by step: the
first step on its probability ``p_1``, step ``k`` on its conditional probability
``p_k / p_{k-1}`` (ESMM's pCVR) over the validation rows positive for step ``k - 1``; the
outputs are recomposed as ``p_k = prod_{j <= k} cal_j``. Each factor lies in [0, 1], so the
calibrated pCTCVR never exceeds the calibrated pCTR, and the calibrated conditional
probabilities are returned as ``"<step>_given_<previous step>"``.

The fitted parameters are plain numbers (:meth:`Calibration.to_dict`), saved in the model
folder as ``calibration.json``; :class:`Calibration` is a torch module, so ``predict_proba``
and ``mtlkit export`` apply the same computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from torch import nn

from mtlkit.data.schema import CLASSIFICATION_KINDS, TaskSpec
from mtlkit.errors import DataError, ModelFileError
from mtlkit.training.model_folder import read_json

#: Probabilities are clipped to [EPS, 1 - EPS] before taking logits.
EPS = 1e-6
#: Search range of log T for temperature scaling.
LOG_T_BOUNDS = (-7.0, 7.0)


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(EPS, 1 - EPS)
    return torch.log(p) - torch.log1p(-p)


def _np_logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _normalised(q: torch.Tensor) -> torch.Tensor:
    """One-vs-rest probabilities ``(N, K)`` scaled to sum to 1 (uniform where all are 0)."""
    total = q.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, q / total.clamp_min(1e-300), torch.full_like(q, 1 / q.shape[-1]))


# ---- the calibrators: torch modules built from their fitted parameters ---------------------
class Temperature(nn.Module):
    """``sigmoid(z / T)`` or ``softmax(z / T)``."""

    def __init__(self, params: dict, multiclass: bool) -> None:
        super().__init__()
        self.multiclass = multiclass
        self.register_buffer("t", torch.tensor(float(params["t"]), dtype=torch.float64))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        if self.multiclass:
            return torch.softmax(torch.log(p.clamp_min(EPS)) / self.t, dim=-1)
        return torch.sigmoid(_logit(p) / self.t)


class Platt(nn.Module):
    """``sigmoid(a z + b)``, per class and normalised for multiclass."""

    def __init__(self, params: dict, multiclass: bool) -> None:
        super().__init__()
        self.multiclass = multiclass
        self.register_buffer("a", torch.tensor(params["a"], dtype=torch.float64))
        self.register_buffer("b", torch.tensor(params["b"], dtype=torch.float64))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        q = torch.sigmoid(self.a * _logit(p) + self.b)
        return _normalised(q) if self.multiclass else q


class Interpolation(nn.Module):
    """Piecewise-linear ``np.interp(p, x, y)`` (clipped outside ``[x_0, x_M]``), as a sum of
    clamped segments so that it exports to ONNX without a search."""

    def __init__(self, x: Sequence[float], y: Sequence[float]) -> None:
        super().__init__()
        x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        width = np.diff(x64)
        self.register_buffer("start", torch.tensor(x64[:-1]))
        self.register_buffer("width", torch.tensor(width))
        self.register_buffer("slope", torch.tensor(np.diff(y64) / width))
        self.register_buffer("y0", torch.tensor(y64[0]))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        steps = torch.minimum((p.unsqueeze(-1) - self.start).clamp_min(0.0), self.width)
        return self.y0 + (steps * self.slope).sum(dim=-1)


class Isotonic(nn.Module):
    """Isotonic maps, one per class (normalised) for multiclass."""

    def __init__(self, params: dict, multiclass: bool) -> None:
        super().__init__()
        self.multiclass = multiclass
        self.maps = nn.ModuleList(Interpolation(x, y) for x, y in zip(params["x"], params["y"]))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        if not self.multiclass:
            return self.maps[0](p)
        return _normalised(torch.stack([m(p[..., k]) for k, m in enumerate(self.maps)], dim=-1))


MODULES = {"temperature": Temperature, "platt": Platt, "isotonic": Isotonic}


# ---- fitting (numpy / scikit-learn / scipy) --------------------------------------------------
def _fit_temperature(y: np.ndarray, p: np.ndarray, multiclass: bool) -> dict:
    """The T minimising the mean negative log-likelihood (Guo et al. 2017)."""
    if multiclass:
        z = np.log(np.clip(p, EPS, None))
        rows = np.arange(len(y))

        def nll(log_t: float) -> float:
            s = z / np.exp(log_t)
            s = s - s.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[rows, y]))
    else:
        z = _np_logit(p)

        def nll(log_t: float) -> float:
            s = z / np.exp(log_t)
            return float(np.mean(np.logaddexp(0.0, s) - y * s))

    found = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return {"t": float(np.exp(found.x))}


def _fit_platt_one(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid on the logit, with his smoothed targets (weights of two copies)."""
    z = _np_logit(p)[:, None]
    n_pos = float(y.sum())
    n_neg = len(y) - n_pos
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    fit = LogisticRegression(C=np.inf, max_iter=1000).fit(
        np.concatenate([z, z]),
        np.concatenate([np.ones(len(y)), np.zeros(len(y))]),
        sample_weight=np.concatenate([target, 1 - target]),
    )
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def _fit_platt(y: np.ndarray, p: np.ndarray, multiclass: bool) -> dict:
    if not multiclass:
        a, b = _fit_platt_one(y, p)
        return {"a": a, "b": b}
    pairs = [_fit_platt_one((y == k).astype(np.float64), p[:, k]) for k in range(p.shape[1])]
    return {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]}


def _fit_isotonic_one(y: np.ndarray, p: np.ndarray) -> tuple[list[float], list[float]]:
    fit = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    fit.fit(np.asarray(p, dtype=np.float64), y.astype(np.float64))
    x, v = fit.X_thresholds_, fit.y_thresholds_
    if len(x) == 1:  # one distinct prediction: a constant map
        x, v = np.array([x[0], x[0] + 1.0]), np.array([v[0], v[0]])
    return [float(a) for a in x], [float(b) for b in v]


def _fit_isotonic(y: np.ndarray, p: np.ndarray, multiclass: bool) -> dict:
    columns = range(p.shape[1]) if multiclass else [None]
    maps = [
        _fit_isotonic_one(
            y if k is None else (y == k).astype(np.float64), p if k is None else p[:, k]
        )
        for k in columns
    ]
    return {"x": [x for x, _ in maps], "y": [v for _, v in maps]}


FITS = {"temperature": _fit_temperature, "platt": _fit_platt, "isotonic": _fit_isotonic}


# ---- one model's calibration -----------------------------------------------------------------
class Calibration(nn.Module):
    """The calibrators of a model's classification tasks (or funnel steps), applied to the
    scores ``{task: probabilities}`` of ``predict_proba``; regression tasks pass through."""

    def __init__(self, state: dict, tasks: Sequence[TaskSpec], funnel: bool) -> None:
        super().__init__()
        self.state = state
        self.method = state["method"]
        self.funnel = funnel
        self.names = [t.name for t in tasks]
        kinds = {t.name: t.kind for t in tasks}
        expected = {t.name for t in tasks if t.kind in CLASSIFICATION_KINDS}
        if set(state["tasks"]) != expected:
            raise ValueError(
                f"calibrates {sorted(state['tasks'])}, the tasks are {sorted(expected)}"
            )
        module = MODULES[self.method]
        self.calibrators = nn.ModuleDict(
            {
                name: module(params, kinds[name] == "multiclass")
                for name, params in state["tasks"].items()
            }
        )

    def forward(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Calibrated scores of every task; funnels also give the calibrated conditional
        probabilities ``"<step>_given_<previous step>"``."""
        if not self.funnel:
            return {
                name: self._apply(name, s) if name in self.calibrators else s
                for name, s in scores.items()
            }
        out: dict[str, torch.Tensor] = {}
        joint = None
        for k, name in enumerate(self.names):
            step = funnel_step(scores, self.names, k)
            calibrated = self._apply(name, step)
            joint = calibrated if joint is None else joint * calibrated
            out[name] = joint
            if k:
                out[f"{name}_given_{self.names[k - 1]}"] = calibrated
        return out

    def sensitivity(self, scores: dict[str, torch.Tensor]) -> float:
        """The largest row-wise sum of ``|d calibrated output / d score|`` at ``scores``:
        how much a round-off in the model's scores can grow through the calibration (an
        isotonic map between close thresholds is steep). Used to judge an export's
        agreement with PyTorch."""
        names = list(scores)
        inputs = [scores[n].detach().to(torch.float64) for n in names]

        def row(*values: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(self(dict(zip(names, values))).values())

        jacobians = torch.func.vmap(torch.func.jacrev(row, argnums=tuple(range(len(names)))))(
            *inputs
        )
        n = len(inputs[0])
        largest = 0.0
        for per_output, out in zip(jacobians, row(*(x[0] for x in inputs))):
            width = max(out.numel(), 1)  # a row's output: a scalar or K class probabilities
            summed = sum(jac.abs().reshape(n, width, -1).sum(dim=-1) for jac in per_output)
            largest = max(largest, float(summed.max()))
        return largest

    def _apply(self, name: str, p: torch.Tensor) -> torch.Tensor:
        return self.calibrators[name](p.to(torch.float64)).to(p.dtype)

    def to_dict(self) -> dict:
        """The fitted parameters, as saved in ``calibration.json``."""
        return self.state


def funnel_step(scores: dict, names: Sequence[str], k: int):
    """Step ``k``'s probability: ``p_1``, then ``p_k / p_{k-1}`` clipped to [0, 1]
    (tensors or arrays)."""
    if k == 0:
        return scores[names[0]]
    p, previous = scores[names[k]], scores[names[k - 1]]
    if isinstance(p, torch.Tensor):
        return (p / previous.clamp_min(1e-12)).clamp(0.0, 1.0)
    return np.clip(p / np.maximum(previous, 1e-12), 0.0, 1.0)


def fit_calibration(
    method: str,
    tasks: Sequence[TaskSpec],
    funnel: bool,
    y: np.ndarray,
    mask: np.ndarray,
    scores: dict[str, np.ndarray],
) -> Calibration | None:
    """Fit ``method`` on the validation rows' labels ``y``/``mask`` ``(N, T)`` and the
    model's ``scores``; None for ``"none"``. A task (or funnel step) whose validation rows
    lack a class raises a DataError saying which."""
    if method == "none":
        return None
    fit = FITS[method]
    state: dict = {"method": method, "tasks": {}}
    for k, spec in enumerate(tasks):
        if spec.kind not in CLASSIFICATION_KINDS:
            continue
        rows = mask[:, k].astype(bool)
        p = np.asarray(scores[spec.name], dtype=np.float64)
        where = f"task {spec.name!r}"
        if funnel and k:
            rows &= mask[:, k - 1].astype(bool) & (y[:, k - 1] == 1)
            p = funnel_step(scores, [t.name for t in tasks], k).astype(np.float64)
            where = f"funnel step {spec.name!r} (rows positive for {tasks[k - 1].name!r})"
        labels = y[rows, k].astype(np.int64)
        if len(np.unique(labels)) < 2:
            raise DataError(
                f"calibration={method!r} needs validation rows of both classes for {where}; "
                f"it has {int(rows.sum())} labelled row(s), classes {sorted(set(labels))}. "
                "Give more validation rows (validation=... or a larger validation_fraction) "
                "or calibration='none'."
            )
        state["tasks"][spec.name] = fit(labels, p[rows], spec.kind == "multiclass")
    return Calibration(state, tasks, funnel)


def load_calibration(path: Path, tasks: Sequence[TaskSpec], funnel: bool) -> Calibration:
    """The calibration saved in ``path`` (``calibration.json`` of a model folder)."""
    state = read_json(path)
    try:
        return Calibration(state, tasks, funnel)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ModelFileError(
            f"{path} is not a calibration of this model ({err!r:.80}); save the model again."
        ) from None
