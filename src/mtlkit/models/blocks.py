"""The shared building blocks every model is made of: input encoder, MLP, batched experts,
gate and tower. One implementation each, so that comparisons between models are fair."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.data.schema import Schema

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}
NORMS = (None, "batch", "layer")


class InputEncoder(nn.Module):
    """Categorical ids through one fused embedding table, numeric inputs passed through.

    All categorical columns share a single ``nn.Embedding``; column ``i``'s ids are shifted by
    an offset, so one lookup serves every column (one kernel instead of one per column).
    On a CPU the lookup is an ``index_select`` of the table's rows: the same values and
    gradients as ``F.embedding``, but its backward (``index_add_``) is about 4x faster there
    than the embedding's dense backward. On a GPU, where ``index_add_`` accumulates with
    atomics (in no fixed order), the embedding kernel is kept.

    :meth:`encode` returns the input unbuilt (:class:`EncodedInput`), so that a linear layer
    reading it can fold the embeddings into its weights.

    With ``sparse_gradients`` (set by the trainer for large tables, see
    :mod:`mtlkit.training.optim`) the lookup is ``F.embedding(..., sparse=True)``: the table's
    gradient holds only the rows a batch looked up, and nothing is folded.

    With ``copies`` > 1 the table holds that many independent sets of embeddings (copy ``c``'s
    rows after copy ``c - 1``'s, each drawn as its own ``nn.Embedding``; e.g. one per task of
    a model that shares nothing), all looked up at once: the output is ``(copies, B, d)``, and
    nothing is folded.
    """

    #: Whether the table's gradient is sparse (only the rows looked up).
    sparse_gradients: bool = False

    def __init__(self, schema: Schema, embedding_dim: int = 4, copies: int = 1) -> None:
        super().__init__()
        cards = list(schema.cat_cardinalities)
        self.n_cat = len(cards)
        self.embedding_dim = embedding_dim
        self.copies = copies
        offsets = torch.tensor([0, *cards[:-1]], dtype=torch.long).cumsum(0) if cards else None
        self.register_buffer("offsets", offsets if offsets is not None else torch.zeros(0).long())
        self.embedding = copied_embedding(sum(cards), embedding_dim, copies) if cards else None
        self.output_dim = self.n_cat * embedding_dim + schema.n_numeric
        if copies > 1:  # the ids' shifts for every copy at once, (copies, 1, n_cat)
            copy_offsets = self.offsets + sum(cards) * torch.arange(copies).view(copies, 1, 1)
            self.register_buffer("copy_offsets", copy_offsets, persistent=False)
        # The embedding rows laid out column by column, each column padded to the widest
        # (``padded_rows``), and where each column starts in that layout (``padded_offsets``):
        # folding multiplies every column's rows by its block of a weight in one bmm.
        # Beyond FOLD_MAX_TABLE padded rows folding never pays (:func:`folding_pays`), and
        # copies are never folded: none kept.
        widest = max(cards, default=0)
        width = widest if copies == 1 and len(cards) * widest <= FOLD_MAX_TABLE else 0
        card, j = torch.tensor(cards, dtype=torch.long), torch.arange(width)
        padded = self.offsets[:, None] + torch.minimum(j, card[:, None] - 1)
        self.register_buffer("padded_rows", padded.flatten(), persistent=False)
        self.register_buffer("padded_offsets", torch.arange(len(cards)) * width, persistent=False)

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> torch.Tensor:
        if self.copies > 1:
            x_num = x_num.expand(self.copies, -1, -1)
        if self.embedding is None:
            return x_num
        ids = x_cat + (self.offsets if self.copies == 1 else self.copy_offsets)
        table = self.embedding.weight
        if self.sparse_gradients or table.is_cuda:
            emb = F.embedding(ids, table, sparse=self.sparse_gradients).flatten(-2)
        else:
            # -1, not len(ids): a traced export (ONNX, TorchScript) keeps the batch size free.
            emb = table.index_select(0, ids.flatten()).view(
                *ids.shape[:-2], -1, self.n_cat * self.embedding_dim
            )
        return torch.cat([emb, x_num], dim=-1) if x_num.shape[-1] else emb

    def copy_slices(self, copy: int) -> list[tuple[nn.Parameter, slice]]:
        """The rows of the table that belong to ``copy`` alone (see ``copies``)."""
        if self.embedding is None:
            return []
        rows = self.embedding.num_embeddings // self.copies
        return [(self.embedding.weight, slice(copy * rows, (copy + 1) * rows))]

    def encode(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> EncodedInput:
        """The encoded input, built only when a reader needs it (see :class:`EncodedInput`)."""
        return EncodedInput(self, x_cat, x_num)


#: Folding while training pays from this many embedding dimensions times layer outputs, and
#: this batch size (dense / fold time of a first layer's forward and backward, 1 CPU thread,
#: 29 census columns: 1.5-1.9x at 8 x 512 and batch 512-1024, 1.25-1.44x at 8 x 256,
#: 0.89-1.00x at 8 x 128, 2.1-3.6x at 16 x 256 and up; 0.5-1.1x with 4 dimensions or batches
#: of 128; BENCHMARKS.md).
FOLD_TRAIN_MIN_WORK = 2048
FOLD_TRAIN_MIN_BATCH = 512
#: The largest folded product kept in memory for one layer (floats).
FOLD_MAX_TABLE = 1 << 24


def _traced() -> bool:
    """Whether a trace or an export (TorchScript, ONNX, ``torch.compile``) records this call."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()


