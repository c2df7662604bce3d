"""Evaluation: metrics, the interpolation baselines as scored methods, scoring tables."""
