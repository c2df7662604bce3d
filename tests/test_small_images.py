"""Small fields of view: fit-image reduces the patch (and stride) of an image smaller than
one patch, says so and records it; the optics estimates fall back where the image is too
small for them; below the smallest image it refuses in one line."""

import json

import numpy as np
import pytest

from spinsr_tf import cli
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.inference.fit_image import fit_image
from spinsr_tf.inference.optics import NOISE_MIN_SIDE, choose_optics
from spinsr_tf.inference.tiling import MIN_IMAGE, MIN_PATCH, extract_patches, fit_patch


def _texture(h, w, channels=1, seed=0):
    """A smooth stripe texture with noise std 0.05, (h, w, channels) float32, channels 1 or 3."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * (x + 0.6 * y) / 5.0 + rng.uniform(0, 6)
    maps = [np.sin(phase), np.cos(phase), np.sin(0.5 * phase)][:channels]
    return (np.stack(maps, -1) + 0.05 * rng.normal(size=(h, w, channels))).astype(np.float32)


@pytest.mark.parametrize("shape,asked,expected", [
    ((40, 30), (16, 4), (16, 4, False)),      # fits: unchanged
    ((16, 16), (16, 4), (16, 4, False)),
    ((12, 20), (16, 4), (8, 2, True)),        # largest power of two that fits, stride scaled
    ((20, 12), (16, 8), (8, 4, True)),
    ((8, 8), (16, 4), (8, 2, True)),
    ((15, 9), (32, 4), (8, 1, True)),
    ((5, 7), (16, 4), (4, 1, True)),
])
def test_fit_patch_reduces_to_what_fits(shape, asked, expected):
    patch, stride, note = fit_patch(shape, *asked)
    assert (patch, stride, note is not None) == expected
    assert MIN_PATCH <= patch <= min(shape) and 1 <= stride <= patch
    if note:
        assert f"patch {patch} ({asked[0]} does not fit)" in note and f"stride {stride}" in note
    # the patches cover every pixel of the rectangular image
    _, corners = extract_patches(np.zeros((*shape, 1)), patch, stride)
    cover = np.zeros(shape, int)
    for r, c in corners:
        cover[r:r + patch, c:c + patch] += 1
    assert cover.min() >= 1


def test_small_images_are_not_noise_estimated_but_said():
    """Below NOISE_MIN_SIDE the patch estimator reads 0 on noisy images (and is sure of it):
    not estimated, said, and the PSF estimate that depends on it is not used."""
    geometry = Degradation(4, 1.0, pixel="integrate", padding="reflect")
    small = _texture(12, 20, 3)
    optics = choose_optics(small, geometry, "auto")
    assert optics["noise_kind"] == "none" and optics["noise_std"] == 0
    assert optics["how"]["noise"]["confident"] is False
    assert optics["sigma"] == 1.0 and optics["how"]["sigma"]["confident"] is False
    assert any("noise not estimated on 12x20" in w for w in optics["warnings"])
    big = _texture(NOISE_MIN_SIDE + 16, NOISE_MIN_SIDE + 16, 3)
    optics = choose_optics(big, geometry, "auto")
    assert optics["noise_kind"] == "gaussian" and 0.02 < optics["noise_std"] < 0.1
    given = choose_optics(small, geometry, 0.05)
    assert given["noise_kind"] == "gaussian" and given["noise_std"] == pytest.approx(0.05)


def test_12x20_image_goes_through_fit_image(tmp_path, capsys):
    np.save(tmp_path / "small.npy", _texture(12, 20)[..., 0])
    result = fit_image(tmp_path / "small.npy", out_dir=tmp_path / "run", scale=4, epochs=1,
                       batch_size=8, uncertainty=False, jit_compile=False, progress=False)
    err = capsys.readouterr().err
    assert "fit-image: image is 12x20 LR pixels: patch 8 (16 does not fit), stride 2" in err
    assert result["lr_shape"] == (12, 20, 1) and result["sr_shape"] == (48, 80, 1)
    assert np.load(result["sr"]).shape == (48, 80) == np.load(result["bicubic"]).shape
    assert np.all(np.isfinite(np.load(result["sr"])))
    record = json.loads((tmp_path / "run" / "fit.json").read_text())
    assert record["patch"] == 8 and record["stride"] == 2
    assert record["reduced"].startswith("patch 8 (16 does not fit)")
    assert result["n_patches"] == 3 * 7


@pytest.fixture
def main(monkeypatch):
    if "fit_image" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "fit_image"))
    return cli.main


def test_too_small_image_is_refused_in_one_line(tmp_path, capsys, main):
    side = MIN_IMAGE - 2
    np.save(tmp_path / "tiny.npy", _texture(side, side)[..., 0])
    run = tmp_path / "run"
    code = main(["fit-image", str(tmp_path / "tiny.npy"), "--scale", "4", "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"is {side}x{side} pixels; fit-image needs at least {MIN_IMAGE}x{MIN_IMAGE}" in err
    assert not run.exists()