def folding_pays(x_cat: torch.Tensor, dim: int, padded: int, weight: torch.Tensor) -> bool:
    """Whether :meth:`EncodedInput.folded_linear` beats the dense product for the ids
    ``x_cat`` ``(B, n_cat)`` with ``dim``-wide embeddings (``padded`` table rows) and a
    ``weight`` of that layer: never on a GPU or in a traced export (whose batch size must stay
    free, so it is not even read there); in inference when the batch has more lookups than the
    folded product has rows; in training only for wide embeddings and layers on large
    batches, where the saved multiply-adds outweigh the lookups' backward (measured, see
    ``FOLD_TRAIN_MIN_WORK``)."""
    if weight.is_cuda or _traced():
        return False
    batch, n_cat = x_cat.shape
    out = weight.shape[1]
    if padded * out > FOLD_MAX_TABLE or batch * n_cat < padded:
        return False
    if torch.is_grad_enabled() and weight.requires_grad:
        return (
            dim * out >= FOLD_TRAIN_MIN_WORK
            and dim >= 8
            and batch >= FOLD_TRAIN_MIN_BATCH
            and batch * n_cat >= 4 * padded
        )
    return True


#: The folded products of a scoring pass, by (encoder, layer) (see :func:`reused_folds`).
_REUSED: ContextVar[dict | None] = ContextVar("_REUSED", default=None)


@contextmanager
def reused_folds(products: dict) -> Iterator[None]:
    """Within: each folded layer (:meth:`EncodedInput.folded_linear`) takes its product of
    the embeddings and its weight from ``products`` (an empty dict at a scoring pass's first
    batch), and puts it there when it computes it. Pass the same dict to every batch of a
    pass whose weights do not change (scoring under ``torch.inference_mode``): a layer then
    multiplies the embeddings by its weight once, and each batch costs one ``embedding_bag``
    (census MMoE, batches of 2,048: 1.1-1.2x the rows/s; BENCHMARKS.md). The products stay
    in ``products`` (at most ``FOLD_MAX_TABLE`` floats a layer) as long as the caller keeps it."""
    token = _REUSED.set(products)
    try:
        yield
    finally:
        _REUSED.reset(token)


def copied_embedding(rows: int, dim: int, copies: int) -> nn.Embedding:
    """An ``nn.Embedding`` of ``copies`` tables of ``rows`` rows stacked, each drawn in turn as
    a table of its own would be (the same random stream as ``copies`` separate tables)."""
    if copies == 1:
        return nn.Embedding(rows, dim)
    tables = [nn.Embedding(rows, dim).weight.detach() for _ in range(copies)]
    return nn.Embedding(rows * copies, dim, _weight=torch.cat(tables))


