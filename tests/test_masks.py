"""Masks: cells outside the magnet, found, read, checked, mapped to the HR grid, left out of the
optics estimates, of training, of the misfit and of the scores, and holes in the results
(fit-image and upscale)."""

import json

import h5py
import numpy as np
import pytest
from PIL import Image

from spinsr_tf import cli
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.mask import (check_mask, erode, fill_holes, hr_mask, hr_nearest, inside,
                                 largest_rectangle, mask_from_values, mask_record, read_mask)
from spinsr_tf.evaluation.metrics import corr, mse, psnr, score
from spinsr_tf.inference.fit_image import MIN_INSIDE_PATCHES, fit_image, training_patches

FAST = dict(epochs=1, batch_size=8, jit_compile=False, progress=False, uncertainty=False)


def _film(h=24, w=24, seed=0):
    """Smooth unit spins (stripes turning in the x-z plane) with a square hole and NaN cells."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    phi = 2 * np.pi * (x + 0.6 * y) / 9.0 + np.random.default_rng(seed).uniform(0, 6)
    m = np.stack([np.sin(phi), 0.2 * np.cos(0.3 * y), np.cos(phi)], -1)
    m /= np.linalg.norm(m, axis=-1, keepdims=True)
    magnet = np.ones((h, w), bool)
    magnet[2:6, 15:20] = False
    m[~magnet] = 0.0
    m[3, 16] = np.nan           # a hole some tool wrote as NaN
    magnet[h - 1, 0] = False
    m[h - 1, 0] = [np.nan, 0.0, 0.0]
    return m.astype(np.float32), magnet


# --- the mask module -------------------------------------------------------------------------

def test_mask_from_values_zero_and_nan_vectors_are_holes():
    m, magnet = _film()
    np.testing.assert_array_equal(mask_from_values(m), magnet)
    grey = np.zeros((4, 5, 1))
    grey[1, 2, 0] = np.nan
    expect = np.ones((4, 5), bool)
    expect[1, 2] = False
    np.testing.assert_array_equal(mask_from_values(grey), expect)  # a grey 0 is a value


def _brute_lr_of(i, n, d):
    """The LR pixel an HR index belongs to: the camera pixel whose block holds it, or the
    nearest point sample (positions k·f)."""
    if d.pixel == "integrate":
        return i // d.factor
    return int(np.argmin([abs(i - k * d.factor) - 1e-9 * k for k in range(n)]))


@pytest.mark.parametrize("pixel", ["integrate", "sample"])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_hr_mask_against_brute_force(pixel, factor):
    d = Degradation(factor, pixel=pixel)
    lr = np.random.default_rng(factor).random((5, 7)) > 0.3
    out = hr_mask(lr, d)
    assert out.shape == (5 * factor, 7 * factor)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            assert out[i, j] == lr[_brute_lr_of(i, 5, d), _brute_lr_of(j, 7, d)]
    values = np.random.default_rng(1).normal(size=(2, 5, 7, 3))
    hr = hr_nearest(values, d)
    assert hr.shape == (2, 5 * factor, 7 * factor, 3)
    np.testing.assert_array_equal(hr[1, 3 * factor, 2 * factor], values[1, 3, 2])
    np.testing.assert_array_equal(hr_mask(np.stack([lr, ~lr]), d)[1], ~out)


def test_fill_holes_takes_the_nearest_magnet_cell():
    rng = np.random.default_rng(3)
    mask = rng.random((9, 11)) > 0.4
    x = rng.normal(size=(9, 11, 2))
    out = fill_holes(x, mask)
    np.testing.assert_array_equal(out[mask], x[mask])
    cells = np.argwhere(mask)
    for r, c in np.argwhere(~mask):
        dist = np.hypot(*(cells - (r, c)).T)
        nearest = cells[dist == dist.min()]
        assert any(np.array_equal(out[r, c], x[a, b]) for a, b in nearest)


def test_inside_and_largest_rectangle_against_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(30):
        mask = rng.random((7, 9)) > 0.25
        corners = np.array([(r, c) for r in range(7 - 2) for c in range(9 - 2)])
        np.testing.assert_array_equal(inside(mask, corners, 3),
                                      [mask[r:r + 3, c:c + 3].all() for r, c in corners])
        r0, r1, c0, c1 = largest_rectangle(mask)
        best = max(((b - a) * (d - c) for a in range(7) for b in range(a + 1, 8)
                    for c in range(9) for d in range(c + 1, 10) if mask[a:b, c:d].all()),
                   default=0)
        assert (r1 - r0) * (c1 - c0) == best and mask[r0:r1, c0:c1].all()


def test_erode_keeps_cells_away_from_holes_not_from_the_border():
    mask = np.ones((9, 9), bool)
    mask[4, 4] = False
    out = erode(mask, 1)
    assert out[0, 0] and out[8, 8] and out[4, 6] and not out[3, 3] and not out[5, 4]
    assert out.sum() == 81 - 9


def test_read_mask_files_and_their_refusals(tmp_path):
    m = np.random.default_rng(0).random((6, 8)) > 0.5
    Image.fromarray((m * 255).astype(np.uint8)).save(tmp_path / "m.png")
    Image.fromarray((m * 255).astype(np.uint8)).save(tmp_path / "m.tif")
    np.save(tmp_path / "m.npy", m.astype(np.int64))
    np.save(tmp_path / "b.npy", m)
    rgb = np.repeat((m * 255).astype(np.uint8)[..., None], 3, -1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    for name in ("m.png", "m.tif", "m.npy", "b.npy", "rgb.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name, (6, 8)), m)
    with pytest.raises(UserError, match=r"has shape \(6, 8\); the image is 8x6"):
        read_mask(tmp_path / "m.png", (8, 6))
    np.save(tmp_path / "grey.npy", np.where(m, 128, 0))
    with pytest.raises(UserError, match="not boolean-like: values 0, 128"):
        read_mask(tmp_path / "grey.npy", (6, 8))
    with pytest.raises(UserError, match="must be one of"):
        read_mask(tmp_path / "m.txt", (6, 8))
    with pytest.raises(UserError, match="does not exist"):
        read_mask(tmp_path / "none.png", (6, 8))
    with pytest.raises(UserError, match="leaves 0 of 48 cells"):
        check_mask(np.zeros((6, 8), bool), (6, 8), 16)
    assert mask_record(m, "file") == {"source": "file", "masked_cells": int((~m).sum()),
                                      "cells": 48}


# --- scores ----------------------------------------------------------------------------------

def test_scores_on_the_magnet_equal_scores_of_its_cells():
    rng = np.random.default_rng(5)
    truth, pred = rng.normal(size=(2, 3, 6, 7, 3))
    mask = rng.random((6, 7)) > 0.3
    for metric in (mse, corr, psnr):
        masked = metric(pred, truth, mask=mask)
        cells = metric(pred[:, mask][:, None], truth[:, mask][:, None])  # (N, 1, K, C)
        np.testing.assert_allclose(masked, cells)
        np.testing.assert_allclose(metric(pred, truth, mask=np.ones((6, 7), bool)),
                                   metric(pred, truth))
    garbage = pred.copy()
    garbage[:, ~mask] = 100.0          # whatever the holes hold does not count
    assert score(garbage, truth, mask=mask) == score(pred, truth, mask=mask)
    per_map = np.stack([mask, ~mask, mask])
    assert mse(pred, truth, mask=per_map)[1] == pytest.approx(
        np.square(pred[1] - truth[1]).sum(-1)[~mask].mean())
    with pytest.raises(UserError, match="no site in image"):
        mse(pred, truth, mask=np.stack([mask, np.zeros_like(mask), mask]))
    with pytest.raises(UserError, match="mask must have shape"):
        mse(pred, truth, mask=mask[:5])
    with pytest.raises(UserError, match="boolean"):
        psnr(pred, truth, mask=mask.astype(int))


# --- optics ----------------------------------------------------------------------------------

def _holed(hr, f, sigma, noise, centre, radius):
    """``hr`` with a disc and an edge notch cut out on the LR grid, degraded by camera pixels;
    the LR cells in holes 0 (as a simulation on the LR grid stores them)."""
    from test_optics import camera

    n = hr.shape[0] // f
    yy, xx = np.mgrid[0:n, 0:n]
    magnet = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) >= radius ** 2
    magnet[n // 3:n // 2, :4] = False
    d = Degradation(f, pixel="integrate", padding="reflect")
    y = camera(hr * hr_mask(magnet, d)[..., None], f, sigma, noise)
    y[~magnet] = 0.0
    return y, magnet, d


def test_psf_estimate_ignores_the_holes():
    """With the mask the PSF estimate is that of the same film without holes; without it the
    zero vectors read as blur (control)."""
    from test_optics import camera, domains
    from spinsr_tf.inference.optics import estimate_psf_sigma

    hr, sigma, noise = domains(128), 1.5, 0.05
    y, magnet, d = _holed(hr, 4, sigma, noise, (14, 18), 6)
    whole = estimate_psf_sigma(camera(hr, 4, sigma, noise), d, noise).value
    masked = estimate_psf_sigma(y, d, noise, mask=magnet).value
    blind = estimate_psf_sigma(y, d, noise).value
    assert masked == pytest.approx(whole, rel=0.1) and masked == pytest.approx(sigma, rel=0.2)
    assert abs(blind - sigma) > 0.3 * sigma


def test_noise_is_estimated_on_the_largest_magnet_rectangle():
    from test_optics import domains
    from spinsr_tf.inference.optics import choose_optics

    y, magnet, d = _holed(domains(256), 4, 1.5, 0.05, (20, 40), 8)
    chosen = choose_optics(y, d, mask=magnet, estimate_sigma=False)
    r0, r1, c0, c1 = largest_rectangle(magnet)
    assert min(r1 - r0, c1 - c0) >= 16 and magnet[r0:r1, c0:c1].all()
    assert chosen["how"]["noise"]["region"] == (f"on the largest rectangle of magnet cells, "
                                                f"{r1 - r0}x{c1 - c0}")
    assert chosen["noise_std"] == pytest.approx(0.05, rel=0.15)


# --- fit-image -------------------------------------------------------------------------------

def test_training_patches_lie_on_the_magnet():
    image = np.random.default_rng(0).normal(size=(24, 24, 3)).astype(np.float32)
    _, magnet = _film()
    patches, corners, how = training_patches(image, magnet, 8, 2)
    assert len(patches) >= MIN_INSIDE_PATCHES and how["patches"] == len(patches)
    for p, (r, c) in zip(patches, corners):
        assert magnet[r:r + 8, c:c + 8].all()
        np.testing.assert_array_equal(p, image[r:r + 8, c:c + 8])
    sparse = np.zeros((24, 24), bool)   # a 9x9 island: none inside at stride 8, 4 at stride 1
    sparse[3:12, 3:12] = True
    patches, _, how = training_patches(image, sparse, 8, 8)
    assert len(patches) == 9 and how["rule"].startswith("every patch, holes filled")
    sparse[3:20, 3:20] = True
    _, corners, how = training_patches(image, sparse, 8, 8)
    assert "stride 1" in how["rule"] and len(corners) == 100
    assert training_patches(image, None, 8, 8)[2]["rule"] == "every patch"


def test_fit_image_keeps_holes_and_never_feeds_nan(tmp_path, monkeypatch):
    """Zero and NaN vectors: holes in sr and bicubic, the network never sees NaN, the optics
    and the misfit are taken on the magnet, and the record says how many cells and why."""
    import spinsr_tf.inference.fit_image as fit

    m, magnet = _film()
    np.save(tmp_path / "film.npy", m)
    seen = []
    real = fit.super_resolve

    def watch(model, lr, **kwargs):
        seen.append(np.isfinite(lr).all())
        return real(model, lr, **kwargs)

    monkeypatch.setattr(fit, "super_resolve", watch)
    out = fit_image(tmp_path / "film.npy", scale=2, patch=8, stride=2,
                    out_dir=tmp_path / "run", **FAST)
    assert seen == [True]
    d = Degradation(2, pixel="integrate")
    holes = ~hr_mask(magnet, d)
    for name in ("sr", "bicubic"):
        result = np.load(out[name])
        assert np.isfinite(result).all()
        np.testing.assert_array_equal(result[holes], 0.0)
        norms = np.linalg.norm(result[~holes], axis=-1)
        assert norms.min() > 0.5
    record = json.loads((tmp_path / "run" / "degradation.json").read_text())["mask"]
    assert record["masked_cells"] == int((~magnet).sum()) and record["cells"] == 24 * 24
    assert record["source"].startswith("auto") and "entirely" in record["training"]["rule"]
    with h5py.File(tmp_path / "run" / "patches.h5") as f:
        corners, patches = f["corners"][:], f["lr"][:]
    assert all(magnet[r:r + 8, c:c + 8].all() for r, c in corners)
    assert np.isfinite(patches).all()
    fit_record = json.loads((tmp_path / "run" / "fit.json").read_text())
    assert fit_record["mask"] == "auto" and fit_record["masked_cells"] == record["masked_cells"]
    # the misfit is over the magnet: the holes of the input do not count against the result
    lr = np.load(tmp_path / "run" / "lr_values.npy")
    again = Degradation(2, out["degradation"]["sigma"], out["degradation"]["kernel_size"],
                        "integrate", "reflect").apply(np.load(tmp_path / "run" /
                                                              "sr_values.npy")[None])[0]
    assert out["lr_mse"]["sr"] == pytest.approx(
        np.square(again - lr).sum(-1)[magnet].mean(), rel=1e-5)


def test_fit_image_scalar_mask_file_keeps_the_input_there(tmp_path, main):
    """A grey image with a burnt-in label: the mask file leaves it out, the result holds the
    input's own grey levels there."""
    y, x = np.mgrid[0:16, 0:16]
    grey = (0.5 + 0.4 * np.sin(2 * np.pi * (x + 0.7 * y) / 6.0)).astype(np.float32)
    grey[12:, 10:] = 7.0                      # a label, far outside the texture's range
    np.save(tmp_path / "grey.npy", grey)
    magnet = np.ones((16, 16), bool)
    magnet[12:, 10:] = False
    Image.fromarray(magnet.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    run = tmp_path / "run"
    code = main(["fit-image", str(tmp_path / "grey.npy"), "--scale", "2", "--patch", "8",
                 "--out", str(run), "--mask", str(tmp_path / "mask.png"), "--epochs", "1",
                 "--no-jit", "--quiet", "--no-uncertainty", "--sigma", "1"])
    assert code == 0
    sr = np.load(run / "sr.npy")
    holes = ~hr_mask(magnet, Degradation(2, pixel="integrate"))
    np.testing.assert_allclose(sr[holes], 7.0, rtol=1e-6)
    assert sr[~holes].max() < 2.0             # the label did not set the value mapping
    mapping = json.loads((run / "mapping.json").read_text())
    assert mapping["offset"] + mapping["scale"] < 1.0
    record = json.loads((run / "degradation.json").read_text())["mask"]
    assert record["masked_cells"] == 24 and record["source"].startswith("file ")


@pytest.fixture
def main(monkeypatch):
    if "fit_image" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "fit_image"))
    return cli.main


