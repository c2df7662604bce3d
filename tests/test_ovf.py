"""OVF 1.0/2.0 reading and writing: hand-written reference files, round trips of every variant,
orientation, holes, layers, and every refusal."""

import struct

import numpy as np
import pytest

from spinsr_tf.data.ovf import CHECK_VALUES, read_ovf, write_ovf
from spinsr_tf.base.errors import UserError

# A mumax3-style OVF 2.0 text file: 3 cells along x, 2 along y, one layer. The values are
# m = (x index, y index, 1) + (0.5, 0.25, 0), so each cell says where it sits.
MUMAX_TEXT = """\
# OOMMF OVF 2.0
# Segment count: 1
# Begin: Segment
# Begin: Header
# Title: m
# meshtype: rectangular
# meshunit: m
# xmin: 0
# ymin: 0
# zmin: 0
# xmax: 1.5e-08
# ymax: 1e-08
# zmax: 3e-09
# valuedim: 3
# valuelabels: m_x m_y m_z
# valueunits: 1 1 1
# Desc: Total simulation time:  1.5e-09  s
# xbase: 2.5e-09
# ybase: 2.5e-09
# zbase: 1.5e-09
# xnodes: 3
# ynodes: 2
# znodes: 1
# xstepsize: 5e-09
# ystepsize: 5e-09
# zstepsize: 3e-09
# End: Header
# Begin: Data Text
0.5 0.25 1
1.5 0.25 1
2.5 0.25 1
0.5 1.25 1
1.5 1.25 1
2.5 1.25 1
# End: Data Text
# End: Segment
"""


def _expected():
    y, x = np.mgrid[0:2, 0:3].astype(np.float64)
    return np.stack([x + 0.5, y + 0.25, np.ones_like(x)], axis=-1)


def _binary_file(version, size, values, nodes=(3, 2, 1), check=None):
    """An OVF file assembled by hand (header text + packed floats), independent of write_ovf."""
    order = ">" if version == 1 else "<"
    nx, ny, nz = nodes
    first = "# OOMMF: rectangular mesh v1.0" if version == 1 else "# OOMMF OVF 2.0"
    dim = "" if version == 1 else "# valuedim: 3\n"
    head = (f"{first}\n# Segment count: 1\n# Begin: Segment\n# Begin: Header\n# Title: m\n"
            f"# meshtype: rectangular\n# meshunit: m\n{dim}# xnodes: {nx}\n# ynodes: {ny}\n"
            f"# znodes: {nz}\n# xstepsize: 1e-9\n# ystepsize: 2e-9\n# zstepsize: 3e-9\n"
            f"# End: Header\n# Begin: Data Binary {size}\n")
    fmt = order + ("f" if size == 4 else "d") * (len(values) + 1)
    body = struct.pack(fmt, CHECK_VALUES[size] if check is None else check, *values)
    return head.encode() + body + f"\n# End: Data Binary {size}\n# End: Segment\n".encode()


def test_mumax_text_reference(tmp_path):
    (tmp_path / "m.ovf").write_text(MUMAX_TEXT)
    m, meta = read_ovf(tmp_path / "m.ovf", normalize=False)
    assert m.shape == (2, 3, 3) and m.dtype == np.float32
    np.testing.assert_array_equal(m, _expected())
    assert meta["version"] == 2 and meta["format"] == "text" and meta["title"] == "m"
    assert meta["nodes"] == (3, 2, 1) and meta["holes"] == 0
    np.testing.assert_allclose(meta["cellsize"], (5e-9, 5e-9, 3e-9))
    assert meta["desc"] == ["Total simulation time:  1.5e-09  s"]
    unit, _ = read_ovf(tmp_path / "m.ovf")
    ref = _expected() / np.linalg.norm(_expected(), axis=-1, keepdims=True)
    np.testing.assert_allclose(unit, ref, rtol=1e-6)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("size", [4, 8])
