"""The training input: slab reads, degrade-once caches (memory, run-folder file), the same
values as reading and degrading on every call, and a training run that does not depend on
where the LR maps are kept."""

import h5py
import numpy as np
import pytest

from spinsr_tf.data import gaussian_downsample
from spinsr_tf.data import stream
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.stream import LR_CACHE, MapFile, open_training_data
from conftest import run_training, smooth_unit_spins

N, L, SCALE = 20, 32, 4


def _write(path, name, array, **attrs):
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=array, chunks=(1, *array.shape[1:]), compression="gzip")
        f.attrs.update(attrs)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("stream")
    hr = smooth_unit_spins(N, L, seed=4)
    lr = gaussian_downsample(hr, SCALE)
    return {"hr": hr, "lr": lr, "HR": _write(d / "hr.h5", "spins", hr),
            "LR": _write(d / "lr.h5", "lr", lr, factor=SCALE)}


def test_mapfile_reads_any_order_in_runs(files):
    maps = MapFile.open(files["HR"], "spins")
    for idx in ([3, 4, 5, 9, 10, 0], [7, 7, 2, 19], [19], list(range(N))):
        np.testing.assert_array_equal(maps.read(idx), files["hr"][idx])
    assert maps.read([]).shape == (0, L, L, 3)
    with pytest.raises(IndexError, match="outside 0..19"):
        maps.read([2, N])
    maps.close()


@pytest.mark.parametrize("source", ["HR", "LR"])
def test_prepare_in_memory_gives_the_same_maps(files, source):
    plain = open_training_data(files[source], SCALE, max_samples=18)
    data = open_training_data(files[source], SCALE, max_samples=18)
    info = data.prepare(hr_indices=[16, 17] if source == "HR" else ())
    assert info == {"lr": "memory", "hr": 2 if source == "HR" else 0, "teacher": 0}
    for idx in ([5, 2, 5], [16, 17], list(range(18))):
        np.testing.assert_array_equal(data.lr(idx), plain.lr(idx))
        np.testing.assert_array_equal(data.lr(idx), files["lr"][idx])
    if source == "HR":
        # after prepare the HR file is needed only for HR maps outside hr_indices
        data.hr_file.read = lambda idx: pytest.fail(f"read HR maps {idx}")
        np.testing.assert_array_equal(data.lr([1, 3]), files["lr"][[1, 3]])
        np.testing.assert_array_equal(data.hr([17, 16, 17]), files["hr"][[17, 16, 17]])
    plain.close()
    data.close()


def test_past_the_bound_lr_maps_go_to_a_keyed_cache_file(files, tmp_path):
    data = open_training_data(files["HR"], SCALE)
    assert data.prepare(hr_indices=[19], max_bytes=100, cache_dir=tmp_path) == {
        "lr": "cache file", "hr": 0, "teacher": 0}
    cache = tmp_path / LR_CACHE
    np.testing.assert_array_equal(data.lr([9, 0, 9]), files["lr"][[9, 0, 9]])
    np.testing.assert_array_equal(data.hr([19]), files["hr"][[19]])
    with h5py.File(cache, "r") as f:
        np.testing.assert_array_equal(f["lr"][:], files["lr"])
    stamp = cache.stat().st_mtime_ns
    again = open_training_data(files["HR"], SCALE)        # a resumed run reuses it
    again.prepare(max_bytes=100, cache_dir=tmp_path)
    assert cache.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.lr([4]), files["lr"][[4]])
    other = open_training_data(files["HR"], Degradation(SCALE, 2.0))  # another one: rebuilt
    other.prepare(max_bytes=100, cache_dir=tmp_path)
    np.testing.assert_array_equal(other.lr([4]), gaussian_downsample(files["hr"][[4]], SCALE,
                                                                     sigma=2.0))
    for d in (data, again):
        d.close()
    other.remove_cache()
    assert not cache.exists()
    np.testing.assert_array_equal(other.lr([4]), gaussian_downsample(files["hr"][[4]], SCALE,
                                                                     sigma=2.0))
    other.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_degradation_is_given_whole_by_its_factor_or_in_part(files, tmp_path):
    """A Degradation, a factor (the rest as the LR file records it, else the defaults) or some
    settings (None: from the file) make the same object; a given setting the file contradicts,
    an unknown one or a missing factor is refused."""
    recorded = Degradation(SCALE, 1.5, 9, "integrate", "reflect")
    lr = recorded.apply(files["hr"][:4])
    path = _write(tmp_path / "lr.h5", "lr", lr, **recorded.to_attrs())
    for given in (recorded, SCALE, {"factor": SCALE, "sigma": 1.5, "pixel": None},
                  {"factor": SCALE, "kernel_size": 9, "sigma": 1.5, "padding": "reflect",
                   "pixel": "integrate"}):
        data = open_training_data(path, given)
        assert data.degradation == recorded, given
        np.testing.assert_array_equal(data.lr([2, 0]), lr[[2, 0]])
        data.close()
    # a file recording nothing: the defaults the reader has always assumed (23 taps whatever σ)
    hr = open_training_data(files["HR"], {"factor": SCALE, "sigma": 5.0})
    assert hr.degradation == Degradation(SCALE, 5.0, 23, "sample", "periodic")
    hr.close()
    for given, message in [
            (recorded.replace(sigma=1.0), "sigma 1.0 does not match the sigma 1.5"),
            (recorded.replace(pixel="sample"), "pixel 'sample' does not match"),
            ({"factor": 2}, "scale 2 does not match the factor 4"),
            ({"factor": SCALE, "psf": 2.0}, r"unknown degradation setting\(s\): psf"),
            ({"sigma": 1.5}, "need 'factor'"),
            (4.0, "degradation must be a Degradation, an integer factor or a mapping")]:
        with pytest.raises(UserError, match=message):
            open_training_data(path, given)


def test_past_the_bound_without_a_folder_maps_come_from_the_data_file(files):
    for source in ("HR", "LR"):
        data = open_training_data(files[source], SCALE)
        assert data.prepare(max_bytes=100)["lr"] == "data file"
        np.testing.assert_array_equal(data.lr([3, 1]), files["lr"][[3, 1]])
        data.close()


def test_training_is_the_same_wherever_the_lr_maps_are_kept(files, tmp_path, monkeypatch):
    """In memory (the default) or, past the bound, in the run's cache file (then deleted):
    the same weights and history bit for bit."""
    from spinsr_tf.nn.network import load_sr_model

    run = dict(scale=SCALE, epochs=2, batch_size=4, val_fraction=0.2, seed=1, progress=False,
               jit_compile=False)
    memory = run_training(files["HR"], tmp_path / "memory", **run)
    used = []
    cache_file = stream.TrainingData._cache_file
    monkeypatch.setattr(stream, "CACHE_BYTES", 1)
    monkeypatch.setattr(stream.TrainingData, "_cache_file",
                        lambda self, d: used.append(d) or cache_file(self, d))
    on_disk = run_training(files["HR"], tmp_path / "disk", **run)
    assert used == [tmp_path / "disk"] and not (tmp_path / "disk" / LR_CACHE).exists()
    assert on_disk == memory
    for a, b in zip(load_sr_model(tmp_path / "memory" / "model.keras").get_weights(),
                    load_sr_model(tmp_path / "disk" / "model.keras").get_weights()):
        np.testing.assert_array_equal(a, b)
