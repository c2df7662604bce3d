"""``spinsr-tf downsample``: output file contract, chunked reading, and one-line errors."""

import h5py
import numpy as np
import pytest

import spinsr_tf.data.lr_file as lr_file
from spinsr_tf.cli import main
from spinsr_tf.data.degradation import gaussian_downsample


def _write_spins(path, n=5, size=16, channels=3, seed=0, name="spins"):
    spins = np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype("float32")
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=spins)
        f.attrs["hamiltonian.type"] = "I"
        f.attrs["seed"] = 7
    return spins


def write_corrupt_chunk(path, n=3, size=16):
    """An HDF5 file whose ``spins`` map 1 is a gzip chunk with flipped bytes (a damaged disk
    sector, a cut download): HDF5 fails on it with "filter returned failure", no errno."""
    _write_spins(path, n=n, size=size)
    with h5py.File(path, "r") as f:
        data = f["spins"][()]
    with h5py.File(path, "w") as f:
        f.create_dataset("spins", data=data, chunks=(1, size, size, 3), compression="gzip")
        info = f["spins"].id.get_chunk_info(1)
    raw = bytearray(path.read_bytes())
    for i in range(info.byte_offset + 8, info.byte_offset + info.size - 4):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


def test_writes_lr_dataset_with_attributes(tmp_path, capsys):
    spins = _write_spins(tmp_path / "in.h5")
    out = tmp_path / "lr.h5"
    assert main(["downsample", str(tmp_path / "in.h5"), "--factor", "4", "--out", str(out)]) == 0
    assert "lr.h5" in capsys.readouterr().out
    with h5py.File(out) as f:
        assert list(f.keys()) == ["lr"]
        lr = f["lr"][()]
        assert lr.dtype == np.float32 and lr.shape == (5, 4, 4, 3)
        assert f.attrs["factor"] == 4 and f.attrs["kernel_size"] == 23
        assert f.attrs["sigma"] == 1.0 and f.attrs["padding"] == "periodic"
        assert f.attrs["source"] == str(tmp_path / "in.h5")
        assert f.attrs["hamiltonian.type"] == "I" and f.attrs["seed"] == 7
    np.testing.assert_allclose(lr, gaussian_downsample(spins, 4), rtol=0, atol=1e-7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.h5", "lr.h5"]


def test_options_and_chunked_reading(tmp_path, monkeypatch):
    spins = _write_spins(tmp_path / "in.h5", n=7, size=16, channels=1, seed=1)
    monkeypatch.setattr(lr_file, "_CHUNK_VALUES", 2 * 16 * 16)  # 2 maps per chunk
    args = ["downsample", str(tmp_path / "in.h5"), "--factor", "8", "--out",
            str(tmp_path / "lr.h5"), "--kernel-size", "9", "--sigma", "2.5", "--padding", "reflect"]
    assert main(args) == 0
    with h5py.File(tmp_path / "lr.h5") as f:
        lr = f["lr"][()]
        assert (f.attrs["kernel_size"], f.attrs["sigma"], f.attrs["padding"]) == (9, 2.5, "reflect")
    np.testing.assert_allclose(lr, gaussian_downsample(spins, 8, 9, 2.5, "reflect"), atol=1e-7)


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("spinsr-tf downsample: error: ")
    return err


@pytest.mark.parametrize("setup,factor,word", [
    ("missing", "4", "does not exist"),
    ("text", "4", "cannot read HDF5"),
    ("no_spins", "4", "no dataset 'spins'"),
    ("rank3", "4", "expected (N, H, W, C)"),
    ("good", "3", "not divisible by --factor 3"),
    ("good", "0", "factor"),
    ("nan", "4", "NaN"),
    # the validation train applies (it refuses these): no silent LR maps of integers or nothing
    ("int32", "4", "dtype int32, expected floats"),
    ("empty", "4", "expected (N, H, W, C)"),
    ("corrupt", "4", "damaged file"),
    # a few-KB file declaring 10^9 maps: refused before the first read, not a run that never ends
    ("huge", "4", "needs about"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, setup, factor, word):
    src = tmp_path / "in.h5"
    if setup == "text":
        src.write_text("not hdf5")
    elif setup == "no_spins":
        _write_spins(src, name="other")
    elif setup == "rank3":
        with h5py.File(src, "w") as f:
            f["spins"] = np.zeros((16, 16, 3), "float32")
    elif setup == "int32":
        with h5py.File(src, "w") as f:
            f["spins"] = np.ones((2, 16, 16, 3), "int32")
    elif setup == "empty":
        with h5py.File(src, "w") as f:
            f.create_dataset("spins", shape=(0, 16, 16, 3), dtype="float32")
    elif setup == "corrupt":
        write_corrupt_chunk(src)
    elif setup == "huge":
        with h5py.File(src, "w") as f:
            f.create_dataset("spins", shape=(10**9, 256, 256, 3), dtype="float32",
                             chunks=(1, 256, 256, 3), compression="gzip")
    elif setup in ("good", "nan"):
        _write_spins(src, n=3)
        if setup == "nan":
            with h5py.File(src, "a") as f:
                f["spins"][2, 0, 0, 0] = np.nan
    out = tmp_path / "lr.h5"
    err = _error(capsys, ["downsample", str(src), "--factor", factor, "--out", str(out)])
    assert word in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_bad_output_paths(tmp_path, capsys):
    _write_spins(tmp_path / "in.h5")
    err = _error(capsys, ["downsample", str(tmp_path / "in.h5"), "--factor", "2",
                          "--out", str(tmp_path / "nodir" / "lr.h5")])
    assert "output directory" in err
    err = _error(capsys, ["downsample", str(tmp_path / "in.h5"), "--factor", "2",
                          "--out", str(tmp_path / "in.h5")])
    assert "overwrite the input" in err
    with h5py.File(tmp_path / "in.h5") as f:
        assert "spins" in f


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["downsample", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--factor", "--out", "--kernel-size", "--sigma", "--padding"):
        assert option in out
