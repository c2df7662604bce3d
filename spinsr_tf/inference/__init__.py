"""Inference: per-image physics refinement, the λ rule, and fit-image (train on one large image,
super-resolve it tile by tile)."""
