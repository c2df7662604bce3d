"""Image I/O: round trips per format, the intensity mapping, shapes, and every refusal."""

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from spinsr_tf.data.io import (ImageInfo, from_intensity, read_image, to_intensity,
                               write_image)
from spinsr_tf.base.errors import UserError


def _spins(n=2, h=6, w=5, c=3, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, h, w, c))
    return (v / np.linalg.norm(v, axis=-1, keepdims=True) if c == 3
            else np.tanh(v)).astype(np.float32)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# --- the intensity mapping -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int8", "int16"])
def test_intensity_mapping_ends_and_inverse(dtype):
    info = np.iinfo(dtype)
    v = np.array([info.min, info.max, (int(info.min) + int(info.max)) // 2], dtype=dtype)
    x = from_intensity(v)
    assert x.dtype == np.float32
    assert x[0] == -1.0 and x[1] == 1.0
    lo, hi = int(info.min), int(info.max)
    np.testing.assert_allclose(x[2], 2 * (int(v[2]) - lo) / (hi - lo) - 1, atol=1e-7)
    every = np.arange(info.min, int(info.max) + 1, dtype=np.int64).astype(dtype)
    np.testing.assert_array_equal(to_intensity(from_intensity(every), dtype), every)


def test_to_intensity_clips_and_rounds():
    np.testing.assert_array_equal(to_intensity([-3.0, -1.0, 0.0, 1.0, 7.0], "uint8"),
                                  [0, 0, 128, 255, 255])


# --- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a.npy", "a.h5", "a.hdf5", "a.tif", "a.TIFF"])
@pytest.mark.parametrize("c", [1, 3, 2])
def test_float_round_trip_is_exact(tmp_path, name, c):
    x = _spins(n=3, c=c)
    write_image(tmp_path / name, x)
    y, info = read_image(tmp_path / name, return_info=True)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, x)
    assert info.dtype == "float32" and not info.is_intensity
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name,dtype,c", [("a.png", "uint8", 1), ("a.png", "uint8", 3),
                                          ("a.png", "uint16", 1), ("a.tif", "uint8", 3),
                                          ("a.tif", "uint16", 1), ("a.h5", "uint16", 3),
                                          ("a.npy", "int16", 1)])
def test_intensity_round_trip_within_quantisation(tmp_path, name, dtype, c):
    x = _spins(n=1, h=7, w=9, c=c, seed=3)
    write_image(tmp_path / name, x, dtype=dtype)
    y, info = read_image(tmp_path / name, return_info=True)
    assert info == ImageInfo(format=info.format, dtype=dtype, dataset=info.dataset)
    assert y.shape == x.shape
    step = 2.0 / (np.iinfo(dtype).max - np.iinfo(dtype).min)
    assert np.max(np.abs(y - x)) <= step / 2 + 1e-6
    # written back with the recorded dtype, the stored integers are unchanged
    write_image(tmp_path / ("b" + name[1:]), y, dtype=info.dtype)
    z = read_image(tmp_path / ("b" + name[1:]))
    np.testing.assert_array_equal(z, y)


def test_h5_named_dataset_and_attrs(tmp_path):
    x = _spins()
    write_image(tmp_path / "o.h5", x, dataset="mine", attrs={"scale": 4, "src": {"a": 1}})
    with h5py.File(tmp_path / "o.h5") as f:
        assert list(f.keys()) == ["mine"] and f["mine"].chunks == (1, 6, 5, 3)
        assert f.attrs["scale"] == 4 and f.attrs["src"] == '{"a": 1}'
    y, info = read_image(tmp_path / "o.h5", dataset="mine", return_info=True)
    np.testing.assert_array_equal(y, x)
    assert info.dataset == "mine"
    np.testing.assert_array_equal(read_image(tmp_path / "o.h5"), x)  # the only dataset


