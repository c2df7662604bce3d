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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def wheel_key(ax, size: int = 65) -> None:
    """Draw the key of :func:`inplane_rgb` into ``ax``: the in-plane angle as hue around the
    disc, Sz from +1 (white, centre) to 0 (full colour, rim); −z (black) is below the disc."""
    y, x = np.mgrid[1:-1:size * 1j, -1:1:size * 1j]
    r = np.hypot(x, y)
    spins = np.stack([x, y, np.sqrt(np.clip(1 - r ** 2, 0, 1))], axis=-1)
    rgba = np.concatenate([inplane_rgb(spins), (r <= 1)[..., None].astype(float)], axis=-1)
    ax.imshow(rgba, extent=(-1, 1, -1, 1), interpolation="bilinear")
    for label, (tx, ty) in (("+x", (1.28, 0)), ("+y", (0, 1.22)), ("−x", (-1.3, 0)),
                            ("−y", (0, -1.25))):
        ax.text(tx, ty, label, ha="center", va="center", fontsize=7)
    ax.set_xlim(-1.5, 1.5), ax.set_ylim(-1.45, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("in-plane angle;\nwhite +z, black −z", fontsize=6.5)


def wall_window(truth: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner ``(row, col)`` of the ``side × side`` window of an ``(H, W, C)`` map with
    the largest summed gradient (a domain wall: where interpolation and networks differ)."""
    t = np.asarray(truth, dtype=np.float64)
    grad = sum(np.square(np.diff(t, axis=a, append=np.take(t, [-1], axis=a))).sum(axis=-1)
               for a in (0, 1))
    side = min(side, *grad.shape)
    c = np.pad(np.cumsum(np.cumsum(grad, 0), 1), ((1, 0), (1, 0)))
    sums = c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]
    r, q = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(r), int(q)


#: Smallest error the error maps of :func:`comparison_panel` tell apart (log scale), in the
#: maps' units: 10⁻³ of a unit vector.
ERROR_FLOOR = 1e-3


def comparison_panel(columns: dict[str, np.ndarray], path: str | os.PathLike,
                     title: str | None = None, *, truth: np.ndarray | None = None,
                     scores: dict[str, str] | None = None, extra: tuple | None = None,
                     caption: str | None = None, zoom: int | None = None,
                     value_label: str | None = None) -> Path:
    """Save a figure of one image per column (e.g. LR | networks | baseline | ground truth).

    ``columns`` maps a label to an ``(H, W, C)`` map (sizes may differ). Row 1 shows Sz (or the
    scalar) on a diverging map fixed to [−1, 1]; row 2 the in-plane colour wheel (C = 3 only),
    with its key. Optional:

    truth : ``(H, W, C)``; adds a row of the error ``|map − truth|`` (Euclidean length over the
        components) of every column on the truth's grid, all on one logarithmic colour scale
        (:data:`ERROR_FLOOR` to the largest error shown): a network twice as close to the truth
        as interpolation is then as visible as one ten times worse.
    scores : label → a line for its title (e.g. ``"PSNR 44.2 dB, Corr 0.9999"``).
    extra : ``(label, (H, W) map, colour-bar label)``: one more column on its own scale
        (viridis, its 1st–99th percentile, so that a few bright edge pixels do not wash it out).
    caption : text under the figure (what was estimated, units).
    zoom : side in pixels of the truth's grid: adds a row of the in-plane (or scalar) maps
        enlarged on the window of the truth with the strongest walls, marked in row 1.
    value_label : name of row 1's quantity (default ``"Sz"`` for vectors, ``"value"`` for
        scalars).
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    maps = {label: np.asarray(img) for label, img in columns.items()}
    vector = all(img.shape[-1] == 3 for img in maps.values())
    truth = None if truth is None else np.asarray(truth)
    labels = list(maps) + ([extra[0]] if extra else [])
    kinds = ["sz"] + (["wheel"] if vector else []) + (["error"] if truth is not None else [])
    window = None
    if zoom and truth is not None:
        side = min(zoom, *truth.shape[:2])
        window = (*wall_window(truth, side), side)
        kinds.append("zoom")
    errors = {}
    if truth is not None:
        for label, img in maps.items():
            if img.shape == truth.shape and img is not truth and not np.array_equal(img, truth):
                errors[label] = np.sqrt(np.square(img.astype(np.float64) - truth).sum(axis=-1))
    top = max([float(e.max()) for e in errors.values()] + [10 * ERROR_FLOOR])

    n = len(labels)
    fig = plt.figure(figsize=(2.0 * n + 1.1, 2.05 * len(kinds) + 0.5))
    grid = fig.add_gridspec(len(kinds), n + 1, width_ratios=[1] * n + [0.45],
                            wspace=0.08, hspace=0.3 if scores else 0.16)
    axes = {}
    for row, kind in enumerate(kinds):
        for col, label in enumerate(labels):
            axes[kind, label] = ax = fig.add_subplot(grid[row, col])
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(kind != "error" or label in errors)
        axes[kind, None] = fig.add_subplot(grid[row, n])
        axes[kind, None].axis("off")
    sz_im = err_im = extra_im = None
    for col, label in enumerate(labels):
        is_extra = extra is not None and label == extra[0] and col == n - 1
        img = None if is_extra else maps[label]
        ax = axes["sz", label]
        head = label if not scores or label not in scores else f"{label}\n{scores[label]}"
        ax.set_title(head, fontsize=8)
        if is_extra:
            values = np.asarray(extra[1], dtype=np.float64)
            finite = values[np.isfinite(values)]
            low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
            extra_im = ax.imshow(values, cmap="viridis", vmin=low,
                                 vmax=high if high > low else low + 1e-12,
                                 interpolation="nearest")
            for kind in kinds[1:]:
                axes[kind, label].axis("off")
            continue
        sz_im = ax.imshow(img[..., -1], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        if vector:
            axes["wheel", label].imshow(inplane_rgb(img), interpolation="nearest")
        if "error" in kinds:
            if label in errors:
                err_im = axes["error", label].imshow(
                    np.maximum(errors[label], ERROR_FLOOR), cmap="magma",
                    norm=LogNorm(ERROR_FLOOR, top), interpolation="nearest")
            else:
                axes["error", label].axis("off")
        if window is not None:
            r, q, side = window
            f = truth.shape[0] / img.shape[0]
            r, q, w = int(r / f), int(q / f), max(1, int(round(side / f)))
            crop = img[r:r + w, q:q + w]
            axes["zoom", label].imshow(inplane_rgb(crop) if vector else crop[..., -1],
                                       cmap=None if vector else "RdBu_r", vmin=-1, vmax=1,
                                       interpolation="nearest")
            ax.add_patch(Rectangle((q - 0.5, r - 0.5), w, w, fill=False, lw=1.0,
                                   ec="black"))
    first = labels[0]
    value_label = value_label or ("Sz" if vector else "value")
    axes["sz", first].set_ylabel(value_label, fontsize=8)
    if vector:
        axes["wheel", first].set_ylabel("in-plane", fontsize=8)
        wheel_key(axes["wheel", None].inset_axes([0.0, 0.1, 1.0, 0.8]))
    if "error" in kinds:
        axes["error", first].set_ylabel("|map − truth|", fontsize=8)
    if window is not None:
        axes["zoom", first].set_ylabel(f"zoom: {window[2]}x{window[2]} px\n(box above)",
                                       fontsize=8)
    bar = lambda im, kind, text: fig.colorbar(  # noqa: E731
        im, cax=axes[kind, None].inset_axes([0.0, 0.05, 0.22, 0.9]), label=text)
    if sz_im is not None:
        bar(sz_im, "sz", value_label)
    if err_im is not None:
        bar(err_im, "error", "|map − truth|, one scale\nfor every column")
    if extra_im is not None:   # its own scale: a bar under its map, clear of the Sz bar
        cax = (axes[kinds[1], extra[0]].inset_axes([0.05, 0.86, 0.9, 0.08]) if len(kinds) > 1
               else axes["sz", extra[0]].inset_axes([0.05, -0.16, 0.9, 0.07]))
        fig.colorbar(extra_im, cax=cax, orientation="horizontal", label=extra[2],
                     extend="both")
    if title:
        fig.suptitle(title, fontsize=10)
    if caption:
        below = 0.06 / len(kinds) if len(kinds) > 1 else -0.14 if extra_im is not None else 0.0
        fig.text(0.5, below, caption, ha="center", va="top", fontsize=7.5, wrap=True)
    return save_figure(fig, path)
