"""Running models on prepared splits and collecting tidy results."""

from mtlkit.experiments.run import RunSpec, run_one, summarize

__all__ = ["RunSpec", "run_one", "summarize"]
