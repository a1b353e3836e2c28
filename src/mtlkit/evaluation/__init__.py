"""Metrics and evaluation of fitted models."""
