"""fit-image: patch coverage, tiled == one-shot inference, the value mapping, end-to-end runs
(8-bit PNG with resume, 16-bit and float TIFF, OVF, constant image) and every refusal
(exit 2, one stderr line, no run folder)."""

import json

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from spinsr_tf import cli
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.interpolation import upsample
from spinsr_tf.data.io import from_intensity, to_intensity
from spinsr_tf.data.ovf import read_ovf, write_ovf
from spinsr_tf.base.errors import UserError
from spinsr_tf.inference.fit_image import MAX_EPOCHS, STEP_BUDGET, default_epochs, fit_image
from spinsr_tf.inference.image_io import (from_network, read_input, to_network, value_mapping,
                                          write_like_input)
from spinsr_tf.inference.tiling import (extract_patches, patch_starts, receptive_margin,
                                        super_resolve, tile_windows)

FAST = dict(epochs=1, batch_size=8, jit_compile=False, progress=False)


def _stripes(h, w, period=5.0, seed=0):
    """A smooth labyrinth-like grey pattern in [0, 1]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    return 0.5 + 0.5 * np.sin(2 * np.pi * (x + 0.7 * y) / period + rng.uniform(0, 6))


# --- patches and tiles -----------------------------------------------------------------------

@pytest.mark.parametrize("n,patch,stride", [(16, 16, 8), (17, 8, 4), (30, 8, 3), (9, 4, 4),
                                            (100, 16, 16), (23, 7, 1)])
def test_patches_cover_every_pixel(n, patch, stride):
    starts = patch_starts(n, patch, stride)
    covered = np.zeros(n, int)
    for s in starts:
        covered[s:s + patch] += 1
    assert covered.min() >= 1 and starts[0] == 0 and starts[-1] + patch == n
    assert np.all(np.diff(starts) <= stride) and np.all(np.diff(starts) > 0)
    image = np.random.default_rng(n).normal(size=(n, n + 3, 2)).astype(np.float32)
    patches, corners = extract_patches(image, patch, stride)
    assert patches.shape[1:] == (patch, patch, 2)
    cover2d = np.zeros(image.shape[:2], int)
    for p, (r, c) in zip(patches, corners):
        np.testing.assert_array_equal(p, image[r:r + patch, c:c + patch])
        cover2d[r:r + patch, c:c + patch] += 1
    assert cover2d.min() >= 1


@pytest.mark.parametrize("shape", [(60, 60), (124, 124), (250, 90), (20, 20)])
def test_default_epochs_bound_the_training_steps(shape):
    """40 passes over the patches, or as many as fit in the step budget: the steps of the
    default never exceed the budget by more than one epoch's worth, and are the budget or all
    40 passes."""
    patch, stride, batch = 16, 4, 16
    n = len(extract_patches(np.zeros(shape + (1,)), patch, stride)[0])
    n_train = n - (max(1, n // 10) if n >= 10 else 0)
    steps = -(-n_train // batch)
    epochs = default_epochs(shape, patch, stride, batch)
    assert 1 <= epochs <= MAX_EPOCHS
    assert epochs * steps < STEP_BUDGET + steps
    assert epochs == MAX_EPOCHS or epochs * steps >= STEP_BUDGET


def test_tile_windows_hold_core_and_margin():
    for n, tile, margin in [(50, 8, 16), (10, 8, 16), (33, 5, 3), (64, 64, 16)]:
        wins = tile_windows(n, tile, margin)
        sizes = {w1 - w0 for _, _, w0, w1 in wins}
        assert sizes == {min(n, tile + 2 * margin)}
        assert wins[0][0] == 0 and wins[-1][1] == n
        for a, b, w0, w1 in wins:
            assert 0 <= w0 <= max(a - margin, 0) and min(b + margin, n) <= w1 <= n


def _random_model(scale, channels, seed):
    import keras

    from spinsr_tf.nn.network import build_sr_model

    keras.utils.set_random_seed(seed)
    model = build_sr_model(Degradation(scale, padding="reflect"), channels=channels,
                           output="unit", residual=True)
    conv = model.get_layer("sr_conv")  # zero-initialised: make the CNN path count
    rng = np.random.default_rng(seed)
    conv.set_weights([0.3 * rng.normal(size=w.shape).astype("float32")
                      for w in conv.get_weights()])
    return model


@pytest.mark.parametrize("channels", [1, 3])
def test_tiled_equals_one_shot(channels):
    model = _random_model(4, channels, seed=channels)
    lr = np.random.default_rng(1).uniform(-1, 1, size=(50, 45, channels)).astype(np.float32)
    whole = super_resolve(model, lr, tile=None)
    assert whole.shape == (200, 180, channels)
    assert receptive_margin(4) == 16
    # 7 x 6 tiles, each cut from a 42 x 42 window (10 + 2 x 16) of the 50 x 45 image
    tiled = super_resolve(model, lr, tile=10, batch_size=8)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # the margin matters: cropping too little changes pixels near the tile seams
    short = super_resolve(model, lr, tile=10, margin=2, batch_size=16)
    assert np.abs(short - whole).max() > 1e-3


# --- the value mapping -----------------------------------------------------------------------

def test_mapping_round_trip_8bit_and_constant():
    dn = np.random.default_rng(0).integers(40, 200, size=(20, 30, 1)).astype(np.uint8)
    v = from_intensity(dn)
    m = value_mapping(v, percentile=0.0)
    x = to_network(v, m)
    assert x.min() == pytest.approx(-1.0, abs=1e-6) and x.max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(to_intensity(from_network(x, m), "uint8"), dn)
    p = value_mapping(v, percentile=5.0)
    lo, hi = np.percentile(v, [5, 95])
    assert p["offset"] == pytest.approx((lo + hi) / 2)
    assert p["scale"] == pytest.approx((hi - lo) / 2)
    flat = value_mapping(np.full((8, 8, 1), 0.25, np.float32))
    assert flat["constant"] and flat["scale"] == 1.0
    np.testing.assert_array_equal(to_network(np.full((8, 8, 1), 0.25), flat), 0.0)
    vec = np.random.default_rng(1).normal(size=(10, 10, 3)) * 8e5
    vec[2, 3] = 0.0
    mv = value_mapping(vec)
    assert mv["offset"] == 0 and not mv["unit_vectors"]
    assert mv["scale"] == pytest.approx(np.median(np.linalg.norm(vec, axis=-1)[vec.any(-1)]))
    np.testing.assert_allclose(from_network(to_network(vec, mv), mv), vec, rtol=1e-5)
    mu = value_mapping(vec, unit_vectors=True)
    xu = to_network(vec, mu)
    norms = np.linalg.norm(xu, axis=-1)
    assert norms[2, 3] == 0 and np.allclose(np.delete(norms.ravel(), 23), 1.0, atol=1e-6)
    np.testing.assert_allclose(xu[0, 0], vec[0, 0] / np.linalg.norm(vec[0, 0]), rtol=1e-6)
    assert not value_mapping(v, unit_vectors=True)["unit_vectors"]  # scalars: ignored


def test_result_grey_levels_are_unclipped_unless_asked(tmp_path):
    """The default mapping spans min..max (nothing the input holds is beyond the network's
    ±1), and results go back through the inverted mapping without clipping; ``clip`` maps the
    1st–99th percentiles and cuts the result there."""
    v = np.random.default_rng(4).normal(size=(40, 40, 1))
    v[5, 5] = 9.0  # a bright bubble, above the 99th percentile
    info = {"format": "npy", "dtype": "float32", "intensity": False, "ovf": None, "ndim": 2,
            "pixel": None}
    m = value_mapping(v)
    assert m["percentile"] == 0 and to_network(v, m).max() == pytest.approx(1.0)
    x = to_network(v, m)
    got = np.load(write_like_input(tmp_path / "a", x, info, m, 1))
    assert got.shape == (40, 40)  # a 2D image stays 2D
    np.testing.assert_allclose(got, v[..., 0], rtol=1e-6, atol=1e-6)
    c = value_mapping(v, percentile=1.0)
    lo, hi = np.percentile(v, [1, 99])
    beyond = to_network(v, c)
    assert beyond.max() > 1.5  # the bubble sits beyond the network's range
    kept = np.load(write_like_input(tmp_path / "b", beyond, info, c, 1))
    np.testing.assert_allclose(kept.max(), 9.0, rtol=1e-6)  # unclipped: the inverse mapping
    cut = np.load(write_like_input(tmp_path / "c", beyond, info, c, 1, clip=True))
    assert cut.max() == pytest.approx(hi, rel=1e-6) and cut.min() == pytest.approx(lo, rel=1e-6)
    np.testing.assert_allclose(cut, np.clip(v[..., 0], lo, hi), rtol=1e-6, atol=1e-6)


# --- end to end ------------------------------------------------------------------------------

def test_png_8bit_run_and_resume(tmp_path):
    dn = np.rint(60 + 120 * _stripes(24, 20)).astype(np.uint8)
    Image.fromarray(dn).save(tmp_path / "kerr.png")
    run = tmp_path / "run"
    out = fit_image(tmp_path / "kerr.png", scale=2, patch=8, out_dir=run, stride=4, **FAST)
    assert out["n_patches"] == 5 * 4 and out["lr_shape"] == (24, 20, 1)
    mapping = json.loads((run / "mapping.json").read_text())
    lr = to_network(from_intensity(dn)[..., None], mapping)
    np.testing.assert_array_equal(np.load(run / "lr_values.npy"), lr)
    with h5py.File(run / "patches.h5") as f:
        assert f.attrs["factor"] == 2 and f.attrs["padding"] == "reflect"
        r, c = f["corners"][7]
        np.testing.assert_array_equal(f["lr"][7], lr[r:r + 8, c:c + 8])
    sr_values = np.load(run / "sr_values.npy")
    # the scalar output: the identity on [-1, 1], bounded by ±2 beyond (UnitVectors)
    assert sr_values.shape == (48, 40, 1) and np.all(np.abs(sr_values) < 2)
    sr_png = np.asarray(Image.open(run / "sr.png"))
    assert sr_png.dtype == np.uint8 and sr_png.shape == (48, 40)
    np.testing.assert_array_equal(sr_png, to_intensity(from_network(sr_values, mapping),
                                                       "uint8")[..., 0])
    # camera pixels by default: the baseline sits on the block centres
    bic = upsample(lr[None], 2, "bicubic", "aligned", padding="reflect", pixel="integrate")[0]
    np.testing.assert_allclose(np.load(run / "bicubic_values.npy"), bic, atol=1e-6)
    optics = json.loads((run / "degradation.json").read_text())
    assert optics["pixel"] == "integrate" and optics["sigma"] > 0
    assert {"sigma", "noise"} <= set(optics["how"]) and optics["noise_kind"] in (
        "poisson", "none")
    spread = np.load(run / "uncertainty.npy")
    assert spread.shape == (48, 40) and np.all(np.isfinite(spread)) and spread.max() > 0
    assert out["uncertainty"] == run / "uncertainty.npy"
    # the result is the mean over the point symmetries' members, not the plain output
    from spinsr_tf.inference.uncertainty import SpreadOptions, symmetry_spread
    from spinsr_tf.nn.network import load_sr_model

    model = load_sr_model(run / "train" / "model.keras", compile=False)
    # the model's own degradation (reflect, camera pixels) places the members
    mean, want = symmetry_spread(model, lr[None], batch_size=1)
    np.testing.assert_allclose(sr_values, mean[0], atol=1e-6)
    # the uncertainty is the default map: spread and error on the result degraded again
    np.testing.assert_allclose(spread, want[0], atol=1e-6)
    _, spread_only = symmetry_spread(model, lr[None], options=SpreadOptions(reference="mean"),
                                     batch_size=1)
    assert np.abs(spread - spread_only[0]).max() > 1e-3
    assert np.abs(sr_values - super_resolve(model, lr, tile=64)).max() > 1e-4
    assert (run / "uncertainty.png").stat().st_size > 0
    assert (run / "preview.png").stat().st_size > 0
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    # resume a finished run: patches and model reused, the same result
    mtime = (run / "patches.h5").stat().st_mtime_ns
    again = fit_image(tmp_path / "kerr.png", scale=2, patch=8, out_dir=run, stride=4,
                      resume=True, **FAST)
    assert again["history"]["epoch"] == [0]
    assert (run / "patches.h5").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(np.load(run / "sr_values.npy"), sr_values)
    with pytest.raises(UserError, match="holds a fit-image run"):
        fit_image(tmp_path / "kerr.png", scale=2, patch=8, out_dir=run, stride=4, **FAST)
    with pytest.raises(UserError, match=r"cannot resume .*stride=4 \(now 2\)"):
        fit_image(tmp_path / "kerr.png", scale=2, patch=8, out_dir=run, stride=2, resume=True,
                  **FAST)


def test_ovf_vectors_through_the_cli(tmp_path, capsys, main):
    """Magnetisation in A/m: mapped by Ms, trained as vectors, written back as OVF in A/m."""
    phi = np.pi * _stripes(16, 16, seed=3)
    m = np.stack([np.sin(phi), np.zeros_like(phi), np.cos(phi)], -1) * 5.8e5
    path = write_ovf(tmp_path / "m.ovf", m, cellsize=(4e-9, 4e-9, 1e-9), valueunit="A/m")
    run = tmp_path / "run"
    code = main(["fit-image", str(path), "--scale", "2", "--patch", "8", "--out", str(run),
                 "--epochs", "1", "--batch-size", "8", "--no-jit", "--quiet"])
    cap = capsys.readouterr()
    assert code == 0 and cap.out == ""
    mapping = json.loads((run / "mapping.json").read_text())
    assert mapping["scale"] == pytest.approx(5.8e5, rel=1e-6) and mapping["offset"] == 0
    # every LR vector has length Ms: not blurred as the assumed optics would blur it, so the
    # saturation estimate is said and not used (the median vector length is Ms here)
    assert mapping["kind"] == "vector_length" and not mapping["saturation"]["confident"]
    assert "saturation estimate" in cap.err and "looks less blurred" in cap.err
    # the default patch spacing is a quarter patch (docs/results.md, Fig. 7)
    assert json.loads((run / "fit.json").read_text())["stride"] == 2
    sr, meta = read_ovf(run / "sr.ovf", normalize=False)
    assert sr.shape == (32, 32, 3) and meta["valueunits"].startswith("A/m")
    np.testing.assert_allclose(meta["cellsize"], (2e-9, 2e-9, 1e-9))
    np.testing.assert_allclose(np.linalg.norm(sr, axis=-1), 5.8e5, rtol=1e-5)
    values = np.load(tmp_path / "run" / "sr_values.npy")
    np.testing.assert_allclose(sr, values * 5.8e5, rtol=1e-5)


def _tilted_stripes(bias: float, size: int = 16) -> np.ndarray:
    """Unit vectors turning along stripes, their mean Sz ``bias`` (a film in a field)."""
    phi = np.pi * _stripes(size, size, seed=3)
    m = np.stack([np.sin(phi), np.zeros_like(phi), np.cos(phi) + bias], -1)
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def test_magnetised_image_is_averaged_without_the_flip(tmp_path, capsys, main, monkeypatch):
    """Through the CLI: the group is said, recorded in degradation.json, and the symmetry
    term and the ensemble are made over it."""
    import spinsr_tf.inference.uncertainty as uncertainty

    groups, spread = [], uncertainty.symmetry_spread

    def recording(*args, **kwargs):
        groups.append(kwargs.get("group"))
        return spread(*args, **kwargs)

    monkeypatch.setattr(uncertainty, "symmetry_spread", recording)
    path = write_ovf(tmp_path / "m.ovf", _tilted_stripes(1.2) * 5.8e5,
                     cellsize=(4e-9, 4e-9, 1e-9), valueunit="A/m")
    run = tmp_path / "run"
    code = main(["fit-image", str(path), "--scale", "2", "--patch", "8", "--out", str(run),
                 "--epochs", "1", "--batch-size", "8", "--no-jit"])
    cap = capsys.readouterr()
    # a spin image of unknown chirality: no mirrors either (ensemble.NO_REFLECTIONS)
    assert code == 0 and ("symmetry group 'translations+rotations' for the symmetry term and "
                          "the result's mean (mean Sz +") in cap.out
    assert "no mirrors: the chirality is not known" in cap.out
    record = json.loads((run / "degradation.json").read_text())["ensemble"]
    assert record["group"] == "translations+rotations" and record["mean_sz"] > 0.1
    assert groups == ["translations+rotations"]
    train = json.loads((run / "train" / "config.json").read_text())
    assert [t["group"] for t in train["losses"] if t["term"] == "equivariance"] == [
        "translations+rotations"]


@pytest.mark.parametrize("noise", [0.0, 0.06])
def test_blurred_vectors_are_written_at_their_saturation(tmp_path, capsys, main, noise):
    """A film behind σ 2 and 4×4 camera pixels, in A/m: its LR vectors are shorter than Ms
    (median 0.72 Ms), so the result is written at the estimated saturation, not at the median
    length, and the network works in units of Ms, with noise or without."""
    from conftest import vector_labyrinth

    from spinsr_tf.data.degradation import kernel_size_for

    ms = 5.8e5
    lr = Degradation(4, 2.0, kernel_size_for(2.0), "integrate", "reflect").apply(
        vector_labyrinth(256)[None], dtype=np.float64)[0]
    lr = (lr + noise * np.random.default_rng(3).standard_normal(lr.shape)) * ms
    median = float(np.median(np.linalg.norm(lr, axis=-1)))
    assert median < 0.75 * ms
    path = write_ovf(tmp_path / "film.ovf", lr, cellsize=(4e-9, 4e-9, 1e-9), valueunit="A/m")
    run = tmp_path / "run"
    code = main(["fit-image", str(path), "--scale", "4", "--sigma", "2", "--patch", "16",
                 "--out", str(run), "--epochs", "1", "--batch-size", "32", "--no-jit"])
    cap = capsys.readouterr()
    assert code == 0 and "fit-image: saturation " in cap.out
    mapping = json.loads((run / "mapping.json").read_text())
    record = mapping["saturation"]
    assert record["confident"] and record["network_units"] == "saturation"
    assert record["noise_share"] == pytest.approx(noise * ms / mapping["result_scale"],
                                                  rel=0.3, abs=5e-3)
    assert mapping["result_scale"] == pytest.approx(ms, rel=0.03)
    assert mapping["median_length"] == pytest.approx(median, rel=1e-6)
    assert mapping["kind"] == "saturation"
    assert mapping["scale"] == mapping["result_scale"]
    assert json.loads((run / "fit.json").read_text())["value_scale"] == mapping["scale"]
    np.testing.assert_allclose(np.load(run / "lr_values.npy"), lr / mapping["scale"],
                               rtol=1e-5, atol=1e-6)
    sr, _ = read_ovf(run / "sr.ovf", normalize=False)
    assert np.median(np.linalg.norm(sr, axis=-1)) == pytest.approx(ms, rel=0.03)
    bicubic, _ = read_ovf(run / "bicubic.ovf", normalize=False)   # the input's own units
    assert np.median(np.linalg.norm(bicubic, axis=-1)) < 0.8 * ms
    train = json.loads((run / "train" / "config.json").read_text())
    terms = {t["term"]: t for t in train["losses"]}
    # the data term of one noisy image: recorrupted pairs of strength FIT_ALPHA (without
    # noise the estimate finds 0.001 Ms, and the pairs are the LR term to a few 1e-6)
    from spinsr_tf.inference.fit_image import FIT_ALPHA

    assert "lr_consistency" not in terms and terms["recorrupted"]["alpha"] == FIT_ALPHA
    # a labyrinth without a net Sz keeps the flip in its symmetry term (not the mirrors)
    assert terms["equivariance"]["group"] == "translations+rotations+flip"


def _write_input(tmp_path, kind):
    pattern = _stripes(16, 16, seed=3)
    if kind == "uint16_tif":
        path = tmp_path / "img.tif"
        tifffile.imwrite(path, np.rint(1000 + 30000 * pattern).astype(np.uint16))
    elif kind == "float_tif":
        path = tmp_path / "img.tif"
        tifffile.imwrite(path, (3.0 * pattern - 7.0).astype(np.float32))
    elif kind == "float_rgb_tif":
        path = tmp_path / "img.tif"
        tifffile.imwrite(path, np.stack([pattern, -pattern, 0.5 + 0 * pattern], -1)
                         .astype(np.float32), photometric="rgb")
    else:
        path = tmp_path / "flat.png"
        Image.fromarray(np.full((16, 16), 77, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("kind", ["uint16_tif", "float_tif", "float_rgb_tif", "constant_png"])
def test_inputs_map_and_write_back(tmp_path, kind):
    """Each input kind: read, mapped into the network's range, written back in its encoding."""
    raw, info = read_input(_write_input(tmp_path, kind))
    mapping = value_mapping(raw)
    x = to_network(raw, mapping)
    assert np.all(np.isfinite(x))
    up = upsample(x[None], 2, "bicubic", "aligned", padding="reflect")[0]
    path = write_like_input(tmp_path / "sr", up, info, mapping, 2)
    if kind == "uint16_tif":
        stored = tifffile.imread(path)
        assert path.name == "sr.tif" and stored.dtype == np.uint16 and stored.shape == (32, 32)
        assert np.abs(stored[::2, ::2].astype(int)
                      - tifffile.imread(tmp_path / "img.tif")).max() <= 1
    elif kind == "float_tif":
        stored = tifffile.imread(path)
        assert stored.dtype == np.float32 and -7.5 < stored.min() and stored.max() < -3.5
        np.testing.assert_allclose(stored[::2, ::2], tifffile.imread(tmp_path / "img.tif"),
                                   atol=1e-5)
    elif kind == "float_rgb_tif":
        assert raw.shape == (16, 16, 3) and mapping["kind"] == "vector_length"
        stored = tifffile.imread(path)
        np.testing.assert_allclose(stored[::2, ::2], tifffile.imread(tmp_path / "img.tif"),
                                   atol=1e-5)
    else:
        assert mapping["constant"] and np.all(x == 0)
        np.testing.assert_array_equal(np.asarray(Image.open(path)), 77)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["uint16_tif", "float_tif", "constant_png"])
