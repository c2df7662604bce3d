"""Files other tools wrote (``data/ovf/``: mumax3, OOMMF, discretisedfield's test set, BSD-3):
every rectangular 3-component file reads, agrees with its sibling encodings and with pyovf;
``upscale`` ×4 with a shipped model writes OVF that pyovf and this reader take back with the
mesh, origin, units and title right; what cannot work fails first, in one line."""

import re
import time
from pathlib import Path

import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data.ovf import read_ovf

DATA = Path(__file__).resolve().parent.parent / "data" / "ovf"
#: The samples holding a rectangular 3-component field, and their (xnodes, ynodes, znodes).
VECTOR_FILES = {
    "mumax-bin4-linux.ovf": (128, 32, 1), "mumax-bin4-windows.ovf": (128, 32, 1),
    "mumax-txt-linux.ovf": (24, 12, 4), "oommf-ovf1-bin4.omf": (32, 32, 32),
    "oommf-ovf2-bin4.omf": (5, 5, 5), "oommf-ovf2-bin8.omf": (5, 5, 5),
    "oommf-ovf2-txt.omf": (5, 5, 5), "oommf-ovf2-bin8.ohf": (1, 1, 1),
    "ovf2-bin8_different-case.ovf": (25, 25, 6), "skyrmion.omf": (20, 20, 1),
    "skyrmion-disk.omf": (20, 20, 2),
}
MODEL = "pretrained:type-I-x4"


def _header(path) -> dict:
    """The ``# key: value`` lines before the data, read independently of read_ovf."""
    raw = Path(path).read_bytes()
    head = raw[:raw.lower().index(b"# begin: data")].decode("latin-1")
    return {k.strip().lower(): v.strip() for k, v in
            re.findall(r"^#[ \t]*([^:\r\n]+):[ \t]*([^\r\n]*)", head, re.MULTILINE)}


