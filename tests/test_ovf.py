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
    assert m.shape == (2, 3, 3) and m.dtype == np.float64  # Text holds float64 digits
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


# --- the field's own writers and readers -----------------------------------------------------
# Headers written by hand after each tool's writer (mumax3: oommf/ovf2.go and ovf1.go, Go's
# Println spacing; OOMMF's OVF 2.0 writer, bare '#' lines included; older mumax3 and the OVF 2.0
# specification spell the data line "Data binary 4" / "data binary 4"); values packed here.

def _mumax3_ovf2_header(nodes, cell, begin="Data Binary 4"):
    (nx, ny, nz), (dx, dy, dz) = nodes, cell
    return "".join(f"# {line}\n" for line in [
        "OOMMF OVF 2.0", "Segment count: 1", "Begin: Segment", "Begin: Header", "Title: m",
        "meshtype: rectangular", "meshunit: m", "xmin: 0", "ymin: 0", "zmin: 0",
        f"xmax: {nx * dx:g}", f"ymax: {ny * dy:g}", f"zmax: {nz * dz:g}", "valuedim: 3",
        "valuelabels: m_x m_y m_z", "valueunits: 1 1 1",
        "Desc: Total simulation time:  2.5e-10  s",
        f"xbase: {dx / 2:g}", f"ybase: {dy / 2:g}", f"zbase: {dz / 2:g}",
        f"xnodes: {nx}", f"ynodes: {ny}", f"znodes: {nz}",
        f"xstepsize: {dx:g}", f"ystepsize: {dy:g}", f"zstepsize: {dz:g}", "End: Header",
        f"Begin: {begin}"])


def _layered(nz=2, ny=3, nx=4):
    """``(Z, Y, X, 3)`` values that say where each cell sits: (x + .5, y + .25, z + 1)."""
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx].astype(np.float64)
    return np.stack([x + 0.5, y + 0.25, z + 1.0], axis=-1)


@pytest.mark.parametrize("begin", ["Data Binary 4", "Data binary 4", "data binary 4"])
def test_mumax3_binary4_file(tmp_path, begin):
    """mumax3's OVF 2.0 Binary 4: lowercase keys, control number, little-endian float32 x
    fastest, and the end line right after the data (no newline before it)."""
    values = _layered()
    raw = (_mumax3_ovf2_header((4, 3, 2), (5e-9, 4e-9, 3e-9), begin).encode()
           + struct.pack("<f", 1234567.0) + values.astype("<f4").tobytes()
           + f"# End: {begin}\n# End: Segment\n".encode())
    (tmp_path / "m000000.ovf").write_bytes(raw)
    for k in range(2):
        m, meta = read_ovf(tmp_path / "m000000.ovf", layer=k, normalize=False)
        np.testing.assert_array_equal(m, values[k])
    assert meta["format"] == "binary 4" and meta["nodes"] == (4, 3, 2)
    np.testing.assert_allclose(meta["cellsize"], (5e-9, 4e-9, 3e-9), rtol=1e-12)
    assert meta["desc"] == ["Total simulation time:  2.5e-10  s"]
    assert meta["valueunits"] == "1 1 1" and meta["origin"] == (0.0, 0.0, 0.0)


def test_mumax3_ovf1_text_with_trailing_spaces(tmp_path):
    """mumax3's OVF 1.0 header (``Desc: Time (s) :  0`` first, ``valuemultiplier: 1``) and its
    text data: every value followed by a space."""
    values = _layered(nz=1)[0]
    head = "".join(f"# {line}\n" for line in [
        "OOMMF: rectangular mesh v1.0", "Segment count: 1", "Begin: Segment", "Begin: Header",
        "Desc: Time (s) :  0", "Title: m", "meshtype: rectangular", "meshunit: m",
        "xbase: 5e-10", "ybase: 5e-10", "zbase: 5e-10", "xstepsize: 1e-09",
        "ystepsize: 1e-09", "zstepsize: 1e-09", "xmin: 0", "ymin: 0", "zmin: 0",
        "xmax: 4e-09", "ymax: 3e-09", "zmax: 1e-09", "xnodes: 4", "ynodes: 3", "znodes: 1",
        "ValueRangeMinMag: 1e-08", "ValueRangeMaxMag: 1", "valueunit: ", "valuemultiplier: 1",
        "End: Header", "Begin: Data Text"])
    body = "".join(" ".join(f"{v:g}" for v in cell) + " \n" for cell in values.reshape(-1, 3))
    (tmp_path / "m.ovf").write_text(head + body + "# End: Data Text\n# End: Segment\n")
    m, meta = read_ovf(tmp_path / "m.ovf", normalize=False)
    np.testing.assert_array_equal(m, values)
    assert meta["version"] == 1 and meta["desc"] == ["Time (s) :  0"]