class EncodedInput:
    """An input encoder's output, not yet built: the ids and numeric inputs of a batch.

    The first linear layer of an expert, gate or MLP reading it calls :meth:`folded_linear`
    (the embeddings folded into its weight, when that pays) and otherwise reads
    :meth:`dense`, the encoded ``(B, d)`` tensor, built once and shared by every reader.
    """

    def __init__(self, encoder: InputEncoder, x_cat: torch.Tensor, x_num: torch.Tensor) -> None:
        self.encoder, self.x_cat, self.x_num = encoder, x_cat, x_num
        self._dense: torch.Tensor | None = None
        self._ids: torch.Tensor | None = None

    def dense(self) -> torch.Tensor:
        if self._dense is None:
            self._dense = self.encoder(self.x_cat, self.x_num)
        return self._dense

    def folded_linear(
        self, weight: torch.Tensor, bias: torch.Tensor, layer: object
    ) -> torch.Tensor | None:
        """``dense() @ weight + bias`` (``weight``: ``(d, out)``, the weight of ``layer``)
        computed without building the encoded input, or None where that would be slower
        (:func:`folding_pays`). Within :func:`reused_folds` the product of ``layer``'s
        weight and the embeddings is computed once and reused by every later batch.

        A linear layer after concatenated embeddings is a sum over columns,
        ``x @ W = sum_i E_i[c_i] @ W_i + x_num @ W_num``: each column's embedding rows are
        multiplied by that column's block of ``weight`` once, and every row then sums one row
        of each column's product (``embedding_bag``, straight from the padded products: the
        padding rows are never read). The same value and gradients up to float rounding, for
        far fewer multiply-adds when the columns have fewer rows than the batch has lookups.
        """
        enc = self.encoder
        reused = _REUSED.get()
        key = (id(enc), id(layer))
        if reused is not None and key in reused and reused[key][0] is layer:
            _, products, numeric = reused[key]
        elif (
            enc.sparse_gradients
            or not len(enc.padded_rows)
            or not folding_pays(self.x_cat, enc.embedding_dim, len(enc.padded_rows), weight)
        ):
            return None
        else:
            n, d = enc.n_cat, enc.embedding_dim
            width = len(enc.padded_rows) // n
            blocks = weight[: n * d].view(n, d, -1)
            rows = enc.embedding.weight.index_select(0, enc.padded_rows).view(n, width, d)
            products, numeric = torch.bmm(rows, blocks).view(n * width, -1), weight[n * d :]
            if reused is not None and layer is not None:
                reused[key] = (layer, products, numeric)
        if self._ids is None:
            self._ids = self.x_cat + enc.padded_offsets
        out = F.embedding_bag(self._ids, products, mode="sum").add_(bias)
        return out.addmm_(self.x_num, numeric) if self.x_num.shape[1] else out


def dense_input(x: torch.Tensor | EncodedInput) -> torch.Tensor:
    """``x`` as a tensor (an :class:`EncodedInput` built)."""
    return x.dense() if isinstance(x, EncodedInput) else x


def folded_input(
    x: torch.Tensor | EncodedInput, weight: torch.Tensor, bias: torch.Tensor, layer: object
) -> torch.Tensor | None:
    """``x @ weight + bias`` (the weight of ``layer``) with the embeddings folded into
    ``weight`` where ``x`` is an :class:`EncodedInput` and that pays; None otherwise (the
    caller's dense product then)."""
    return x.folded_linear(weight, bias, layer) if isinstance(x, EncodedInput) else None


