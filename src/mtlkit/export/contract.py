"""The input contract of an exported model, as a short README next to it: which columns,
in which order, encoded how, and what each output means."""

from __future__ import annotations

from collections.abc import Sequence

from mtlkit.data.column_stats import CATEGORY_RULE
from mtlkit.data.preprocessor import MISSING_SUFFIX
from mtlkit.data.schema import TaskSpec
from mtlkit.markdown import md_escape


def contract_readme(
    state: dict,
    tasks: Sequence[TaskSpec],
    output_names: Sequence[str],
    model_file: str,
    prep_file: str,
    format_name: str,
    run_code: str,
    calibration: str = "none",
) -> str:
    """Markdown: the inputs ``x_cat``/``x_num`` column by column, the outputs, and how to
    encode rows and run the file. ``state`` is the preprocessor's saved JSON; column and
    task names are escaped as in the comparison report (:func:`mtlkit.markdown.md_escape`)."""
    e = md_escape
    cat_rows = [
        f"| {j} | {e(f['name'])} | {_category_encoding(f, state)} |"
        for j, f in enumerate(state["categorical"])
    ]
    num_rows = [
        f"| {j} | {e(f['name'])} | (value - mean) / std with mean {f['mean']:.7g}, std "
        f"{f['std']:.7g}; 0 when missing |"
        for j, f in enumerate(state["numeric"])
    ]
    indicators = [f["name"] for f in state["numeric"] if f["indicator"]]
    num_rows += [
        f"| {len(num_rows) + j} | {e(name + MISSING_SUFFIX)} | 1.0 when {e(name)} is missing, "
        "else 0.0 |"
        for j, name in enumerate(indicators)
    ]
    specs = {t.name: t for t in tasks}
    out_rows = [
        f"| {e(name)} | {e(_output_meaning(specs.get(name), name))} |" for name in output_names
    ]
    return "\n".join(
        [
            f"# {e(model_file)}: a multi-task model exported from mtlkit ({format_name})",
            "",
            "Inputs (the batch axis first, any batch size), as mtlkit's preprocessor encodes "
            f"rows; its fitted state is `{prep_file}` (vocabularies, means, standard "
            "deviations):",
            "",
            f"- `x_cat`: int64, shape (batch, {len(cat_rows)}), one column per categorical "
            "feature, in this order:",
            "",
            "| # | column | encoding |",
            "| --- | --- | --- |",
            *cat_rows,
            "",
            f"- `x_num`: float32, shape (batch, {len(num_rows)}), in this order:",
            "",
            "| # | column | encoding |",
            "| --- | --- | --- |",
            *num_rows,
            "",
            "Outputs, in this order (the same numbers as `MultiTaskEstimator.predict_proba` "
            "and `mtlkit predict`"
            + (
                f"; the probabilities are recalibrated ({calibration}, fitted on the validation "
                "split) inside the graph, see calibration.json in the model folder"
                if calibration != "none"
                else ""
            )
            + "):",
            "",
            "| name | meaning |",
            "| --- | --- |",
            *out_rows,
            "",
            "Encode new rows with mtlkit and run the file:",
            "",
            "```python",
            "from mtlkit.data.preprocessor import Preprocessor",
            "from mtlkit.data.loading import load_features",
            "",
            f'prep = Preprocessor.load("{prep_file}")',
            'data = prep.transform(load_features("new_rows.csv"), require_labels=False)',
            "x_cat, x_num = data.x_cat.numpy(), data.x_num.numpy()",
            run_code.format(file=model_file),
            "```",
            "",
            f"Without mtlkit, apply the encodings above: {CATEGORY_RULE}; a category's id "
            f"is 1 + its position in the column's `vocab` list in `{prep_file}`, and 0 when "
            "it is missing, was "
            f"not seen in training or was seen fewer than {state.get('min_frequency', 1)} "
            "time(s) (min_frequency); a hashed column's id is 1 + the hash of that text modulo "
            "its `buckets`.",
            "",
        ]
    )


def _category_encoding(feature: dict, state: dict) -> str:
    """How one categorical column's values become ids (``state``: the preprocessor's JSON;
    files saved before buckets were per column give them once, as ``hash_buckets``)."""
    if feature.get("hashed"):
        buckets = feature.get("buckets") or state["hash_buckets"]
        return (
            f"1 + pandas.util.hash_array(value as text, categorize=False) % {buckets}; "
            "0 when missing"
        )
    rare = state.get("min_frequency", 1)
    unseen = "unseen" if rare == 1 else f"seen fewer than {rare} times in training"
    return f"1 + position in its vocab ({len(feature['vocab'])} values); 0 when missing or {unseen}"


def _output_meaning(spec: TaskSpec | None, name: str) -> str:
    if spec is None:
        step, _, previous = name.partition("_given_")
        return f"P({step} = 1 given {previous} = 1), shape (batch,)"
    if spec.kind == "binary":
        return f"P({spec.name} = 1), shape (batch,)"
    if spec.kind == "multiclass":
        classes = list(spec.classes) or list(range(spec.n_classes))
        return f"class probabilities, shape (batch, {spec.n_classes}), classes in order {classes}"
    return f"the predicted value of {spec.name}, shape (batch,)"