# OOMMF's OVF 2.0 writer (Oxs), as in the specification: bare '#' lines between the sections,
# Desc lines with a leading space, OOMMF's own labels.
OOMMF_OVF2_HEAD = """\
# OOMMF OVF 2.0
#
# Segment count: 1
#
# Begin: Segment
# Begin: Header
#
# Title: Oxs_TimeDriver::Magnetization
# Desc: Oxs vector field output
# Desc:  Iteration: 5, State id: 20
# Desc:  Total simulation time: 5.75e-12 s
# meshunit: nm
# meshtype: rectangular
# xbase: 1
# ybase: 1.5
# zbase: 2
# xnodes: 4
# ynodes: 3
# znodes: 2
# xstepsize: 2
# ystepsize: 3
# zstepsize: 4
# xmin: 0
# ymin: 0
# zmin: 0
# xmax: 8
# ymax: 9
# zmax: 8
# valuedim: 3
# valuelabels: Magnetization_x Magnetization_y Magnetization_z
# valueunits: A/m A/m A/m
#
# End: Header
#
# Begin: Data Binary 8
"""


def test_oommf_ovf2_binary8_with_blank_lines_and_nm(tmp_path):
    values = _layered() * 8e5
    raw = (OOMMF_OVF2_HEAD.encode() + struct.pack("<d", 123456789012345.0)
           + values.astype("<f8").tobytes() + b"\n# End: Data Binary 8\n# End: Segment\n")
    (tmp_path / "o.omf").write_bytes(raw)
    m, meta = read_ovf(tmp_path / "o.omf", layer=1, normalize=False)
    np.testing.assert_array_equal(m, values[1].astype(np.float32))
    assert meta["desc"][2] == "Total simulation time: 5.75e-12 s"
    assert meta["meshunit"] == "nm"                         # cell size converted to metres
    np.testing.assert_allclose(meta["cellsize"], (2e-9, 3e-9, 4e-9), rtol=1e-12)
    (tmp_path / "u.omf").write_bytes(raw.replace(b"meshunit: nm", "meshunit: µm".encode()))
    np.testing.assert_allclose(read_ovf(tmp_path / "u.omf", layer=0)[1]["cellsize"],
                               (2e-6, 3e-6, 4e-6), rtol=1e-12)


def test_labels_and_units_with_spaces_are_tcl_words(tmp_path):
    """OVF 2.0 valuelabels/valueunits are Tcl lists: a label with spaces is braced."""
    write_ovf(tmp_path / "t.ovf", np.ones((2, 2, 3)), title="Total field", valueunit="A / m")
    text = (tmp_path / "t.ovf").read_bytes().decode("latin-1")
    assert "# valuelabels: {Total field_x} {Total field_y} {Total field_z}\n" in text
    assert "# valueunits: {A / m} {A / m} {A / m}\n" in text
    assert read_ovf(tmp_path / "t.ovf")[1]["title"] == "Total field"


# --- round trips with discretisedfield (ubermag) and pyovf, where installed ----------------

@pytest.fixture
def df():
    return pytest.importorskip("discretisedfield")


def _df_field(df, values, cell):
    """A discretisedfield Field holding ``values`` (Z, Y, X, 3) on a mesh at the origin."""
    nz, ny, nx, _ = values.shape
    mesh = df.Mesh(p1=(0, 0, 0), p2=(nx * cell[0], ny * cell[1], nz * cell[2]), n=(nx, ny, nz))
    return df.Field(mesh, nvdim=3, value=values.transpose(2, 1, 0, 3), unit="A/m")


