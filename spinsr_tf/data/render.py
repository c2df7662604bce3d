"""Pictures of spin maps: Sz with a diverging colormap and the in-plane direction on a colour wheel.

Matplotlib (Agg) only; every figure is written to a file through a temporary name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spinsr_tf.base.files import atomic_path


def inplane_rgb(spins: np.ndarray) -> np.ndarray:
    """Colour-wheel image of a ``(H, W, 3)`` spin map: hue = in-plane angle atan2(Sy, Sx),
    brightness from Sz (white = +z, black = −z), the usual convention of micromagnetics viewers."""
    from matplotlib.colors import hsv_to_rgb

    spins = np.asarray(spins, dtype=np.float64)
    hue = (np.arctan2(spins[..., 1], spins[..., 0]) / (2 * np.pi)) % 1.0
    sz = np.clip(spins[..., 2], -1.0, 1.0)
    sat = np.clip(1.0 - sz, 0.0, 1.0)          # +z fades to white
    val = np.clip(1.0 + sz, 0.0, 1.0)          # −z fades to black
    return hsv_to_rgb(np.stack([hue, sat, val], axis=-1))


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` atomically and close it (pyplot keeps every open figure)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def comparison_panel(columns: dict[str, np.ndarray], path: str | os.PathLike,
                     title: str | None = None) -> Path:
    """Save a figure of one image per column (e.g. LR | baselines | SR | ground truth).

    ``columns`` maps a label to an ``(H, W, C)`` map (sizes may differ). Row 1 shows Sz (or the
    scalar) on a diverging map, fixed to [−1, 1]; row 2 the in-plane colour wheel (C = 3 only).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    vector = all(np.shape(img)[-1] == 3 for img in columns.values())
    rows = 2 if vector else 1
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.1 * len(columns), 2.2 * rows),
                             squeeze=False)
    for col, (label, img) in enumerate(columns.items()):
        img = np.asarray(img)
        axes[0, col].imshow(img[..., -1], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        axes[0, col].set_title(label, fontsize=9)
        if vector:
            axes[1, col].imshow(inplane_rgb(img), interpolation="nearest")
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("Sz" if vector else "value", fontsize=9)
    if vector:
        axes[1, 0].set_ylabel("in-plane", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def spin_maps_panel(spins: np.ndarray, path: str | os.PathLike, title: str | None = None) -> Path:
    """Save Sz, Sx, Sy rows for a few ``(N, H, W, 3)`` samples (a first look at a dataset)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    spins = np.asarray(spins)
    n = len(spins)
    fig, axes = plt.subplots(3, n, figsize=(2.0 * n, 6.2), squeeze=False)
    for k in range(n):
        for row, (comp, name) in enumerate(((2, "Sz"), (0, "Sx"), (1, "Sy"))):
            axes[row, k].imshow(spins[k, ..., comp], cmap="RdBu_r", vmin=-1, vmax=1,
                                interpolation="nearest")
            axes[row, k].set_xticks([]), axes[row, k].set_yticks([])
            if k == 0:
                axes[row, k].set_ylabel(name)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