def test_other_inputs_end_to_end(tmp_path, kind):
    if kind == "constant_png":  # nothing to estimate the optics from: one line, nothing written
        with pytest.raises(UserError, match="no contrast"):
            fit_image(_write_input(tmp_path, kind), scale=2, patch=8,
                      out_dir=tmp_path / "run", **FAST)
        assert not (tmp_path / "run").exists()
    optics = {"sigma": 1.0, "noise": "none"} if kind == "constant_png" else {}
    out = fit_image(_write_input(tmp_path, kind), scale=2, patch=8, out_dir=tmp_path / "run",
                    **optics, **FAST)
    assert np.all(np.isfinite(np.load(tmp_path / "run" / "sr_values.npy")))
    if kind == "constant_png":
        assert np.abs(np.asarray(Image.open(out["sr"])).astype(int) - 77).max() <= 1
    else:
        assert tifffile.imread(out["sr"]).shape == (32, 32)


def test_read_input_alpha_and_colour(tmp_path):
    grey = np.rint(255 * _stripes(12, 12)).astype(np.uint8)
    rgba = np.stack([grey, grey, grey, np.full_like(grey, 255)], -1)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "opaque.png")
    x, info = read_input(tmp_path / "opaque.png")
    assert x.shape == (12, 12, 1) and info["dtype"] == "uint8"
    np.testing.assert_array_equal(x[..., 0], from_intensity(grey))
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "transparent.png")
    with pytest.raises(UserError, match="transparent pixels"):
        read_input(tmp_path / "transparent.png")