def test_h5_prefers_known_dataset_and_refuses_ambiguity(tmp_path):
    x = _spins()
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["lr"] = x
        f["other"] = x[:1]
    np.testing.assert_array_equal(read_image(tmp_path / "f.h5"), x)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["lr"] = x
        f["sr"] = x
    with pytest.raises(UserError, match="--dataset"):
        read_image(tmp_path / "g.h5")
    np.testing.assert_array_equal(read_image(tmp_path / "g.h5", dataset="sr"), x)
    with pytest.raises(UserError, match="no dataset 'nope'"):
        read_image(tmp_path / "g.h5", dataset="nope")


# --- shapes and foreign files -----------------------------------------------------------------

def test_ranks_become_nhwc(tmp_path):
    np.save(tmp_path / "2d.npy", np.zeros((4, 5), np.float32))
    np.save(tmp_path / "3d.npy", np.zeros((4, 5, 3), np.float64))
    assert read_image(tmp_path / "2d.npy").shape == (1, 4, 5, 1)
    y = read_image(tmp_path / "3d.npy")
    assert y.shape == (1, 4, 5, 3) and y.dtype == np.float32


def test_foreign_png_modes(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    Image.fromarray(gray, mode="L").save(tmp_path / "l.png")
    np.testing.assert_allclose(read_image(tmp_path / "l.png")[0, :, :, 0],
                               gray / 255.0 * 2 - 1, atol=1e-6)
    rgba = np.dstack([gray, gray // 2, 255 - gray, np.full_like(gray, 7)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    y = read_image(tmp_path / "rgba.png")  # alpha dropped
    assert y.shape == (1, 4, 5, 3)
    np.testing.assert_allclose(y[0, :, :, 2], (255 - gray) / 255.0 * 2 - 1, atol=1e-6)
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "i16.png")
    y, info = read_image(tmp_path / "i16.png", return_info=True)
    assert info.dtype == "uint16"
    np.testing.assert_allclose(y[0, :, :, 0], gray / 255.0 * 2 - 1, atol=1e-6)


def test_foreign_tiff_stack_and_planar(tmp_path):
    stack = np.random.default_rng(1).random((3, 4, 5)).astype(np.float32)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    y = read_image(tmp_path / "stack.tif")
    assert y.shape == (3, 4, 5, 1)
    np.testing.assert_array_equal(y[..., 0], stack)
    planar = np.random.default_rng(2).random((3, 4, 5)).astype(np.float32)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    y = read_image(tmp_path / "planar.tif")
    assert y.shape == (1, 4, 5, 3)
    np.testing.assert_array_equal(y[0], np.moveaxis(planar, 0, -1))


# --- refusals ----------------------------------------------------------------------------------

def test_read_refusals(tmp_path):
    with pytest.raises(UserError, match="unknown image extension '.jpg'"):
        read_image(tmp_path / "a.jpg")
    with pytest.raises(UserError, match="does not exist"):
        read_image(tmp_path / "missing.npy")
    for name in ("bad.npy", "bad.h5", "bad.tif", "bad.png"):
        (tmp_path / name).write_bytes(b"this is not an image file at all")
        with pytest.raises(UserError, match="cannot read"):
            read_image(tmp_path / name)
    for bad in (np.nan, np.inf):
        x = np.zeros((1, 4, 4, 3), np.float32)
        x[0, 1, 2, 0] = bad
        np.save(tmp_path / "nan.npy", x)
        with pytest.raises(UserError, match="1 NaN or infinite"):
            read_image(tmp_path / "nan.npy")
    for shape in [(4,), (1, 1, 4, 4, 3)]:
        np.save(tmp_path / "rank.npy", np.zeros(shape, np.float32))
        with pytest.raises(UserError, match="expected \\(H, W\\)"):
            read_image(tmp_path / "rank.npy")
    np.save(tmp_path / "int64.npy", np.zeros((4, 4), np.int64))
    with pytest.raises(UserError, match="dtype int64"):
        read_image(tmp_path / "int64.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 4, 4, 1), np.float32))
    with pytest.raises(UserError, match="empty"):
        read_image(tmp_path / "empty.npy")
    np.save(tmp_path / "ok.npy", np.zeros((4, 4), np.float32))
    with pytest.raises(UserError, match="HDF5 files only"):
        read_image(tmp_path / "ok.npy", dataset="lr")


def test_write_refusals_leave_nothing(tmp_path):
    x = _spins(n=2, c=3)
    cases = [
        (tmp_path / "a.jpg", x, {}, "unknown image extension"),
        (tmp_path / "nodir" / "a.npy", x, {}, "does not exist"),
        (tmp_path / "a.png", x, {}, "one image"),
        (tmp_path / "a.png", x[:1], {"dtype": "uint16"}, "PNG stores"),
        (tmp_path / "a.png", x[:1], {"dtype": "float32"}, "PNG stores"),
        (tmp_path / "a.npy", x, {"dtype": "int64"}, "dtype must be one of"),
        (tmp_path / "a.npy", np.zeros((4,)), {}, "expected \\(H, W\\)"),
        (tmp_path / "a.npy", np.full((2, 2), np.nan), {}, "NaN"),
    ]
    for path, array, kwargs, message in cases:
        with pytest.raises(UserError, match=message):
            write_image(path, array, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_write_replaces_existing_file_atomically(tmp_path):
    write_image(tmp_path / "a.npy", np.zeros((2, 2)))
    write_image(tmp_path / "a.npy", np.ones((3, 3)))
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), np.ones((1, 3, 3, 1)))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


# --- layout and metadata ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a.npy", "a.h5"])
@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 3), (1, 6, 5, 3), (2, 6, 5, 1)])
def test_layout_is_kept(tmp_path, name, shape):
    """A single map is written back as it was stored; ImageInfo.ndim says which."""
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    write_image(tmp_path / name, x)
    stored = np.load(tmp_path / name) if name.endswith(".npy") else \
        h5py.File(tmp_path / name)["sr"][()]
    assert stored.shape == shape
    y, info = read_image(tmp_path / name, return_info=True)
    assert y.ndim == 4 and info.ndim == len(shape)
    np.testing.assert_array_equal(y.reshape(shape), x)