@pytest.mark.parametrize("representation", ["txt", "bin4", "bin8"])
def test_discretisedfield_writes_we_read(tmp_path, df, representation):
    values = np.random.default_rng(1).normal(size=(3, 4, 5, 3)) * 8e5
    field = _df_field(df, values, (2e-9, 3e-9, 4e-9))
    field.to_file(tmp_path / "f.ovf", representation=representation)
    for k in range(3):
        m, meta = read_ovf(tmp_path / "f.ovf", layer=k, normalize=False)
        expect = field.array[:, :, k, :].transpose(1, 0, 2)  # df indexes [x, y, z]
        if representation == "bin4":
            expect = expect.astype(np.float32)
        np.testing.assert_allclose(m, expect, rtol=1e-6 if representation != "bin4" else 0)
    assert meta["nodes"] == (5, 4, 3) and meta["version"] == 2
    np.testing.assert_allclose(meta["cellsize"], field.mesh.cell, rtol=1e-12)
    np.testing.assert_allclose(meta["origin"], field.mesh.region.pmin, atol=1e-30)
    assert meta["desc"] == ["File generated by Field class"]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("binary", [None, 4, 8])
def test_we_write_discretisedfield_reads(tmp_path, df, version, binary):
    values = (np.random.default_rng(2).normal(size=(2, 3, 4, 3)) * 8e5).astype(np.float32)
    path = write_ovf(tmp_path / "w.ovf", values, binary=binary, version=version,
                     cellsize=(2e-9, 3e-9, 4e-9), valueunit="A/m")
    field = df.Field.from_file(path)
    np.testing.assert_array_equal(field.array.transpose(2, 1, 0, 3), values)
    assert tuple(field.mesh.n) == (4, 3, 2)
    np.testing.assert_allclose(field.mesh.cell, (2e-9, 3e-9, 4e-9), rtol=1e-12)
    np.testing.assert_allclose(field.mesh.region.pmin, 0.0)
    np.testing.assert_allclose(field.mesh.region.pmax, (8e-9, 9e-9, 8e-9), rtol=1e-12)
    assert field.mesh.region.units == ("m", "m", "m")
    if version == 2:  # discretisedfield reads OVF 1.0's 'valueunit' as no unit
        assert field.unit == "A/m" and list(field.vdims) == ["x", "y", "z"]


def test_to_field_and_from_field(tmp_path, df):
    from spinsr_tf.data import from_field, to_field

    values = np.random.default_rng(3).normal(size=(2, 3, 5, 3)).astype(np.float32)
    field = to_field(values, (1e-9, 2e-9, 3e-9), valueunit="A/m")
    assert tuple(field.mesh.n) == (5, 3, 2) and field.nvdim == 3 and field.unit == "A/m"
    np.testing.assert_allclose(field.mesh.cell, (1e-9, 2e-9, 3e-9), rtol=1e-12)
    np.testing.assert_array_equal(from_field(field), values)
    # values[k, i, j] sits at the centre of cell (x index j, y index i, z index k)
    k, i, j = 1, 2, 3
    centre = ((j + 0.5) * 1e-9, (i + 0.5) * 2e-9, (k + 0.5) * 3e-9)
    np.testing.assert_allclose(field(centre), values[k, i, j], rtol=1e-6)
    # the Field's own OVF file reads back as write_ovf's does
    field.to_file(tmp_path / "f.ovf", representation="bin4")
    write_ovf(tmp_path / "w.ovf", values, cellsize=(1e-9, 2e-9, 3e-9))
    for k in range(2):
        np.testing.assert_array_equal(read_ovf(tmp_path / "f.ovf", layer=k, normalize=False)[0],
                                      read_ovf(tmp_path / "w.ovf", layer=k, normalize=False)[0])
    one = to_field(values[:1], (1e-9, 1e-9, 1e-9))   # a batch of one SR map: one layer
    assert from_field(one).shape == (3, 5, 3)
    np.testing.assert_array_equal(from_field(df.Field.from_file(tmp_path / "w.ovf")), values)
    with pytest.raises(UserError, match="3 value components"):
        from_field(df.Field(field.mesh, nvdim=1, value=1.0))
    with pytest.raises(UserError, match="cellsize must be three numbers > 0"):
        to_field(values, (1e-9, 0, 1e-9))


