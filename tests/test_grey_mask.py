"""The auto mask of grey micrographs (a burnt-in scale bar and label, saturation, stuck pixels,
NaN; :func:`spinsr_tf.data.mask.mask_from_grey`) through fit-image, and NaN holes through
upscale."""

import json

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation, gaussian_filter, label

from spinsr_tf import cli
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.io import from_intensity
from spinsr_tf.data.mask import GREY_MIN_REGION, hr_mask, mask_from_grey
from spinsr_tf.experiments.microscope import kerr_image, standin
from spinsr_tf.inference.fit_image import FitConfig, FitRun, estimate_optics, fit_image, read

EIGHT = np.ones((3, 3), bool)
#: Camera of the stand-ins: ×4 camera pixels, PSF σ 3 HR px (the Kerr instrument's).
OPTICS = Degradation(4, 3.0, None, "integrate", "periodic")
PHOTONS = 1000.0


def _labyrinth(side=288, seed=1, width=3.0):
    """A smooth random two-domain texture Sz in [-1, 1] (a Kerr image's subject), HR."""
    f = gaussian_filter(np.random.default_rng(seed).normal(size=(side, side)), width, mode="wrap")
    return np.tanh(3 * f / f.std())


def _kerr(bits=8, photons=PHOTONS, black_level=0.1, seed=1, side=288):
    """A Kerr-like camera image (64x64 LR at the default side): optics, shot noise, bits."""
    return kerr_image(_labyrinth(side, seed), OPTICS, photons=photons, bits=bits, seed=seed,
                      black_level=black_level, crop=4)[0]


def _burn(image, value):
    """A scale bar and three glyphs of text burnt in at ``value`` near the bottom-right
    corner, their edges antialiased (half-way to ``value``); returns the image and the pure
    pixels."""
    out = image.copy()
    burnt = np.zeros(image.shape, bool)
    burnt[-6:-3, -26:-4] = True                       # the bar, 3 x 22 pixels
    for c0 in (-24, -18, -12):                        # glyphs: a stem and a top stroke
        burnt[-13:-8, c0:c0 + 2] = True
        burnt[-13, c0:c0 + 4] = True
    edge = binary_dilation(burnt, EIGHT) & ~burnt
    out[edge] = ((out[edge].astype(np.float64) + float(value)) / 2).astype(image.dtype)
    out[burnt] = value
    return out, burnt


def _grey_mask(image):
    """The auto mask of an image as fit-image reads it (integer levels mapped onto [-1, 1])."""
    if np.issubdtype(image.dtype, np.floating):
        return mask_from_grey(image)
    return mask_from_grey(from_intensity(image), image.dtype)


# --- the detector ----------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("white", [True, False])
@pytest.mark.parametrize("photons", [PHOTONS, None])
def test_burnt_in_bar_and_text_are_masked_and_nothing_else(bits, white, photons):
    clean = _kerr(bits, photons)
    value = np.iinfo(clean.dtype).max if white else 0
    image, burnt = _burn(clean, value)
    mask, note = _grey_mask(image)
    bar = np.zeros(image.shape, bool)
    bar[-6:-3, -26:-4] = True
    assert (~mask[bar]).mean() >= 0.95
    assert (~mask[burnt]).all()
    # nothing beyond the pure pixels' 1-pixel border (which holds the antialiased edges)
    assert not (~mask & ~binary_dilation(burnt, EIGHT)).any()
    assert (~mask[binary_dilation(burnt, EIGHT)]).all()
    assert f"{int(burnt.sum())} at {value}" in note and "saturated/burnt-in" in note


def test_label_at_a_float_image_own_maximum_is_masked():
    grey = _kerr(16).astype(np.float32) / 65535 * 3.0      # e.g. a processed export
    image, burnt = _burn(grey, np.float32(5.0))
    mask, note = mask_from_grey(image[..., None])
    assert (~mask[burnt]).all()
    assert not (~mask & ~binary_dilation(burnt, EIGHT)).any()
    assert "at 5" in note


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("black_level,photons", [(0.0, PHOTONS), (0.2, 300.0), (0.1, None),
                                                 (0.2, None)])