@pytest.mark.parametrize("imagej", [False, True])
def test_tiff_pixel_size_read_and_scaled(tmp_path, imagej):
    from spinsr_tf.data.io import scaled_pixel

    img = np.random.default_rng(1).integers(0, 65535, size=(6, 8), dtype=np.uint16)
    extra = {"imagej": True, "metadata": {"unit": "um"}} if imagej else \
        {"resolutionunit": "CENTIMETER"}
    tifffile.imwrite(tmp_path / "a.tif", img, resolution=(2.5, 4.0), **extra)
    x, info = read_image(tmp_path / "a.tif", return_info=True)
    assert info.ndim == 2
    assert info.meta["resolution"] == pytest.approx((2.5, 4.0))
    assert info.meta["imagej_unit"] == ("um" if imagej else None)
    assert info.meta["resolutionunit"] == (1 if imagej else 3)
    pixel = scaled_pixel(info.meta, 4)
    write_image(tmp_path / "b.tif", np.kron(x[0, :, :, 0], np.ones((4, 4))), dtype="uint16",
                pixel=pixel)
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        page = tif.pages[0]
        assert page.shape == (24, 32) and page.dtype == np.uint16
        assert page.get_resolution() == pytest.approx((10.0, 16.0))  # pixels 4x smaller
        assert int(page.resolutionunit) == info.meta["resolutionunit"]
        if imagej:
            assert tif.imagej_metadata["unit"] == "um"
    assert read_image(tmp_path / "b.tif", return_info=True)[1].meta == {
        **info.meta, "resolution": pytest.approx((10.0, 16.0))}
    tifffile.imwrite(tmp_path / "plain.tif", img)
    assert read_image(tmp_path / "plain.tif", return_info=True)[1].meta is None


