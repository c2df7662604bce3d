"""``spinsr-tf upscale`` end to end, and every refusal (exit 2, one line, no output file)."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from spinsr_tf.cli import main
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.io import from_intensity, read_image, to_intensity
from spinsr_tf.nn.network import build_sr_model, sr_submodel


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import keras

    d = tmp_path_factory.mktemp("models")
    out = {}
    for channels, padding in ((3, "periodic"), (1, "reflect")):
        keras.utils.set_random_seed(channels)
        model = build_sr_model(Degradation(4, padding=padding), channels=channels)
        path = d / f"c{channels}.keras"
        model.save(path)
        out[channels] = (path, sr_submodel(model))
    return out


def _run(capsys, *argv):
    """One pass (``--single-pass``), so outputs compare with the network's own; the default
    mean over the symmetric copies is tested in tests/test_uncertainty.py."""
    code = main(["upscale", *map(str, argv), "--single-pass"])
    return code, capsys.readouterr()


def test_npy_vectors(models, tmp_path, capsys):
    path, sr = models[3]
    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 8, 6, 3)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    code, cap = _run(capsys, tmp_path / "in.npy", "--model", path, "--out", tmp_path / "out.npy",
                     "--batch-size", 2)
    assert code == 0 and "3 SR map(s) of 32x24x3 (x4" in cap.out
    got = np.load(tmp_path / "out.npy")
    assert got.dtype == np.float32 and got.shape == (3, 32, 24, 3)
    np.testing.assert_allclose(got, sr(x, training=False).numpy(), atol=1e-5)
    # the same maps through HDF5: dataset 'sr' with the scale recorded
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["lr"] = x
    assert _run(capsys, tmp_path / "in.h5", "--model", path, "--out", tmp_path / "o.h5")[0] == 0
    with h5py.File(tmp_path / "o.h5") as f:
        np.testing.assert_allclose(f["sr"][()], got, atol=1e-6)
        assert f.attrs["scale"] == 4


def test_png_gray_round_trip(models, tmp_path, capsys):
    path, sr = models[1]
    img = np.random.default_rng(1).integers(0, 256, size=(8, 10), dtype=np.uint8)
    Image.fromarray(img, mode="L").save(tmp_path / "in.png")
    code, cap = _run(capsys, tmp_path / "in.png", "--model", path, "--out", tmp_path / "out.png")
    assert code == 0
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "L" and im.size == (40, 32)
        got = np.asarray(im)
    from spinsr_tf.inference.image_io import from_network, to_network, value_mapping

    x = from_intensity(img)[None, :, :, None]
    m = value_mapping(x)   # grey levels by their range onto [-1, 1] and back (test_upscale_grey)
    want = to_intensity(from_network(sr(to_network(x, m), training=False).numpy(), m), "uint8")
    assert np.max(np.abs(got.astype(int) - want[0, :, :, 0].astype(int))) <= 1
    # 16-bit TIFF in → 16-bit TIFF out; float .npy → 8-bit PNG
    Image.fromarray(img.astype(np.uint16) * 257).save(tmp_path / "in16.png")
    assert _run(capsys, tmp_path / "in16.png", "--model", path, "--out", tmp_path / "o.tif")[0] == 0
    y, info = read_image(tmp_path / "o.tif", return_info=True)
    assert info.dtype == "uint16" and y.shape == (1, 32, 40, 1)


def _bad_cases(models, d):
    np.save(d / "c1.npy", np.zeros((1, 8, 8, 1), np.float32))
    np.save(d / "tiny.npy", np.zeros((1, 1, 8, 3), np.float32))
    np.save(d / "many.npy", np.zeros((2, 8, 8, 3), np.float32))
    np.save(d / "ok.npy", np.zeros((1, 8, 8, 3), np.float32))
    (d / "junk.png").write_bytes(b"\x89PNG but not really")
    (d / "in.jpg").write_bytes(b"\xff\xd8 a JPEG, which upscale does not read")
    (d / "junk.keras").write_bytes(b"no zip")
    m3, m1 = models[3][0], models[1][0]
    return [
        ([d / "missing.npy", "--model", m3], "does not exist"),
        ([d / "in.jpg", "--model", m3], "unknown image extension"),
        ([d / "junk.png", "--model", m3], "cannot read PNG"),
        ([d / "c1.npy", "--model", m3], "1 channel(s) but the model expects 3; for a grey "
         "(Sz, Kerr, MFM) image use 'spinsr-tf fit-image'"),
        ([d / "ok.npy", "--model", m1], "3 channel(s) but the model expects 1; a spin-vector "
         "map needs a 3-component model"),
        ([d / "tiny.npy", "--model", m3], "at least 2x2"),
        ([d / "ok.npy", "--model", d / "junk.keras"], "not a spinsr model"),
        ([d / "ok.npy", "--model", d / "nomodel.keras"], "does not exist"),
        ([d / "ok.npy", "--model", m3, "--batch-size", "0"], "--batch-size"),
        ([d / "ok.npy", "--model", m3, "--dataset", "sr"], "HDF5 files only"),
    ]


@pytest.mark.parametrize("out_name", ["out.npy", "out.png"])
def test_bad_inputs_exit_2_and_write_nothing(models, tmp_path, capsys, out_name):
    for argv, message in _bad_cases(models, tmp_path):
        code, cap = _run(capsys, *argv, "--out", tmp_path / out_name)
        assert code == 2, (argv, cap)
        assert cap.err.count("\n") == 1 and message in cap.err, cap.err
        assert cap.err.startswith("spinsr-tf upscale: error:")
        assert not (tmp_path / out_name).exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_outputs_exit_2_and_write_nothing(models, tmp_path, capsys):
    m3 = models[3][0]
    np.save(tmp_path / "many.npy", np.zeros((2, 8, 8, 3), np.float32))
    cases = [(tmp_path / "out.jpg", "unknown image extension"),
             (tmp_path / "nodir" / "out.npy", "does not exist"),
             (tmp_path / "out.png", "one image"),
             (tmp_path / "many.npy", "is the input file")]
    for out, message in cases:
        code, cap = _run(capsys, tmp_path / "many.npy", "--model", m3, "--out", out)
        assert code == 2 and cap.err.count("\n") == 1 and message in cap.err, cap.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.npy"]


def test_real_process_prints_one_line(tmp_path):
    """Through the installed entry point's module: exit status 2 and exactly one stderr line."""
    proc = subprocess.run([sys.executable, "-m", "spinsr_tf", "upscale", str(tmp_path / "x.npy"),
                           "--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("shape,channels,out_shape", [((8, 6, 3), 3, (32, 24, 3)),
                                                      ((8, 6), 1, (32, 24)),
                                                      ((1, 8, 6, 3), 3, (1, 32, 24, 3))])