def test_to_field_without_discretisedfield(monkeypatch):
    import sys

    from spinsr_tf.data import to_field

    monkeypatch.setitem(sys.modules, "discretisedfield", None)
    with pytest.raises(UserError, match=r"pip install 'spinsr_tf\[fields\]'"):
        to_field(np.ones((2, 2, 3)), (1e-9, 1e-9, 1e-9))


def test_pyovf_round_trips(tmp_path):
    """pyovf reads and writes OVF 2.0 Binary 4 only, as (Z, Y, X, 3) float32."""
    pyovf = pytest.importorskip("pyovf")
    values = _layered().astype(np.float32)
    pyovf.create(values, title="m", xstepsize=2e-9, ystepsize=3e-9, zstepsize=4e-9).write(
        str(tmp_path / "p.ovf"))
    for k in range(2):
        m, meta = read_ovf(tmp_path / "p.ovf", layer=k, normalize=False)
        np.testing.assert_array_equal(m, values[k])
    np.testing.assert_allclose(meta["cellsize"], (2e-9, 3e-9, 4e-9), rtol=1e-12)
    write_ovf(tmp_path / "w.ovf", values, binary=4, version=2, cellsize=(2e-9, 3e-9, 4e-9))
    back = pyovf.read(str(tmp_path / "w.ovf"), verbose=False)
    np.testing.assert_array_equal(back.data, values)
    assert (back.xstepsize, back.ystepsize, back.zstepsize) == (2e-9, 3e-9, 4e-9)
    assert back.Title == "m"


# --- metadata kept ---------------------------------------------------------------------------

def test_tcl_words():
    from spinsr_tf.data.ovf import tcl_words

    assert tcl_words("1 1 1") == ["1", "1", "1"]
    assert tcl_words("{Total field_x} {Total field_y} m_z") == ["Total field_x",
                                                               "Total field_y", "m_z"]
    assert tcl_words('{} "A / m" {a {b} c}') == ["", "A / m", "a {b} c"]
    assert tcl_words("   ") == []


def test_origin_mesh_unit_labels_and_multiplier_round_trip(tmp_path):
    x = np.random.default_rng(7).normal(size=(2, 3, 4, 3)) * 8e5
    kwargs = dict(cellsize=(2e-9, 3e-9, 0.0), origin=(-5e-8, 1e-9, -8e-9), meshunit="nm",
                  title="Oxs_MinDriver::Magnetization", valueunit=("A/m", "A/m", "A/m"),
                  valuelabels=("Magnetization_x", "Magnetization_y", "Magnetization_z"))
    for version, binary, multiplier in ((2, 8, 1.0), (1, 8, 4.0), (2, None, 1.0)):
        path = write_ovf(tmp_path / f"{version}{binary}.ovf", x, binary=binary, version=version,
                         valuemultiplier=multiplier, **kwargs)
        got, meta = read_ovf(path, layer="all", normalize=False)
        np.testing.assert_allclose(got, x, rtol=1e-15)
        np.testing.assert_allclose(meta["cellsize"], kwargs["cellsize"], rtol=1e-15)
        np.testing.assert_allclose(meta["origin"], kwargs["origin"], rtol=1e-15)
        assert meta["meshunit"] == "nm" and meta["title"] == kwargs["title"]
        assert meta["valuemultiplier"] == multiplier and meta["version"] == version
        text = path.read_bytes().decode("latin-1")
        assert "# xmin: -50.0\n" in text and "# xbase: -49.0\n" in text  # nm, no float noise
        assert "# zstepsize: 0.0\n" in text
        if version == 2:
            assert meta["valueunits"] == "A/m A/m A/m"
            assert meta["valuelabels"] == "Magnetization_x Magnetization_y Magnetization_z"
        else:
            assert meta["valueunits"] == "A/m" and "# valuemultiplier: 4.0\n" in text
            stored = np.frombuffer(text[text.index("Binary 8\n") + 9:].encode("latin-1"),
                                   ">f8", count=4)
            np.testing.assert_allclose(stored[1:], x.reshape(-1)[:3] / 4, rtol=1e-15)