def test_ovf_through_write_image(tmp_path):
    from spinsr_tf.data.ovf import read_ovf

    x = np.random.default_rng(2).normal(size=(2, 4, 6, 3))
    header = {"binary": 8, "cellsize": (2e-9, 3e-9, 0.0), "origin": (-1e-8, 0.0, 5e-9),
              "meshunit": "nm", "title": "H", "valueunit": ("A/m", "A/m", "A/m")}
    write_image(tmp_path / "a.ovf", x, ovf=header)
    y, meta = read_ovf(tmp_path / "a.ovf", layer="all", normalize=False)
    np.testing.assert_array_equal(y, x)  # Binary 8: float64 unchanged
    assert meta["meshunit"] == "nm" and meta["title"] == "H"
    assert meta["valueunits"] == "A/m A/m A/m"
    np.testing.assert_allclose(meta["cellsize"], (2e-9, 3e-9, 0.0), rtol=1e-15)
    np.testing.assert_allclose(meta["origin"], (-1e-8, 0.0, 5e-9), rtol=1e-15)
    assert "# xstepsize: 2.0\n" in (tmp_path / "a.ovf").read_bytes().decode("latin-1")
    z, info = read_image(tmp_path / "a.ovf", return_info=True)
    assert z.shape == (2, 4, 6, 3) and info.format == "ovf" and info.ndim == 4
    assert info.meta["nodes"] == (6, 4, 2)


@pytest.mark.parametrize("shape,kwargs,message", [
    ((4, 6, 1), {}, "an OVF file holds 3-component vectors"),
    ((4, 6, 3), {"ovf": {"cellsize": (1e-9, -1e-9, 1e-9)}}, "cellsize must be three numbers"),
    ((4, 6, 3), {"ovf": {"title": "a ## b"}}, "title must be one line without '##'"),
    ((4, 6, 3), {"dtype": "uint8"}, "an OVF file holds float values"),
])
def test_ovf_output_refusals(tmp_path, shape, kwargs, message):
    from spinsr_tf.data.io import check_writable

    with pytest.raises(UserError, match=message):
        check_writable(tmp_path / "a.ovf", shape, kwargs.get("dtype"), ovf=kwargs.get("ovf"))
    with pytest.raises(UserError, match=message):
        write_image(tmp_path / "a.ovf", np.zeros(shape), **kwargs)
    assert list(tmp_path.iterdir()) == []


# --- damaged files and declared sizes: one line, before any allocation ----------------------

