"""The data layer: load and merge tables, task and feature specs, splits, tensors."""