def test_ovf_header_on_a_finer_mesh(tmp_path):
    """One layer k of a stack: z origin at zmin + k dz, the x/y steps divided, the rest kept."""
    from spinsr_tf.data.ovf import ovf_header

    x = np.random.default_rng(8).normal(size=(3, 2, 5, 3))
    src = write_ovf(tmp_path / "s.ovf", x, binary=None, cellsize=(4e-9, 5e-9, 2e-9),
                    origin=(1e-9, -2e-9, 3e-9), title="m", valueunit=("1", "1", "1"))
    _, meta = read_ovf(src, layer=2, normalize=False)
    head = ovf_header(meta, 4, desc=["x4"])
    assert head["cellsize"] == (1e-9, 1.25e-9, 2e-9)
    assert head["origin"] == pytest.approx((1e-9, -2e-9, 3e-9 + 2 * 2e-9))
    assert head["binary"] == 8 and head["version"] == 2 and head["valueunit"] == ("1", "1", "1")
    assert head["desc"][-1] == "x4"
    out = write_ovf(tmp_path / "o.ovf", np.zeros((8, 20, 3)), **head)
    _, back = read_ovf(out, normalize=False)
    assert back["nodes"] == (20, 8, 1) and back["valueunits"] == "1 1 1"
    np.testing.assert_allclose(back["origin"], head["origin"], rtol=1e-15)
    text = out.read_bytes().decode("latin-1")
    key = lambda k: float(text.split(f"# {k}: ")[1].split("\n")[0])  # noqa: E731
    assert key("xbase") == pytest.approx(1.5e-9, rel=1e-15)  # xmin + (dx / 4) / 2
    assert key("xmax") == pytest.approx(21e-9, rel=1e-15)  # the region kept


def test_binary8_stays_float64(tmp_path):
    x = np.array([[[1 + 1e-12, 2.0, 3.0]]])
    m, meta = read_ovf(write_ovf(tmp_path / "a.ovf", x, binary=8), normalize=False)
    assert m.dtype == np.float64 and m[0, 0, 0] == 1 + 1e-12
    assert read_ovf(write_ovf(tmp_path / "b.ovf", x, binary=4), normalize=False)[0].dtype \
        == np.float32


@pytest.mark.parametrize("edit,message", [
    (("# xstepsize: 5e-09", "# xstepsize: -5e-09"), "the steps >= 0"),
    (("# xmin: 0", "# xmin: inf"), "must be finite"),
])
def test_mesh_the_writer_cannot_represent_is_refused_on_reading(tmp_path, edit, message):
    (tmp_path / "bad.ovf").write_text(MUMAX_TEXT.replace(*edit))
    with pytest.raises(UserError, match=message):
        read_ovf(tmp_path / "bad.ovf")


def test_zero_step_reads_and_writes_as_unknown(tmp_path):
    (tmp_path / "z.ovf").write_text(MUMAX_TEXT.replace("# xstepsize: 5e-09", "# xstepsize: 0"))
    _, meta = read_ovf(tmp_path / "z.ovf")
    assert meta["cellsize"] == (0.0, 5e-9, 3e-9)
    out = write_ovf(tmp_path / "o.ovf", np.ones((2, 3, 3)), cellsize=meta["cellsize"])
    assert read_ovf(out)[1]["cellsize"] == (0.0, 5e-9, 3e-9)


def test_origin_from_the_cell_centre_alone(tmp_path):
    """A header without ``xmin`` but with ``xbase`` (the first cell's centre) places the mesh."""
    text = MUMAX_TEXT.replace("# xmin: 0\n", "").replace("# xbase: 2.5e-09", "# xbase: 1.5e-08")
    (tmp_path / "b.ovf").write_text(text)
    np.testing.assert_allclose(read_ovf(tmp_path / "b.ovf")[1]["origin"], (1.25e-08, 0, 0),
                               rtol=1e-15)
