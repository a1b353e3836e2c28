"""How a categorical column becomes ids: its settings, declared once, and the hashing rule.

``max_categories``, ``hash_buckets`` and ``min_frequency`` are arguments of
:class:`~mtlkit.data.preprocessor.Preprocessor`; :class:`~mtlkit.training.settings.TrainConfig`
declares them as fields too (:func:`~mtlkit.params.declared`), which makes them the
estimator's keyword arguments, the ``mtlkit train``/``compare``/``tune`` flags and the keys
of a config file. Torch-free and pandas-free (the CLI imports it).

The rule (docs/categorical.md): a column whose values seen at least ``min_frequency`` times
number at most ``max_categories`` gets a vocabulary, one id per such value (1..k, by sorted
text); rarer, unseen and missing values share id 0. A column with more is hashed, every value
into one of ``hash_buckets`` ids (1..b); unset, b is the smallest power of two at least the
column's distinct values, up to :data:`COUNT_FACTOR` x ``max_categories``.
"""

from __future__ import annotations

from mtlkit.params import Int, Param

#: Distinct values counted per column, as a multiple of ``max_categories``: counting stops
#: beyond (bounded memory in a streamed fit), and such a column is hashed whatever
#: ``min_frequency`` would have kept.
COUNT_FACTOR = 4

VOCABULARY_PARAMS: tuple[Param, ...] = (
    Int(
        "max_categories",
        100_000,
        "the most ids a categorical column's vocabulary may hold (values seen at least "
        "min_frequency times); a column with more is hashed (see hash_buckets)",
        low=1,
    ),
    Param(
        "hash_buckets",
        None,
        "int",
        "ids a hashed column's values are hashed into (none: the smallest power of two at "
        f"least the column's distinct values, capped at {COUNT_FACTOR} x max_categories)",
        low=1,
        optional=True,
    ),
    Int(
        "min_frequency",
        1,
        "values seen fewer times in the training rows share the out-of-vocabulary id 0 (with "
        "missing and unseen values)",
        low=1,
    ),
)
VOCABULARY_PARAM_NAMES = tuple(p.name for p in VOCABULARY_PARAMS)


def count_limit(max_categories: int) -> int:
    """The most distinct values of a column counted (see :data:`COUNT_FACTOR`)."""
    return COUNT_FACTOR * max_categories


def auto_buckets(n_distinct: int, max_categories: int) -> int:
    """The hash buckets of a column with ``n_distinct`` values when ``hash_buckets`` is unset:
    the smallest power of two >= ``min(n_distinct, COUNT_FACTOR * max_categories)``, so about
    one id per value (a value shares its id with another with probability about
    ``1 - exp(-n / b)``, under 0.63) and a table no larger than twice the counting limit."""
    n = max(min(n_distinct, count_limit(max_categories)), 1)
    return 1 << (n - 1).bit_length()