@pytest.mark.parametrize("mask,message", [
    ("wrong.npy", "has shape (5, 5); the image is 24x24"),
    ("empty.npy", "leaves 0 of 576 cells on the magnet; at least 64 are needed"),
    ("grey.png", "is not boolean-like: values 7 (expected 0/1 or 0/255)"),
    ("missing.png", "mask file"),
    ("mask.txt", "mask must be 'auto', 'none' or a"),
    ("none", "NaN or infinite cells; with mask 'none'"),
])
def test_fit_image_mask_refusals(tmp_path, capsys, main, mask, message):
    m, _ = _film()
    np.save(tmp_path / "film.npy", m)
    np.save(tmp_path / "wrong.npy", np.ones((5, 5), bool))
    np.save(tmp_path / "empty.npy", np.zeros((24, 24), np.uint8))
    Image.fromarray(np.full((24, 24), 7, np.uint8)).save(tmp_path / "grey.png")
    (tmp_path / "mask.txt").write_text("1")
    run = tmp_path / "run"
    argv = mask if mask == "none" else str(tmp_path / mask)
    code = main(["fit-image", str(tmp_path / "film.npy"), "--scale", "2", "--patch", "8",
                 "--out", str(run), "--mask", argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not run.exists()


# --- upscale ---------------------------------------------------------------------------------

def test_upscale_keeps_holes(tmp_path, capsys):
    m, magnet = _film()
    np.save(tmp_path / "film.npy", np.nan_to_num(m))   # NaN holes: tests/test_grey_mask.py
    out = tmp_path / "sr.npy"
    code = cli.main(["upscale", str(tmp_path / "film.npy"), "--model", "pretrained:type-I-x4",
                     "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    sr = np.load(out)
    holes = ~hr_mask(magnet, Degradation(4, pixel="sample"))
    assert sr.shape == (96, 96, 3) and np.isfinite(sr).all()
    np.testing.assert_array_equal(sr[holes], 0.0)
    assert np.linalg.norm(sr[~holes], axis=-1).min() > 0.5
    assert "come back as zero vectors" in capsys.readouterr().out