def test_a_single_map_keeps_its_layout(models, tmp_path, capsys, shape, channels, out_shape):
    """``(h, w, 3)`` in, ``(H, W, 3)`` out (not a stack of one); ``(h, w)`` grey likewise."""
    path, sr = models[channels]
    x = np.random.default_rng(2).uniform(-1, 1, size=shape).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    code, cap = _run(capsys, tmp_path / "in.npy", "--model", path, "--out", tmp_path / "o.npy")
    assert code == 0, cap.err
    got = np.load(tmp_path / "o.npy")
    want = sr(x.reshape(1, 8, 6, channels), training=False).numpy()
    if channels == 1:      # grey levels by their range onto [-1, 1] and back (test_upscale_grey)
        from spinsr_tf.inference.image_io import from_network, to_network, value_mapping

        m = value_mapping(x.reshape(1, 8, 6, 1))
        want = from_network(sr(to_network(x.reshape(1, 8, 6, 1), m), training=False).numpy(), m)
    assert got.shape == out_shape
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5)


def test_ovf_output(models, tmp_path, capsys):
    """Maps without a mesh go to OVF with the cell size unknown (0), one layer per map."""
    from spinsr_tf.data.ovf import read_ovf

    path, sr = models[3]
    x = np.random.default_rng(3).normal(size=(2, 8, 6, 3)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    code, cap = _run(capsys, tmp_path / "in.npy", "--model", path, "--out", tmp_path / "o.ovf")
    assert code == 0, cap.err
    got, meta = read_ovf(tmp_path / "o.ovf", layer="all", normalize=False)
    np.testing.assert_allclose(got, sr(x, training=False).numpy(), atol=1e-5)
    assert meta["nodes"] == (24, 32, 2) and meta["cellsize"] == (0.0, 0.0, 0.0)
    assert "cell size unknown" in meta["desc"]


def test_ovf_output_refused_before_the_model(models, tmp_path, capsys, monkeypatch):
    import spinsr_tf.nn.network as network

    monkeypatch.setattr(network, "load_sr_model",
                        lambda *a, **k: pytest.fail("the model was loaded"))
    np.save(tmp_path / "grey.npy", np.zeros((8, 6), np.float32))
    code, cap = _run(capsys, tmp_path / "grey.npy", "--model", models[1][0],
                     "--out", tmp_path / "o.ovf")
    assert code == 2 and "an OVF file holds 3-component vectors" in cap.err
    assert cap.err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.npy"]