def test_hand_packed_binary_reference(tmp_path, version, size):
    values = _expected().reshape(-1)  # x fastest, then y: the OVF order
    (tmp_path / "b.ovf").write_bytes(_binary_file(version, size, values))
    m, meta = read_ovf(tmp_path / "b.ovf", normalize=False)
    np.testing.assert_array_equal(m, _expected())
    assert meta["version"] == version and meta["format"] == f"binary {size}"
    # the same bytes with the other byte order fail the check value
    swapped = _binary_file(version, size, values).replace(
        struct.pack((">" if version == 1 else "<") + ("f" if size == 4 else "d"),
                    CHECK_VALUES[size]),
        struct.pack(("<" if version == 1 else ">") + ("f" if size == 4 else "d"),
                    CHECK_VALUES[size]))
    (tmp_path / "s.ovf").write_bytes(swapped)
    with pytest.raises(UserError, match="wrong check value"):
        read_ovf(tmp_path / "s.ovf")


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("binary", [None, 4, 8])
def test_round_trip_every_variant(tmp_path, version, binary):
    rng = np.random.default_rng(version * 10 + (binary or 0))
    m = rng.normal(size=(5, 7, 3)).astype(np.float32) * 8e5
    path = write_ovf(tmp_path / "r.ovf", m, binary=binary, version=version,
                     cellsize=(2e-9, 3e-9, 1e-9), valueunit="A/m")
    got, meta = read_ovf(path, normalize=False)
    np.testing.assert_array_equal(got, m)  # exact: float32 survives text (17 digits) and bin
    assert meta["version"] == version
    assert meta["format"] == ("text" if binary is None else f"binary {binary}")
    np.testing.assert_allclose(meta["cellsize"], (2e-9, 3e-9, 1e-9))
    assert meta["valueunits"].split()[0] == "A/m"
    unit, meta = read_ovf(path)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(meta["magnitude"], np.median(np.linalg.norm(m, axis=-1)),
                               rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["r.ovf"]


def test_orientation_gradients(tmp_path):
    """A field rotating along x lands along the columns, one along y along the rows."""
    ny, nx = 4, 6
    phi = np.linspace(0, np.pi, nx)
    along_x = np.zeros((ny, nx, 3))
    along_x[..., 0], along_x[..., 2] = np.cos(phi)[None, :], np.sin(phi)[None, :]
    # OVF order written by hand: x fastest, so a raw value list is the row-major flattening
    (tmp_path / "x.ovf").write_bytes(_binary_file(2, 8, along_x.reshape(-1), nodes=(nx, ny, 1)))
    m, _ = read_ovf(tmp_path / "x.ovf")
    assert m.shape == (ny, nx, 3)
    np.testing.assert_allclose(m[0, :, 0], np.cos(phi), atol=1e-6)   # varies along columns
    np.testing.assert_allclose(m[:, 2, 0], np.cos(phi[2]), atol=1e-6)  # constant along rows
    # my grows with the y index: row i holds y index i (row 0 at ymin), components untouched
    field = np.zeros((ny, nx, 3))
    field[..., 1] = np.arange(ny)[:, None] + 1.0
    write_ovf(tmp_path / "y.ovf", field, binary=4)
    raw = (tmp_path / "y.ovf").read_bytes()
    start = raw.index(b"# Begin: Data Binary 4\n") + len(b"# Begin: Data Binary 4\n")
    stored = np.frombuffer(raw, "<f4", count=1 + nx * ny * 3, offset=start)[1:]
    assert stored[1] == 1.0 and stored[3 * nx + 1] == 2.0  # second y row comes after nx cells
    got, _ = read_ovf(tmp_path / "y.ovf", normalize=False)
    np.testing.assert_array_equal(got[:, 0, 1], [1, 2, 3, 4])


def test_holes_stay_zero(tmp_path):
    m = np.zeros((3, 4, 3), np.float32)
    m[..., 2] = 5.0
    m[1, 2] = 0.0
    write_ovf(tmp_path / "h.ovf", m)
    unit, meta = read_ovf(tmp_path / "h.ovf")
    assert meta["holes"] == 1 and meta["magnitude"] == 5.0
    np.testing.assert_array_equal(unit[1, 2], 0.0)
    np.testing.assert_array_equal(unit[0, 0], [0, 0, 1])


def test_layers(tmp_path):
    m = np.random.default_rng(3).normal(size=(3, 2, 4, 3)).astype(np.float32)
    write_ovf(tmp_path / "z.ovf", m, binary=8)
    for k in range(3):
        got, meta = read_ovf(tmp_path / "z.ovf", layer=k, normalize=False)
        np.testing.assert_array_equal(got, m[k])
        assert meta["nodes"] == (4, 2, 3) and meta["layer"] == k
    with pytest.raises(UserError, match=r"znodes=3 layers; choose one with layer=0\.\.2"):
        read_ovf(tmp_path / "z.ovf")
    with pytest.raises(UserError, match="layer must be an integer in 0..2"):
        read_ovf(tmp_path / "z.ovf", layer=3)


def test_ovf1_valuemultiplier(tmp_path):
    text = MUMAX_TEXT.replace("# OOMMF OVF 2.0", "# OOMMF: rectangular mesh v1.0").replace(
        "# valuedim: 3\n", "# valuemultiplier: 2\n")
    (tmp_path / "v1.ovf").write_text(text)
    m, meta = read_ovf(tmp_path / "v1.ovf", normalize=False)
    np.testing.assert_array_equal(m, 2 * _expected())
    assert meta["version"] == 1


@pytest.mark.parametrize("edit,message", [
    (("# OOMMF OVF 2.0", "# OOMMF: irregular mesh v1.0"), "irregular meshes"),
    (("# meshtype: rectangular", "# meshtype: irregular"), "meshtype 'irregular'"),
    (("# valuedim: 3", "# valuedim: 1"), "valuedim is 1"),
    (("# xnodes: 3\n", ""), "'xnodes' is missing"),
    (("# ynodes: 2", "# ynodes: two"), "'ynodes' is 'two', not an integer"),
    (("# OOMMF OVF 2.0", "# just a text file"), "not an OVF 1.0 or 2.0 header"),
    (("2.5 1.25 1\n", ""), "truncated data: 15 of 18 values"),
    (("2.5 1.25 1\n", "2.5 1.25 1 7\n"), "holds 19 values"),
    (("1.5 0.25 1\n", "1.5 nan 1\n"), "1 NaN or infinite"),
    (("# Begin: Data Text", "# Begin: Data Binary 2"), "'Data Binary 2' is not supported"),
    (("# Begin: Data Text\n", ""), "unexpected line '0.5 0.25 1'"),
])
def test_refusals_are_one_line(tmp_path, edit, message):
    (tmp_path / "bad.ovf").write_text(MUMAX_TEXT.replace(*edit))
    with pytest.raises(UserError, match=message) as err:
        read_ovf(tmp_path / "bad.ovf")
    assert "\n" not in str(err.value)


def test_truncated_binary_and_missing_file(tmp_path):
    data = _binary_file(2, 4, _expected().reshape(-1))
    cut = data.index(b"# Begin: Data Binary 4\n") + len(b"# Begin: Data Binary 4\n") + 4 * 10
    (tmp_path / "t.ovf").write_bytes(data[:cut])
    with pytest.raises(UserError, match="truncated data: 9 of 18 values"):
        read_ovf(tmp_path / "t.ovf")
    (tmp_path / "h.ovf").write_bytes(data[:60])
    with pytest.raises(UserError, match="no '# Begin: Data' line"):
        read_ovf(tmp_path / "h.ovf")
    with pytest.raises(UserError, match="does not exist"):
        read_ovf(tmp_path / "nope.ovf")


def test_write_refusals(tmp_path):
    with pytest.raises(UserError, match=r"shape \(H, W, 3\)"):
        write_ovf(tmp_path / "a.ovf", np.zeros((4, 4, 2)))
    with pytest.raises(UserError, match="binary must be 4, 8 or None"):
        write_ovf(tmp_path / "a.ovf", np.zeros((4, 4, 3)), binary=2)
    with pytest.raises(UserError, match="finite"):
        write_ovf(tmp_path / "a.ovf", np.full((4, 4, 3), np.nan))
    with pytest.raises(UserError, match="does not exist"):
        write_ovf(tmp_path / "no" / "a.ovf", np.zeros((4, 4, 3)))
    assert list(tmp_path.iterdir()) == []


def test_read_image_and_upscale_accept_ovf(tmp_path):
    """``.ovf`` goes through the generic reader (and so through ``spinsr-tf upscale``)."""
    from spinsr_tf.data.io import read_image

    field = np.random.default_rng(5).normal(size=(6, 8, 3)).astype(np.float32)
    write_ovf(tmp_path / "m.ovf", field, binary=4)
    values, info = read_image(tmp_path / "m.ovf", return_info=True)
    assert values.shape == (1, 6, 8, 3) and info.format == "ovf"
    np.testing.assert_array_equal(values[0], field)
