"""Training: masked losses, strategies, the trainer and the estimator."""