def _png(width, height, depth, colour, raw=b"\0" * 64):
    """A PNG whose IHDR declares ``width`` x ``height`` (the data need not match: a header is
    all a decompression bomb or a damaged file has to get right)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_16_bit_rgb_png_is_read_at_16_bits(tmp_path):
    imagecodecs = pytest.importorskip("imagecodecs")
    rgb = np.random.default_rng(3).integers(0, 65536, size=(5, 7, 3), dtype=np.uint16)
    (tmp_path / "rgb16.png").write_bytes(imagecodecs.png_encode(rgb))
    assert Image.open(tmp_path / "rgb16.png").mode == "RGB"   # what Pillow would give: 8 bits
    y, info = read_image(tmp_path / "rgb16.png", return_info=True)
    assert info.dtype == "uint16" and y.shape == (1, 5, 7, 3)
    np.testing.assert_array_equal(y[0], from_intensity(rgb))   # every one of the 16 bits
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 65535, np.uint16)])
    (tmp_path / "rgba16.png").write_bytes(imagecodecs.png_encode(rgba))
    np.testing.assert_array_equal(read_image(tmp_path / "rgba16.png")[0], from_intensity(rgb))


def test_a_16_bit_rgb_png_without_imagecodecs_is_refused_naming_the_way_out(tmp_path,
                                                                             monkeypatch):
    import sys

    (tmp_path / "rgb16.png").write_bytes(_png(4, 4, 16, 2, b"\0" * (4 * (1 + 4 * 6))))
    monkeypatch.setitem(sys.modules, "imagecodecs", None)   # import fails
    with pytest.raises(UserError, match="16-bit RGB.*imagecodecs.*16-bit TIFF"):
        read_image(tmp_path / "rgb16.png")


@pytest.mark.parametrize("name,make,words", [
    # a PNG declaring 10^10 pixels: Pillow's DecompressionBombError, here before it decodes
    ("bomb.png", lambda p: p.write_bytes(_png(100_000, 100_000, 8, 0)), "decompression bomb"),
    ("cut.png", lambda p: p.write_bytes(_png(64, 64, 8, 0)[:40]), "cannot read PNG"),
    # a .npy header declaring 293 GiB over no data: no MemoryError, no allocation
    ("huge.npy", lambda p: p.write_bytes(_npy_header((100_000, 512, 512, 3))), "declares"),
    ("cut.npy", lambda p: p.write_bytes(_npy_bytes(np.ones((4, 4, 4, 3), "f4"))[:-10]),
     "truncated or damaged"),
    # an HDF5 dataset declaring 14 TiB in 6 KB: refused against the memory before it is read
    ("huge.h5", lambda p: _h5_declaring(p, (10**7, 256, 256, 3)), "of memory"),
    ("corrupt.h5", lambda p: _corrupt_h5(p), "damaged file"),
])
def test_damaged_or_absurd_files_are_one_line_before_any_allocation(tmp_path, name, make,
                                                                   words):
    make(tmp_path / name)
    with pytest.raises(UserError, match=words) as exc:
        read_image(tmp_path / name)
    assert "\n" not in str(exc.value)


def _npy_bytes(array):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_header(shape):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


def _h5_declaring(path, shape):
    with h5py.File(path, "w") as f:
        f.create_dataset("spins", shape=shape, dtype="f4", chunks=(1, *shape[1:]),
                         compression="gzip")


def _corrupt_h5(path):
    from test_cli_downsample import write_corrupt_chunk

    write_corrupt_chunk(path)


def test_check_size_refuses_what_memory_disk_or_the_file_size_limit_cannot_hold(tmp_path,
                                                                                monkeypatch):
    import spinsr_tf.data.io as io_module

    check = io_module.check_size
    check("nothing", memory=1, disk=1, folder=tmp_path)
    monkeypatch.setattr(io_module, "available_memory", lambda: 1000)
    with pytest.raises(UserError, match="needs about 1.95 KiB of memory, 1e\\+03 B"):
        check("x", memory=2000)
    with pytest.raises(UserError, match="of disk space"):
        check("x", disk=1 << 60, folder=tmp_path)
    monkeypatch.setattr(io_module, "_file_size_limit", lambda: 4096)
    with pytest.raises(UserError, match="file size limit of 4 KiB"):
        check("x", disk=5000, folder=tmp_path)
    check("x", disk=4096, folder=tmp_path)


@pytest.mark.parametrize("in_memory", [True, False])
def test_h5_output_writes_the_same_file_in_memory_or_on_disk(tmp_path, monkeypatch, in_memory):
    import spinsr_tf.data.io as io_module

    if not in_memory:
        monkeypatch.setattr(io_module, "H5_MEMORY_BYTES", 0)
    x = _spins(3, 8, 8)
    write_image(tmp_path / "a.h5", x, attrs={"scale": 4})
    with h5py.File(tmp_path / "a.h5") as f:
        np.testing.assert_array_equal(f["sr"][()], x)
        assert f.attrs["scale"] == 4
    assert _leftovers(tmp_path) == []
    with pytest.raises(RuntimeError), io_module.h5_output(tmp_path / "b.h5", 10) as f:
        f["x"] = np.zeros(3)
        raise RuntimeError("stopped half-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]   # nothing half-written
