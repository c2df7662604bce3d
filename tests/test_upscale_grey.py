"""``spinsr-tf upscale`` with a scalar (one-channel) model on grey images of Sz contrast: the
values meet the network on [-1, 1] by their range (as fit-image maps them) and come back in the
input's units, format and layout, with the mapping recorded and said."""

import json

import h5py
import numpy as np
import pytest
from PIL import Image

from spinsr_tf.cli import main
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.io import from_intensity, to_intensity
from spinsr_tf.nn.network import build_sr_model, sr_submodel


@pytest.fixture(scope="module")
def scalar_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(5)
    model = build_sr_model(Degradation(4), channels=1)
    path = tmp_path_factory.mktemp("models") / "sz.keras"
    model.save(path)
    return path, sr_submodel(model)


def _sz_map(h=12, w=16, period=7.0):
    """A labyrinth-like Sz texture in [-1, 1], its extremes reached: cos · cos of two periods."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sz = np.cos(2 * np.pi * x / period) * np.cos(2 * np.pi * y / (1.3 * period) + 0.4)
    return (2 * (sz - sz.min()) / np.ptp(sz) - 1).astype(np.float32)


def _reference(sr, x):
    """NumPy reference: min..max of ``x`` onto [-1, 1], the network, and back."""
    lo, hi = float(x.min()), float(x.max())
    offset, half = (lo + hi) / 2, (hi - lo) / 2
    net = sr(((x - offset) / half).astype(np.float32)[None, ..., None], training=False).numpy()
    return net[0, ..., 0] * half + offset


def _run(capsys, *argv):
    """One pass (``--single-pass``), so outputs compare with the network's own; the default
    mean over the symmetric copies is tested in tests/test_uncertainty.py."""
    code = main(["upscale", *map(str, argv), "--single-pass"])
    return code, capsys.readouterr()


def test_float_npy_in_any_units_comes_back_in_them(scalar_model, tmp_path, capsys):
    """An Sz map written as 37 + 5·Sz (an MFM phase in degrees, say): the network sees the
    same [-1, 1] map as for Sz itself, so the result is 37 + 5·SR(Sz)."""
    path, sr = scalar_model
    sz = _sz_map()
    np.save(tmp_path / "sz.npy", sz)
    np.save(tmp_path / "phase.npy", 37.0 + 5.0 * sz)
    code, cap = _run(capsys, tmp_path / "sz.npy", "--model", path, "--out", tmp_path / "a.npy")
    assert code == 0, cap.err
    assert "grey levels -1..1 mapped onto [-1, 1] and back" in cap.out
    code, cap = _run(capsys, tmp_path / "phase.npy", "--model", path, "--out",
                     tmp_path / "b.npy")
    assert code == 0, cap.err
    assert cap.out.count("\n") == 1 and "grey levels 32..42 mapped onto [-1, 1]" in cap.out
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == b.shape == (48, 64) and a.dtype == b.dtype == np.float32   # (H, W) kept
    np.testing.assert_allclose(a, _reference(sr, sz), atol=1e-5)
    np.testing.assert_allclose(b, 37.0 + 5.0 * a, atol=1e-4)
    record = json.loads((tmp_path / "b.degradation.json").read_text())["value_mapping"]
    assert record["kind"] == "percentile" and record["percentile"] == 0.0
    assert record["offset"] == pytest.approx(37.0) and record["scale"] == pytest.approx(5.0)


def test_uint8_png_round_trip_in_its_bit_depth(scalar_model, tmp_path, capsys):
    """A Kerr image using grey levels 60..200 only: mapped by its range (not by the 0..255 of
    its bit depth), written back as an 8-bit grey PNG within one grey level of the reference."""
    path, sr = scalar_model
    sz = _sz_map()
    img = np.round(130 + 70 * sz).astype(np.uint8)
    Image.fromarray(img, mode="L").save(tmp_path / "kerr.png")
    code, cap = _run(capsys, tmp_path / "kerr.png", "--model", path, "--out",
                     tmp_path / "sr.png")
    assert code == 0, cap.err
    assert "grey levels 60..200 mapped onto [-1, 1] and back" in cap.out     # stored levels
    with Image.open(tmp_path / "sr.png") as im:
        assert im.mode == "L" and im.size == (64, 48)
        got = np.asarray(im).astype(int)
    want = to_intensity(_reference(sr, from_intensity(img)), "uint8").astype(int)
    assert np.max(np.abs(got - want)) <= 1
    # the same map stored as (1, H, W, 1) float in HDF5: the mapping as attributes of 'sr'
    with h5py.File(tmp_path / "kerr.h5", "w") as f:
        f["lr"] = from_intensity(img)[None, ..., None]
    code, cap = _run(capsys, tmp_path / "kerr.h5", "--model", path, "--out", tmp_path / "o.h5")
    assert code == 0, cap.err
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["sr"].shape == (1, 48, 64, 1)
        lo, hi = (float(from_intensity(np.uint8(v))) for v in (img.min(), img.max()))
        assert f.attrs["value_mapping.offset"] == pytest.approx((lo + hi) / 2, abs=1e-6)
        assert f.attrs["value_mapping.scale"] == pytest.approx((hi - lo) / 2, abs=1e-6)
        np.testing.assert_allclose(f["sr"][0, ..., 0], _reference(sr, from_intensity(img)),
                                   atol=1e-5)


def test_a_constant_image_stays_constant(scalar_model, tmp_path, capsys):
    """No range to map: the network sees zeros and the value comes back where it was (up to
    what the network makes of a blank map), and the summary says so."""
    path, sr = scalar_model
    np.save(tmp_path / "flat.npy", np.full((8, 8, 1), 3.5, np.float32))
    code, cap = _run(capsys, tmp_path / "flat.npy", "--model", path, "--out", tmp_path / "o.npy")
    assert code == 0 and "a constant image (3.5) maps to 0 and back" in cap.out
    blank = sr(np.zeros((1, 8, 8, 1), np.float32), training=False).numpy()[0]
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), 3.5 + blank, atol=1e-5)


def test_grey_refusals_exit_2_and_write_nothing(scalar_model, tmp_path, capsys):
    path, _ = scalar_model
    rgb = np.stack([np.zeros((8, 8)), np.ones((8, 8)), np.zeros((8, 8))], -1)
    Image.fromarray((rgb * 255).astype(np.uint8), mode="RGB").save(tmp_path / "rgb.png")
    np.save(tmp_path / "sz.npy", _sz_map())
    cases = [([tmp_path / "rgb.png"], "3 channel(s) but the model expects 1"),
             ([tmp_path / "sz.npy", "--refine", "physics"],
              "--refine physics needs periodic spin maps")]
    for argv, message in cases:
        code, cap = _run(capsys, *argv, "--model", path, "--out", tmp_path / "o.png")
        assert code == 2 and cap.err.count("\n") == 1 and message in cap.err, cap.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb.png", "sz.npy"]