def test_clean_kerr_like_images_keep_every_cell(bits, black_level, photons):
    """Shot noise clips a few scattered pixels at the dtype's limit, a noise-free image nears
    its extremes gradually: neither is a label, saturation or a stuck pixel."""
    for seed in range(3):
        image = _kerr(bits, photons, black_level, seed)
        mask, note = _grey_mask(image)
        assert mask.all(), (seed, note)
        assert note.startswith("auto: none found")


def test_the_package_kerr_standin_keeps_every_cell(tmp_path):
    for bits in (8, 16):
        made = standin("kerr", size=128, factor=4, out_dir=tmp_path, progress=False,
                       instrument={"bits": bits})
        image = np.asarray(Image.open(made["image"]))
        assert image.dtype == np.dtype(f"uint{bits}")
        assert _grey_mask(image)[0].all()


@pytest.mark.parametrize("levels,dtype", [((60, 200), np.uint8), ((0.2, 0.8), np.float32),
                                          ((1000, 50000), np.uint16)])
@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.5])
@pytest.mark.parametrize("blur", [0.0, 1.0])
def test_two_level_domain_images_are_not_masked(levels, dtype, fraction, blur):
    """Large plateaus at the image's own extremes are its domains when the levels are not the
    dtype's limits."""
    f = gaussian_filter(np.random.default_rng(3).normal(size=(64, 64)), 3, mode="wrap")
    two = np.where(f > np.quantile(f, 1 - fraction), levels[1], levels[0]).astype(np.float64)
    two = gaussian_filter(two, blur) if blur else two
    image = two.astype(dtype) if dtype == np.float32 else np.rint(two).astype(dtype)
    mask, note = _grey_mask(image)
    assert mask.all(), note


def test_a_two_level_image_at_the_dtype_limits_is_its_own_levels():
    f = gaussian_filter(np.random.default_rng(3).normal(size=(64, 64)), 3, mode="wrap")
    image = np.where(f > 0, 255, 0).astype(np.uint8)
    mask, note = _grey_mask(image)
    assert mask.all() and "its own levels" in note


def test_stuck_pixels_are_masked_alone():
    image = _kerr(8)
    smooth = gaussian_filter(image.astype(np.float64), 2)
    inner = (slice(4, -4), slice(4, -4))
    bright = np.unravel_index(np.argmax(smooth[inner]), smooth[inner].shape)
    dark = np.unravel_index(np.argmin(smooth[inner]), smooth[inner].shape)
    bright, dark = (bright[0] + 4, bright[1] + 4), (dark[0] + 4, dark[1] + 4)
    image[bright] = 0          # a dead pixel in a bright domain
    image[dark] = 255          # a hot pixel in a dark domain
    mask, note = _grey_mask(image)
    expect = np.ones(image.shape, bool)
    expect[bright] = expect[dark] = False
    np.testing.assert_array_equal(mask, expect)
    assert "2 stuck pixel(s)" in note


def test_clipping_below_the_dtype_limit_is_masked():
    """A 12-bit camera in a 16-bit file: the bright tail piles up on 4095."""
    image = _kerr(16, photons=300.0, black_level=0.2)
    image = np.minimum(np.rint(image / 65535 * 4095 * 1.15), 4095).astype(np.uint16)
    mask, note = _grey_mask(image)
    clipped = image == 4095
    labels, n = label(binary_dilation(clipped, EIGHT), structure=EIGHT)
    sizes = np.bincount(np.where(clipped, labels, 0).ravel(), minlength=n + 1)
    patches = clipped & (sizes[labels] >= GREY_MIN_REGION)   # scattered single pixels stay
    assert patches.sum() > 0.5 * clipped.sum()
    assert (~mask[patches]).all() and "at 4095" in note
    assert not (~mask & ~binary_dilation(patches, EIGHT)).any()