# --- refusals through the command line -------------------------------------------------------

@pytest.fixture
def main(monkeypatch):
    if "fit_image" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "fit_image"))
    return cli.main


def _bad_inputs(tmp_path):
    d = tmp_path
    np.save(d / "small.npy", np.zeros((6, 9), np.float32))
    nan = np.zeros((16, 16), np.float32)
    nan[3, 4] = np.nan
    np.save(d / "nan.npy", nan)
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(d / "colour.png")
    rgba = np.full((16, 16, 4), 128, np.uint8)
    rgba[..., 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(d / "clear.png")
    np.save(d / "stack.npy", np.zeros((2, 16, 16, 1), np.float32))
    np.save(d / "two.npy", np.zeros((16, 16, 2), np.float32))
    (d / "bad.ovf").write_text("# OOMMF: irregular mesh v1.0\n")
    write_ovf(d / "neg.ovf", np.ones((16, 16, 3)))
    text = (d / "neg.ovf").read_bytes().replace(b"# ystepsize: 1e-09", b"# ystepsize: -1e-09")
    (d / "neg.ovf").write_bytes(text)
    write_ovf(d / "vec.ovf", np.ones((16, 16, 3)))
    np.save(d / "ok.npy", np.zeros((16, 16), np.float32))


@pytest.mark.parametrize("argv,message", [
    (["small.npy"], "is 6x9 pixels; fit-image needs at least 8x8 LR pixels"),
    (["nan.npy", "--mask", "none"], "holds 1 NaN or infinite cells; with mask 'none'"),
    (["colour.png"], "is a colour image"),
    (["clear.png"], "has transparent pixels"),
    (["stack.npy"], "holds 2 images"),
    (["two.npy"], "has 2 channels"),
    (["bad.ovf"], "irregular meshes are not supported"),
    (["missing.png"], "does not exist"),
    (["ok.npy", "--scale", "3"], "scale must be a power of two"),
    (["ok.npy", "--patch", "2"], "patch must be an integer >= 4"),
    (["ok.npy", "--stride", "9"], "stride 9 is larger than patch 8"),
    (["ok.npy", "--sigma", "0"], "sigma must be a finite number > 0"),
    (["ok.npy", "--learning-rate", "-1"], "learning_rate must be a finite number > 0"),
    (["ok.npy", "--layer", "1"], "layer applies to OVF files only"),
    (["neg.ovf"], "the steps >= 0 (0: unknown)"),
    (["vec.ovf", "--clip"], "clip applies to scalar (one-channel) images"),
])
def test_cli_refusals(tmp_path, capsys, main, argv, message):
    _bad_inputs(tmp_path)
    run = tmp_path / "run"
    code = main(["fit-image", str(tmp_path / argv[0]), "--scale", "2", "--patch", "8",
                 "--out", str(run), *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert err.startswith("spinsr-tf fit-image: error: ")
    assert not run.exists()


def test_cli_unwritable_run_folder_fails_first(tmp_path, capsys, main, monkeypatch):
    """A run folder that cannot be made is found before the optics estimates and training,
    through the command line and through the function."""
    import spinsr_tf.nn.training as training

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(training, "train", never)
    np.save(tmp_path / "ok.npy", np.random.default_rng(0).normal(size=(16, 16)))
    (tmp_path / "file").write_text("not a folder")
    code = main(["fit-image", str(tmp_path / "ok.npy"), "--scale", "2", "--patch", "8",
                 "--out", str(tmp_path / "file" / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "file" in err and err.count("\n") == 1, err
    with pytest.raises(UserError, match="cannot be made: .* is not a folder"):
        fit_image(tmp_path / "ok.npy", scale=2, patch=8, out_dir=tmp_path / "file" / "run",
                  **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "ok.npy"]


def test_cli_non_empty_out_dir(tmp_path, capsys, main):
    np.save(tmp_path / "ok.npy", np.zeros((16, 16), np.float32))
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    code = main(["fit-image", str(tmp_path / "ok.npy"), "--scale", "2", "--patch", "8",
                 "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and "is not empty and holds no fit-image run" in err
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


# --- the settings and the steps ----------------------------------------------------------------

def test_fit_config_resolves_defaults_and_refuses_bad_settings():
    import dataclasses
    from pathlib import Path

    from spinsr_tf.inference.fit_image import FIT_RECIPE, STEPS, FitConfig
    from spinsr_tf.inference.image_io import CLIP_PERCENTILE, PERCENTILE

    config = FitConfig("x.png")
    assert (config.stride, config.network, config.percentile) == (4, FIT_RECIPE, PERCENTILE)
    assert config.image == Path("x.png") and config.out_dir == Path("fit_image_run")
    assert FitConfig("x.png", clip=True, patch=8).percentile == CLIP_PERCENTILE
    assert FitConfig("x.png", patch=8).stride == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1
    for bad, message in [({"network": "oracle"}, "network must be one of"),
                         ({"seed": -1}, "seed must be an integer >= 0"),
                         ({"tile": True}, "tile must be an integer >= 1"),
                         ({"epochs": 0}, "epochs must be an integer >= 1"),
                         ({"uncertainty": "yes"}, "uncertainty must be True or False"),
                         ({"learning_rate": float("inf")}, "learning_rate must be a finite"),
                         ({"kernel_size": 22}, "kernel_size must be an odd integer")]:
        with pytest.raises(UserError, match=message):
            FitConfig("x.png", **bad)
    assert [step.__name__ for step in STEPS] == [
        "read", "estimate_optics", "saturation", "configure", "train", "super_resolve_image",
        "uncertainty", "write"]
    with pytest.raises(UserError, match=r"percentile must be a finite number in \[0, 50\)"):
        value_mapping(np.zeros((4, 4, 1)), 50)


def test_cli_builds_the_fit_config():
    import argparse

    from spinsr_tf.cli.fit_image import add_parser, config
    from spinsr_tf.inference.fit_image import FitConfig

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["fit-image", "img.png", "--out", "run", "--scale", "4",
                              "--noise", "0.5", "--sigma", "2", "--no-uncertainty", "--quiet",
                              "--no-jit", "--stride", "3", "--seed", "7"])
    assert config(args) == FitConfig("img.png", out_dir="run", scale=4, noise="0.5",
                                     sigma=2.0, uncertainty=False, progress=False,
                                     jit_compile=False, stride=3, seed=7, resume=True)


def test_a_fit_starts_from_an_earlier_fit(tmp_path):
    """``init``: a fit of one image starts from the network of an earlier fit (its run folder):
    the training starts where that one ended (first loss far below a fit from random weights),
    a quarter of the default length, recorded; a start of another scale or number of
    components, or a folder without a network, is refused before anything is written."""
    from spinsr_tf.inference.fit_image import START_SHARE, _epochs_for

    images = []
    for seed in (0, 1):
        grey = _stripes(32, 32, seed=seed)[..., None].astype(np.float32)
        np.save(tmp_path / f"img{seed}.npy", grey)
        images.append(tmp_path / f"img{seed}.npy")
    common = dict(scale=2, patch=8, sigma=1.0, noise="none", uncertainty=False,
                  batch_size=8, jit_compile=False, progress=False)
    first = fit_image(images[0], out_dir=tmp_path / "first", epochs=4, **common)
    second = fit_image(images[1], out_dir=tmp_path / "second", init=tmp_path / "first",
                       **common)
    scratch = fit_image(images[1], out_dir=tmp_path / "scratch", epochs=1, **common)
    record = json.loads((tmp_path / "second" / "fit.json").read_text())
    assert record["init"] == str(tmp_path / "first" / "train" / "model.keras")
    n = second["n_patches"]
    assert record["epochs"] == _epochs_for(n, 8, START_SHARE) < _epochs_for(n, 8)
    assert second["history"]["loss"][0] < 0.5 * scratch["history"]["loss"][0]
    assert second["history"]["loss"][0] < 2 * first["history"]["loss"][-1]
    for bad, message in ((dict(scale=4), "super-resolves x2 maps of 1 component"),
                         (dict(init=tmp_path / "img0.npy"), "not a spinsr model"),
                         (dict(init=tmp_path), "folder without a fit-image network")):
        settings = {**common, "init": tmp_path / "first", **bad}
        with pytest.raises(UserError, match=message):
            fit_image(images[1], out_dir=tmp_path / "never", **settings)
        assert not (tmp_path / "never").exists()
