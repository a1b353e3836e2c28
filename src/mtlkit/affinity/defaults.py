"""The defaults of an affinity measurement (torch-free: the command line reads them)."""

#: The model TAG uses: hard parameter sharing (one shared bottom, a head per task).
DEFAULT_MODEL = "shared_bottom"
#: Epochs of the short joint training, and evenly spaced steps probed in each.
DEFAULT_EPOCHS = 3
DEFAULT_PROBES = 10