def test_nan_cells_of_a_grey_image_are_holes():
    grey = _kerr(16).astype(np.float32)
    grey[5:7, 9] = np.nan
    mask, note = mask_from_grey(grey)
    expect = np.ones(grey.shape, bool)
    expect[5:7, 9] = False
    np.testing.assert_array_equal(mask, expect)
    assert "2 NaN cell(s)" in note


# --- fit-image -------------------------------------------------------------------------------

def _poisson_slope(config):
    """The Poisson part ``a`` of the noise fit-image estimates, in the camera's terms:
    Var[DN] = a·DN + b (the stand-in's truth: a = 255 / photons)."""
    run = FitRun(config)
    read(config, run)
    estimate_optics(config, run)
    # network value x = (v - offset) / scale, v = 2 DN / 255 - 1: Var[DN] = (127.5 scale)² ·
    # (std² + slope·x), whose part linear in DN is 127.5 · scale · slope
    return 127.5 * run.mapping["scale"] * run.optics["noise_slope"], run


def test_fit_image_leaves_a_scale_bar_out(tmp_path):
    """The bar and its text are holes: the result holds the input's own grey levels there, and
    the noise estimate is not fooled by the flat bar and the sharp text."""
    image, burnt = _burn(_kerr(8), 255)
    Image.fromarray(image).save(tmp_path / "kerr.png")
    truth = 255 / PHOTONS
    base = {"scale": 4, "patch": 8, "stride": 4, "epochs": 1, "batch_size": 8,
            "jit_compile": False, "progress": False, "uncertainty": False}
    slope = {m: _poisson_slope(FitConfig(tmp_path / "kerr.png", out_dir=tmp_path / f"o_{m}",
                                         mask=m, **base))[0] for m in ("auto", "none")}
    assert abs(slope["auto"] - truth) < 0.15 * truth
    assert abs(slope["auto"] - truth) < abs(slope["none"] - truth)

    out = fit_image(tmp_path / "kerr.png", out_dir=tmp_path / "run", **base)
    magnet = _grey_mask(image)[0]
    assert not magnet[burnt].any()
    holes = ~hr_mask(magnet, Degradation(4, pixel="integrate"))
    sr = np.asarray(Image.open(out["sr"]))
    given = np.repeat(np.repeat(image, 4, 0), 4, 1)
    np.testing.assert_array_equal(sr[holes], given[holes])
    record = json.loads((tmp_path / "run" / "degradation.json").read_text())["mask"]
    assert record["masked_cells"] == int((~magnet).sum())
    assert record["source"].startswith("auto: ") and "at 255" in record["source"]


def test_fit_image_takes_nan_grey_levels_as_holes(tmp_path):
    y, x = np.mgrid[0:16, 0:16]
    grey = (0.5 + 0.4 * np.sin(2 * np.pi * (x + 0.7 * y) / 6.0)).astype(np.float32)
    grey[2, 3] = grey[9, 12] = np.nan
    np.save(tmp_path / "grey.npy", grey)
    out = fit_image(tmp_path / "grey.npy", scale=2, patch=8, out_dir=tmp_path / "run", epochs=1,
                    batch_size=8, jit_compile=False, progress=False, uncertainty=False, sigma=1)
    sr = np.load(out["sr"])
    holes = ~hr_mask(np.isfinite(grey), Degradation(2, pixel="integrate"))
    assert np.isfinite(sr).all() and holes.sum() == 8
    np.testing.assert_allclose(sr[holes], 0.0, atol=1e-6)    # a NaN hole comes back as 0
    assert sr[~holes].min() > 0.0
    assert "2 NaN cell(s)" in out["mask"]["source"] and out["mask"]["masked_cells"] == 2


