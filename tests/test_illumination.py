"""Uneven illumination: a smooth background fitted by least squares, taken off before the value
mapping and added back to the result on the finer grid (inference/image_io)."""

import json

import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.inference.fit_image import fit_image
from spinsr_tf.inference.image_io import (background_map, fit_background, from_network,
                                          read_input, to_network, value_mapping)


def _plane_fit(image):
    """Least-squares slopes (per pixel, rows and columns) of a 2D map: NumPy reference."""
    z = np.asarray(image, np.float64).reshape(image.shape[:2])
    rows, cols = np.mgrid[0:z.shape[0], 0:z.shape[1]]
    a = np.stack([np.ones(z.size), rows.ravel(), cols.ravel()], -1)
    return np.linalg.lstsq(a, z.ravel(), rcond=None)[0][1:]


def _textured(h=32, w=40, slope=(0.02, -0.03), seed=0):
    """Labyrinth-like stripes (±0.3, whole periods so they carry no gradient of their own)
    on a tilted plane, (h, w, 1)."""
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    texture = 0.3 * np.sign(np.sin(2 * np.pi * (cols + 0.5 * rows) / 8.0 + 0.3))
    noise = 0.01 * np.random.default_rng(seed).normal(size=(h, w))
    return (0.5 + slope[0] * rows + slope[1] * cols + texture + noise)[..., None], texture


@pytest.mark.parametrize("model", ["plane", "poly2"])
def test_background_flattens_the_mapped_image_and_comes_back(model):
    image, _ = _textured()
    slope = np.array([0.02, -0.03])
    record = fit_background(image, model)
    mapping = {**value_mapping(image - background_map(record, image.shape)),
               "background": record}
    x = to_network(image, mapping)
    # the mapped image is flat: its residual gradient is < 2 % of the illumination's
    residual = _plane_fit(x) * mapping["scale"]
    assert np.all(np.abs(residual) < 0.02 * np.abs(slope).max()), residual
    assert np.abs(_plane_fit(to_network(image, {**mapping, "background": None}))).max() \
        * mapping["scale"] > 0.5 * np.abs(slope).max()
    np.testing.assert_allclose(from_network(x, mapping)[..., 0], image[..., 0], atol=1e-5)
    # on a grid 4x finer (camera pixels), the result carries the gradient back: the plane's
    # slope per fine pixel is a quarter, and each 4x4 block averages to the LR background
    f = 4
    fine = from_network(np.zeros((image.shape[0] * f, image.shape[1] * f, 1)), mapping)
    np.testing.assert_allclose(_plane_fit(fine), slope / f, rtol=0.05)
    if model == "plane":
        blocks = fine.reshape(image.shape[0], f, image.shape[1], f).mean(axis=(1, 3))
        np.testing.assert_allclose(blocks, background_map(record, image.shape)[..., 0] +
                                   mapping["offset"], atol=1e-5)
    assert json.loads(json.dumps(record)) == record


def test_point_samples_put_the_fine_grid_on_the_lr_pixels():
    image, _ = _textured(16, 16)
    record = fit_background(image, "plane", pixel="sample")
    lr, fine = background_map(record, (16, 16)), background_map(record, (64, 64, 1))
    np.testing.assert_allclose(fine[::4, ::4], lr, atol=1e-12)


def test_mask_leaves_cells_out_of_the_fit():
    image, _ = _textured()
    mask = np.ones(image.shape[:2], bool)
    mask[:8, :8] = False
    spoilt = image.copy()
    spoilt[:8, :8] = 50.0          # a burnt-in label
    a = fit_background(image, "plane", mask=mask)["coefficients"]
    b = fit_background(spoilt, "plane", mask=mask)["coefficients"]
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_background_refusals():
    with pytest.raises(UserError, match="background must be one of"):
        fit_background(np.zeros((8, 8, 1)), "cubic")
    with pytest.raises(UserError, match="scalar"):
        fit_background(np.zeros((8, 8, 3)), "plane")
    record = fit_background(np.random.default_rng(0).normal(size=(8, 8, 1)), "plane")
    with pytest.raises(UserError, match="cannot be laid on 20x20"):
        background_map(record, (20, 20, 1))
    assert fit_background(np.zeros((8, 8, 1)), "none") is None


def test_fit_image_with_a_plane_background(tmp_path):
    """End to end (float image): mapping.json states the background, the LR values the network
    saw are flat, the result is the texture on the illumination, on the finer grid."""
    image, _ = _textured(16, 16)
    np.save(tmp_path / "tilted.npy", image[..., 0].astype(np.float32))
    result = fit_image(tmp_path / "tilted.npy", out_dir=tmp_path / "run", scale=2, patch=8,
                       epochs=1, batch_size=8, uncertainty=False, jit_compile=False,
                       progress=False, background="plane", noise="none")
    mapping = json.loads((tmp_path / "run" / "mapping.json").read_text())
    assert mapping["background"]["model"] == "plane"
    assert json.loads((tmp_path / "run" / "fit.json").read_text())["background"] == "plane"
    lr = np.load(tmp_path / "run" / "lr_values.npy")
    assert np.abs(_plane_fit(lr) * mapping["scale"]).max() < 0.002
    sr = np.load(result["sr"])
    np.testing.assert_allclose(_plane_fit(sr), np.array([0.02, -0.03]) / 2, rtol=0.15)
    raw, _ = read_input(tmp_path / "tilted.npy")
    np.testing.assert_allclose(sr.reshape(16, 2, 16, 2).mean(axis=(1, 3)), raw[..., 0],
                               atol=0.15)