def test_the_data_folder_is_small_and_licensed():
    files = [p for p in DATA.parent.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    assert "Redistribution and use" in (DATA / "LICENSE-discretisedfield.txt").read_text()
    readme = (DATA.parent / "README.md").read_text()
    for p in DATA.iterdir():
        if p.suffix != ".txt":
            assert f"`{p.name}`" in readme, p.name


@pytest.mark.parametrize("name", sorted(VECTOR_FILES))
def test_every_vector_sample_reads(name):
    path = DATA / name
    values, meta = read_ovf(path, layer="all", normalize=False)
    nx, ny, nz = VECTOR_FILES[name]
    head = _header(path)
    assert values.shape == (nz, ny, nx, 3) and meta["nodes"] == (nx, ny, nz)
    assert values.dtype == (np.float32 if "binary 4" in meta["format"] else np.float64)
    assert np.all(np.isfinite(values)) and np.abs(values).max() > 0
    steps = tuple(float(head[f"{a}stepsize"]) for a in "xyz")
    np.testing.assert_allclose(meta["cellsize"], steps, rtol=1e-15)
    np.testing.assert_allclose(meta["origin"], [float(head.get(f"{a}min", 0)) for a in "xyz"],
                               rtol=1e-15)
    assert meta["title"] == head["title"]
    assert meta["valueunits"] == head.get("valueunits", head.get("valueunit", ""))
    for k in range(nz):  # one layer at a time is the same field
        np.testing.assert_array_equal(read_ovf(path, layer=k, normalize=False)[0], values[k])


def test_sibling_encodings_agree():
    """OOMMF wrote one field as Text, Binary 8 and Binary 4; mumax3 one on Linux and Windows."""
    txt = read_ovf(DATA / "oommf-ovf2-txt.omf", layer="all", normalize=False)[0]
    bin8 = read_ovf(DATA / "oommf-ovf2-bin8.omf", layer="all", normalize=False)[0]
    bin4 = read_ovf(DATA / "oommf-ovf2-bin4.omf", layer="all", normalize=False)[0]
    np.testing.assert_allclose(txt, bin8, rtol=1e-14, atol=1e-14 * np.abs(bin8).max())
    np.testing.assert_array_equal(bin4, bin8.astype(np.float32))
    np.testing.assert_array_equal(read_ovf(DATA / "mumax-bin4-linux.ovf")[0],
                                  read_ovf(DATA / "mumax-bin4-windows.ovf")[0])


@pytest.mark.parametrize("name", ["mumax-bin4-linux.ovf", "oommf-ovf2-bin4.omf"])
def test_pyovf_reads_the_same_values(name):
    pyovf = pytest.importorskip("pyovf")
    ours = read_ovf(DATA / name, layer="all", normalize=False)[0]
    np.testing.assert_array_equal(pyovf.read(str(DATA / name), verbose=False).data, ours)


@pytest.mark.parametrize("name,message", [
    ("demag_tensor_oommf.omf", "valuedim is 6; only 3-component"),
    ("oommf-ovf2-bin8.oef", "valuedim is 1; only 3-component"),
])
def test_other_fields_are_refused_in_one_line(tmp_path, capsys, name, message):
    with pytest.raises(UserError, match=message):
        read_ovf(DATA / name, layer=0)
    code = main(["upscale", str(DATA / name), "--model", MODEL, "--out", str(tmp_path / "o.ovf")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def network():
    """The shipped ×4 network's SR map, as a function of unit-vector LR maps."""
    from spinsr_tf.base.pretrained import resolve_model
    from spinsr_tf.nn.network import load_sr_model, sr_submodel

    sr = sr_submodel(load_sr_model(resolve_model(MODEL), compile=False))
    return lambda x: sr(np.asarray(x, np.float32), training=False).numpy()


@pytest.mark.parametrize("name", ["mumax-bin4-linux.ovf", "oommf-ovf2-bin4.omf", "skyrmion.omf",
                                  "skyrmion-disk.omf", "mumax-txt-linux.ovf"])
def test_upscale_keeps_mesh_origin_units_and_title(tmp_path, capsys, network, name):
    src = DATA / name
    out = tmp_path / "sr.ovf"
    code = main(["upscale", str(src), "--model", MODEL, "--out", str(out), "--single-pass"])
    assert code == 0, capsys.readouterr().err
    lr, before = read_ovf(src, layer="all", normalize=False)
    sr, after = read_ovf(out, layer="all", normalize=False)
    nx, ny, nz = before["nodes"]
    dx, dy, dz = before["cellsize"]
    assert after["nodes"] == (4 * nx, 4 * ny, nz) and after["version"] == before["version"]
    np.testing.assert_allclose(after["cellsize"], (dx / 4, dy / 4, dz), rtol=1e-14)
    np.testing.assert_allclose(after["origin"], before["origin"], rtol=1e-14, atol=1e-30)
    # the same region: the first cell's centre moves to xmin + dx / 8
    head = _header(out)
    np.testing.assert_allclose([float(head[f"{a}base"]) for a in "xy"],
                               [before["origin"][0] + dx / 8, before["origin"][1] + dy / 8])
    np.testing.assert_allclose(float(head["xmax"]), before["origin"][0] + nx * dx, rtol=1e-14)
    assert after["title"] == before["title"] and after["valueunits"] == before["valueunits"]
    assert after["desc"][:len(before["desc"])] == before["desc"]
    assert after["format"] == ("binary 4" if before["format"] == "binary 4" else "binary 8")
    # values: the network's map of the stored vectors over Ms, times Ms, in the stored unit;
    # zero vectors (outside the magnet) fed as their nearest magnet cell, and back as holes
    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.data.mask import fill_holes, hr_mask, mask_from_values

    ms = before["magnitude"]
    magnet = mask_from_values(lr)
    want = network(np.stack([fill_holes(x, m) for x, m in zip(lr / ms, magnet)])) * ms
    want[~hr_mask(magnet, Degradation(4, pixel="sample"))] = 0.0
    np.testing.assert_allclose(sr, want, rtol=2e-5, atol=2e-5 * ms)
    # the default, the mean over the symmetric copies: the same mesh, holes kept as holes
    code = main(["upscale", str(src), "--model", MODEL, "--out", str(tmp_path / "mean.ovf")])
    assert code == 0, capsys.readouterr().err
    mean, again = read_ovf(tmp_path / "mean.ovf", layer="all", normalize=False)
    assert again["nodes"] == after["nodes"] and np.all(np.isfinite(mean))
    np.testing.assert_array_equal(np.all(mean == 0, axis=-1), np.all(sr == 0, axis=-1))
    if before["format"] == "binary 4" and before["version"] == 2:
        pyovf = pytest.importorskip("pyovf")
        back = pyovf.read(str(out), verbose=False)
        np.testing.assert_array_equal(back.data, sr)
        assert back.Title == before["title"] and back.meshunit == "m"
        raw = back._raw
        np.testing.assert_allclose((back.xstepsize, back.ystepsize, back.zstepsize),
                                   (dx / 4, dy / 4, dz), rtol=1e-12)
        np.testing.assert_allclose((raw.xmin, raw.ymin, raw.zmin), before["origin"], atol=1e-30)
        np.testing.assert_allclose((raw.xbase, raw.ybase), (dx / 8, dy / 8), rtol=1e-12)


def test_a_zero_step_is_unknown_and_kept(tmp_path, capsys):
    """mumax3 may write ``xstepsize: 0``: accepted, and written back as 0 (0 / 4 = 0)."""
    raw = (DATA / "mumax-bin4-linux.ovf").read_bytes()
    (tmp_path / "zero.ovf").write_bytes(raw.replace(b"# xstepsize: 3.90625e-09",
                                                    b"# xstepsize: 0", 1))
    assert read_ovf(tmp_path / "zero.ovf")[1]["cellsize"][0] == 0
    code = main(["upscale", str(tmp_path / "zero.ovf"), "--model", MODEL, "--out",
                 str(tmp_path / "sr.ovf")])
    assert code == 0, capsys.readouterr().err
    head = _header(tmp_path / "sr.ovf")
    assert float(head["xstepsize"]) == 0 and float(head["ystepsize"]) == 3.90625e-09 / 4
    assert float(head["zstepsize"]) == 3e-09


def test_a_single_map_keeps_its_layout(tmp_path, capsys, network):
    """One map (h, w, 3) comes back as one map (H, W, 3), not a stack of one."""
    lr = np.load(DATA.parent / "samples" / "type-I-lr16.npy")
    assert lr.shape == (16, 16, 3)
    code = main(["upscale", str(DATA.parent / "samples" / "type-I-lr16.npy"), "--model", MODEL,
                 "--out", str(tmp_path / "sr.npy"), "--single-pass"])
    assert code == 0
    sr = np.load(tmp_path / "sr.npy")
    assert sr.shape == (64, 64, 3)
    np.testing.assert_allclose(sr, network(lr[None])[0], atol=1e-5)


@pytest.mark.parametrize("argv,message", [
    (["samples/kerr-standin-64.png", "o.ovf"], "an OVF file holds 3-component vectors"),
    (["ovf/mumax-txt-linux.ovf", "o.png"], "a PNG file holds one image, got N=4"),
    (["ovf/skyrmion.omf", "missing/o.ovf"], "does not exist"),
    (["ovf/oommf-ovf2-bin8.ohf", "o.ovf"], "the network needs at least 2x2"),
])
def test_upscale_fails_before_the_network(tmp_path, capsys, monkeypatch, argv, message):
    """Whatever the output cannot hold is found before the model is even loaded."""
    import spinsr_tf.nn.network as network

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(network, "load_sr_model", never)
    t0 = time.perf_counter()
    code = main(["upscale", str(DATA.parent / argv[0]), "--model", MODEL,
                 "--out", str(tmp_path / argv[1])])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert time.perf_counter() - t0 < 5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a guard of the whole fit-image run; test_ovf.py has the zero step itself
def test_fit_image_on_a_zero_step_file_writes_it_back(tmp_path, capsys):
    """The issue's case: a mumax3 file saying ``xstepsize: 0`` trained, then could not be
    written. The zero step is now "unknown": the run ends with the result on the finer mesh."""
    raw = (DATA / "mumax-bin4-linux.ovf").read_bytes()
    (tmp_path / "zero.ovf").write_bytes(raw.replace(b"# xstepsize: 3.90625e-09",
                                                    b"# xstepsize: 0", 1))
    run = tmp_path / "run"
    code = main(["fit-image", str(tmp_path / "zero.ovf"), "--scale", "2", "--patch", "8",
                 "--stride", "8", "--out", str(run), "--epochs", "1", "--no-jit",
                 "--no-uncertainty", "--quiet"])
    assert code == 0, capsys.readouterr().err
    sr, meta = read_ovf(run / "sr.ovf", normalize=False)
    assert sr.shape == (64, 256, 3) and meta["title"] == "m" and meta["valueunits"] == "1 1 1"
    assert meta["cellsize"] == (0.0, 3.90625e-09 / 2, 3e-09) and meta["origin"] == (0, 0, 0)
    np.testing.assert_allclose(sr, np.load(run / "sr_values.npy") * read_ovf(
        tmp_path / "zero.ovf", normalize=False)[1]["magnitude"], rtol=1e-6)


def test_discretisedfield_reads_the_upscaled_file(tmp_path, capsys):
    """Where ubermag is installed: the result reads with the mesh, origin and units right."""
    df = pytest.importorskip("discretisedfield")
    code = main(["upscale", str(DATA / "skyrmion.omf"), "--model", MODEL,
                 "--out", str(tmp_path / "sr.omf")])
    assert code == 0, capsys.readouterr().err
    before, after = (df.Field.from_file(p) for p in (DATA / "skyrmion.omf", tmp_path / "sr.omf"))
    np.testing.assert_array_equal(after.mesh.n, before.mesh.n * (4, 4, 1))
    np.testing.assert_allclose(after.mesh.cell, before.mesh.cell / (4, 4, 1), rtol=1e-14)
    np.testing.assert_allclose(after.mesh.region.pmin, before.mesh.region.pmin, rtol=1e-14)
    np.testing.assert_allclose(after.mesh.region.pmax, before.mesh.region.pmax, rtol=1e-14)
    assert after.unit == before.unit == "A/m"