def _activate(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``; a ReLU rectifies ``x`` in place where no gradient is recorded (scoring:
    ``x`` is a layer's fresh output, and no new memory is written; census MMoE: 1.03-1.19x
    the rows/s, BENCHMARKS.md)."""
    if type(layer) is nn.ReLU and not torch.is_grad_enabled() and not _traced():
        return x.relu_()
    return layer(x)


def _layer_tail(width: int, activation: str, dropout: float, norm: str | None) -> list[nn.Module]:
    layers: list[nn.Module] = []
    if norm == "batch":
        layers.append(nn.BatchNorm1d(width))
    elif norm == "layer":
        layers.append(nn.LayerNorm(width))
    layers.append(ACTIVATIONS[activation]())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers


class MLP(nn.Sequential):
    """Linear layers of the given ``hidden`` widths, each followed by norm, activation, dropout.

    ``output_dim`` is the last hidden width (or ``in_dim`` for an empty ``hidden``).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            layers.extend(_layer_tail(h, activation, dropout, norm))
            width = h
        super().__init__(*layers)
        self.output_dim = width

    def forward(self, x: torch.Tensor | EncodedInput) -> torch.Tensor:
        layers = iter(self)
        first = next(layers, None)
        if first is None:
            return dense_input(x)
        x = _linear(first, x)
        for layer in layers:
            x = _activate(layer, x)
        return x


def _linear(layer: nn.Linear, x: torch.Tensor | EncodedInput) -> torch.Tensor:
    """``layer(x)``, with the embeddings folded into its weight where that pays."""
    folded = folded_input(x, layer.weight.T, layer.bias, layer)
    return folded if folded is not None else layer(dense_input(x))


class BatchedMLP(nn.Module):
    """``n`` independent MLPs of the same shape (e.g. experts), evaluated in batched matmuls.

    Input: ``(B, in_dim)`` shared by all members, or ``(n, B, in_dim)`` one input per member.
    Output: ``(n, B, hidden[-1])``. Equivalent to a Python loop over ``n`` separate ``MLP``s
    (see tests), but one ``baddbmm`` per layer instead of ``n`` small kernels.
    """

    def __init__(
        self,
        n: int,
        in_dim: int,
        hidden: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.n = n
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.norms = nn.ModuleList()
        width = in_dim
        for h in hidden:
            bound = 1.0 / math.sqrt(width)  # the same init as nn.Linear
            self.weights.append(nn.Parameter(torch.empty(n, width, h).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, h).uniform_(-bound, bound)))
            self.norms.append(_MemberNorm(n, h, norm) if norm else nn.Identity())
            width = h
        self.act = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.output_dim = width

    def forward(self, x: torch.Tensor | EncodedInput) -> torch.Tensor:
        return run_stacked([self], x)

    def member_slices(self, member: int) -> list[tuple[nn.Parameter, int | slice]]:
        """``(parameter, index)`` pairs: ``parameter[index]`` is the weights of ``member``."""
        slices: list[tuple[nn.Parameter, int | slice]] = []
        for w, b, norm in zip(self.weights, self.biases, self.norms):
            slices += [(w, member), (b, member)]
            if isinstance(norm, _MemberNorm):
                slices += norm.member_slices(member)
        return slices


def stacked_layer(mlps: Sequence[BatchedMLP], i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer ``i``'s weights ``(sum n, d, h)`` and biases ``(sum n, 1, h)`` of same-shaped
    :class:`BatchedMLP` s, their members in order (a view of the one MLP's own)."""
    if len(mlps) == 1:
        return mlps[0].weights[i], mlps[0].biases[i]
    return torch.cat([m.weights[i] for m in mlps]), torch.cat([m.biases[i] for m in mlps])


def wide_layer(w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Members' weights ``(n, d, h)`` and biases ``(n, 1, h)`` as one ``(d, n * h)`` weight and
    ``(n * h,)`` bias: a shared input's product with it, viewed as ``(B, n, h)``, holds every
    member's output."""
    n, d, h = w.shape
    return w.transpose(0, 1).reshape(d, n * h), b.transpose(0, 1).reshape(n * h)


def shared_linear(
    x: torch.Tensor | EncodedInput, weight: torch.Tensor, bias: torch.Tensor, layer: object
) -> torch.Tensor:
    """``x @ weight + bias`` for a ``(B, d)`` input (``weight``: that of ``layer``, the key of
    its folded product in :func:`reused_folds`; None: never reused), the embeddings folded
    into ``weight`` where ``x`` is an :class:`EncodedInput` and that pays."""
    flat = folded_input(x, weight, bias, layer)
    return flat if flat is not None else torch.addmm(bias.unsqueeze(0), dense_input(x), weight)


def _shared_first_layer(
    x: torch.Tensor | EncodedInput,
    mlps: Sequence[BatchedMLP],
    key: object,
    gates: Sequence[nn.Linear] = (),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One wide product of a shared ``(B, d)`` input (bias fused, folded where that pays;
    ``key`` names it for :func:`reused_folds`): every member's first layer as ``(sum n, B,
    h)``, a view of the ``(B, n * h)`` product without a copy, and the ``gates``' outputs
    ``(B, sum of gate outputs)`` computed with it (None without gates)."""
    w, b = stacked_layer(mlps, 0)
    weight, bias = wide_layer(w, b)
    width = weight.shape[1]
    if gates:
        weight = torch.cat([weight, *(g.weight.T for g in gates)], 1)
        bias = torch.cat([bias, *(g.bias for g in gates)])
    flat = shared_linear(x, weight, bias, key)
    # split, not slicing: its backward joins the parts' gradients (one cat) where a slice's
    # writes each into a zero-filled gradient of the whole product.
    first, logits = flat.split([width, flat.shape[1] - width], 1) if gates else (flat, None)
    return first.view(-1, *w.shape[::2]).transpose(0, 1), logits


def run_stacked(
    mlps: Sequence[BatchedMLP],
    x: torch.Tensor | EncodedInput | None,
    first: torch.Tensor | None = None,
) -> torch.Tensor:
    """Same-shaped :class:`BatchedMLP` s with the same options evaluated as one: every
    layer is one batched matmul over all their members (in order), each MLP's norm applied
    to its own members. Output ``(sum n, B, hidden[-1])``.

    ``x``: a ``(B, d)`` input shared by all members (or an :class:`EncodedInput`) or
    ``(sum n, B, d)``, one per member. ``first``: instead of ``x``, the first layer's
    ``(sum n, B, h)`` product (bias included), where the caller computed it together with
    other products of the same input.
    """
    head = mlps[0]
    if not head.weights:
        return dense_input(x)
    sizes = [m.n for m in mlps]
    for i in range(len(head.weights)):
        if i == 0 and first is not None:
            out = first
        elif i == 0 and (isinstance(x, EncodedInput) or x.dim() == 2):
            key = head if len(mlps) == 1 else None  # a stack's weight has no module of its own
            out, _ = _shared_first_layer(x, mlps, key)
        else:
            w, b = stacked_layer(mlps, i)
            out = torch.baddbmm(b, x, w)
        if not isinstance(head.norms[i], nn.Identity):
            parts = out.split(sizes) if len(mlps) > 1 else [out]
            out = torch.cat([m.norms[i](p) for m, p in zip(mlps, parts)])
        x = head.dropout(_activate(head.act, out))
    return x


class _MemberNorm(nn.Module):
    """Batch or layer normalisation applied to each member of a ``(n, B, h)`` tensor
    separately, each member with a scale and shift of its own."""

    def __init__(self, n: int, width: int, kind: str) -> None:
        super().__init__()
        self.kind, self.width = kind, width
        if kind == "batch":
            self.norm = nn.BatchNorm1d(n * width)
        else:
            self.weight = nn.Parameter(torch.ones(n, 1, width))
            self.bias = nn.Parameter(torch.zeros(n, 1, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "layer":
            return torch.addcmul(self.bias, F.layer_norm(x, (self.width,)), self.weight)
        n, b, h = x.shape
        return self.norm(x.transpose(0, 1).reshape(b, n * h)).view(b, n, h).transpose(0, 1)

    def member_slices(self, member: int) -> list[tuple[nn.Parameter, int | slice]]:
        if self.kind == "layer":
            return [(self.weight, member), (self.bias, member)]
        rows = slice(member * self.width, (member + 1) * self.width)
        return [(self.norm.weight, rows), (self.norm.bias, rows)]

    def upgrade_state(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        """Weights saved by mtlkit up to 6c82c21, whose layer normalisation had one scale and
        shift for all members: every member gets that one (the same function)."""
        if self.kind != "layer":
            return
        for name in ("weight", "bias"):
            old = state.pop(f"{prefix}norm.{name}", None)
            if old is not None:
                state[prefix + name] = old.expand_as(getattr(self, name)).clone()


class Gate(nn.Module):
    """Softmax gate: a linear map from the input to a distribution over ``n_experts``.

    With ``top_k`` only the ``k`` largest logits of each row survive (the others get weight
    exactly 0), and ``noise`` adds trainable Gaussian noise to the logits while training: the
    noisy top-k gating of Shazeer et al., "Outrageously Large Neural Networks: The
    Sparsely-Gated Mixture-of-Experts Layer", ICLR 2017.
    """

    def __init__(
        self, in_dim: int, n_experts: int, *, top_k: int | None = None, noise: bool = False
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, n_experts)
        self.top_k = top_k
        self.noise = nn.Linear(in_dim, n_experts) if noise else None

    def forward(self, x: torch.Tensor | EncodedInput) -> torch.Tensor:
        return self.weights(transposed_linear(self.linear, x), x)

    def weights(self, logits: torch.Tensor, x: torch.Tensor | EncodedInput) -> torch.Tensor:
        """The gate's ``(B, n_experts)`` weights from ``logits``, the ``(n_experts, B)``
        product of :attr:`linear` and the input ``x`` (a caller may compute it together with
        other products of ``x``, see :func:`experts_and_gates`)."""
        # Returned as the (B, n_experts) view of an (n_experts, B) tensor: mix_experts
        # weights each expert's rows, which reads this layout contiguously.
        if self.noise is not None and self.training:
            noise = torch.randn(
                logits.shape[1], logits.shape[0], device=logits.device, dtype=logits.dtype
            ).T
            logits = logits + noise * F.softplus(transposed_linear(self.noise, x))
        if self.top_k is not None and self.top_k < logits.shape[0]:
            kth = logits.topk(self.top_k, dim=0).values[-1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.softmax(logits, dim=0).T


def transposed_linear(linear: nn.Linear, x: torch.Tensor | EncodedInput) -> torch.Tensor:
    """``linear(x).T`` for a ``(B, d)`` input, computed directly in that ``(out, B)`` layout
    (or from the embeddings folded into the weight, where that pays)."""
    folded = folded_input(x, linear.weight.T, linear.bias, linear)
    if folded is not None:
        return folded.T
    return torch.addmm(linear.bias.unsqueeze(1), linear.weight, dense_input(x).T)


def experts_and_gates(
    x: torch.Tensor | EncodedInput,
    mlps: Sequence[BatchedMLP],
    gates: Sequence[nn.Linear],
    key: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same-shaped expert :class:`BatchedMLP` s and linear gates that read one shared
    ``(B, d)`` input (or an :class:`EncodedInput`), computed from one product of the input:
    every expert's first layer and every gate's logits (the input gradients then come from
    one product too, instead of one per group and gate plus their sum). ``key`` names that
    product for :func:`reused_folds`.

    Returns the experts' output ``(sum n, B, h)`` (:func:`run_stacked`) and the gates'
    logits as one contiguous ``(sum of gate outputs, B)`` tensor, in the order given: a
    softmax along a dimension of 4 to 16 reads this layout several times faster than the
    transposed one.
    """
    first, logits = _shared_first_layer(x, mlps, key, gates)
    return run_stacked(mlps, None, first), logits.T.contiguous()


def importance_loss(gate: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation of each expert's total gate weight over a ``(B, E)``
    batch (the "importance" loss of Shazeer et al. 2017): 0 when all experts weigh the same."""
    importance = gate.sum(0)
    return importance.var(unbiased=False) / importance.mean().pow(2).clamp_min(1e-12)


def mix_experts(expert_out: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """Gate-weighted sum of expert outputs: ``(E, B, h)`` and ``(B, E)`` give ``(B, h)``.

    A broadcast product summed over experts: on a CPU several times faster (forward and
    backward) than the equivalent ``einsum``, which becomes ``B`` tiny matrix products.
    """
    return (gate.T.unsqueeze(-1) * expert_out).sum(0)


class Tower(nn.Module):
    """A task head: an MLP followed by a linear output layer of ``out_dim`` logits."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.mlp = MLP(in_dim, hidden, activation=activation, dropout=dropout, norm=norm)
        self.out = nn.Linear(self.mlp.output_dim, out_dim)

    def forward(self, x: torch.Tensor | EncodedInput) -> torch.Tensor:
        logits = self.out(self.mlp(x))
        return logits.squeeze(-1) if logits.shape[-1] == 1 else logits