# --- upscale: NaN holes ----------------------------------------------------------------------

def _spins(n=2, side=24, seed=0):
    """Smooth unit spin maps (N, side, side, 3), float32."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    maps = []
    for _ in range(n):
        phi = 2 * np.pi * (x + 0.6 * y) / 9.0 + rng.uniform(0, 6)
        m = np.stack([np.sin(phi), 0.2 * np.cos(0.3 * y), np.cos(phi)], -1)
        maps.append(m / np.linalg.norm(m, axis=-1, keepdims=True))
    return np.asarray(maps, np.float32)


def test_upscale_takes_nan_vectors_as_holes(tmp_path, capsys):
    maps = _spins()
    holes = np.zeros(maps.shape[:3], bool)
    holes[0, 3:7, 10:15] = True
    holes[1, -1, 0] = True
    nan = maps.copy()
    nan[holes] = np.nan
    nan[0, 3, 10] = [np.nan, 0.0, 0.0]       # a partly NaN vector is a hole too
    zero = np.where(holes[..., None], 0.0, maps).astype(np.float32)
    results = {}
    for name, values in (("nan", nan), ("zero", zero)):
        np.save(tmp_path / f"{name}.npy", values)
        code = cli.main(["upscale", str(tmp_path / f"{name}.npy"), "--model",
                         "pretrained:type-I-x4", "--out", str(tmp_path / f"{name}_sr.npy")])
        assert code == 0, capsys.readouterr().err
        results[name] = np.load(tmp_path / f"{name}_sr.npy")
    out = capsys.readouterr().out
    assert f"holes: {int(holes.sum())} LR cells" in out and "zero or NaN vectors" in out
    hr_holes = ~hr_mask(~holes, Degradation(4, pixel="sample"))
    sr = results["nan"]
    assert sr.shape == (2, 96, 96, 3) and np.isfinite(sr).all()
    np.testing.assert_array_equal(sr[hr_holes], 0.0)
    assert np.linalg.norm(sr[~hr_holes], axis=-1).min() > 0.5
    np.testing.assert_array_equal(sr, results["zero"])


def test_upscale_takes_nan_grey_levels_as_holes(tmp_path, capsys):
    from spinsr_tf.nn.network import build_sr_model

    model = build_sr_model(Degradation(2, 1.0, None, "integrate", "reflect"), channels=1)
    model.save(tmp_path / "model.keras")
    grey = _kerr(16).astype(np.float32)[:32, :32] / 65535
    holes = np.zeros(grey.shape, bool)
    holes[4:6, 20:25] = True
    nan = np.where(holes, np.nan, grey).astype(np.float32)
    np.save(tmp_path / "grey.npy", nan)
    code = cli.main(["upscale", str(tmp_path / "grey.npy"), "--model",
                     str(tmp_path / "model.keras"), "--out", str(tmp_path / "sr.npy")])
    assert code == 0, capsys.readouterr().err
    assert "holes: 10 LR cells outside the magnet (NaN) come back as 0" in capsys.readouterr().out
    sr = np.load(tmp_path / "sr.npy")
    hr_holes = ~hr_mask(~holes, Degradation(2, pixel="integrate"))
    assert sr.shape == (64, 64) and np.isfinite(sr).all()
    np.testing.assert_array_equal(sr[hr_holes], 0.0)
    # elsewhere the result of the same map with its holes filled by their nearest cell
    from spinsr_tf.data.mask import fill_holes

    np.save(tmp_path / "filled.npy", fill_holes(nan[..., None], ~holes)[..., 0])
    assert cli.main(["upscale", str(tmp_path / "filled.npy"), "--model",
                     str(tmp_path / "model.keras"), "--out", str(tmp_path / "f.npy")]) == 0
    np.testing.assert_allclose(sr[~hr_holes], np.load(tmp_path / "f.npy")[~hr_holes],
                               rtol=1e-6, atol=1e-6)
