"""The napari plugin (spinsr_tf.napari): reader, finer grid, widget end to end, cancel.

Needs the ``napari`` extra (skipped without it); headless: Qt's offscreen platform, the widget on
a :class:`napari.components.ViewerModel` (no OpenGL canvas), the event loop driven by hand.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")   # before Qt loads

import re
import time
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
OMF = ROOT / "data" / "ovf" / "oommf-ovf2-bin4.omf"
MANIFEST = ROOT / "spinsr_tf" / "napari" / "napari.yaml"
PLUGIN = "spinsr-tf"   # the manifest's name: the package's distribution name


@pytest.fixture(scope="module")
def qapp():
    from qtpy.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


@pytest.fixture(scope="module")
def plugin():
    """The plugin as napari finds it: through the ``napari.manifest`` entry point when the
    installed package declares one (npe2 then checks the manifest's name against the package's),
    else (an install older than the entry point) registered from the manifest file."""
    from importlib.metadata import entry_points

    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    declared = any(e.value == "spinsr_tf.napari:napari.yaml"
                   for e in entry_points(group="napari.manifest"))
    if not declared:
        pm.register(npe2.PluginManifest.from_file(MANIFEST))
    return pm.get_manifest(PLUGIN).name


def _wait(qapp, done, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not done():
        qapp.processEvents()
        time.sleep(0.02)
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
    qapp.processEvents()
    return time.monotonic() - start


def _header_value(path: Path, key: str) -> float:
    """A header entry read from the file's text, independently of the package's OVF reader."""
    head = path.read_bytes().split(b"# Begin: Data")[0].decode("latin-1")
    return float(re.search(rf"#\s*{key}\s*:\s*(\S+)", head, re.IGNORECASE)[1])


def test_reader_opens_omf_with_cell_size_as_scale(plugin):
    from napari.components import ViewerModel

    viewer = ViewerModel()
    layers = viewer.open(str(OMF), plugin=plugin)
    rgb, sz = layers
    steps = [_header_value(OMF, f"{a}stepsize") for a in "zyx"]   # the file's unit (m)
    mins = [_header_value(OMF, f"{a}min") for a in "zyx"]
    nodes = [int(_header_value(OMF, f"{a}nodes")) for a in "zyx"]
    assert rgb.rgb and rgb.data.shape == (*nodes, 3) and sz.data.shape == tuple(nodes)
    np.testing.assert_allclose(rgb.scale, steps, rtol=1e-12)
    np.testing.assert_allclose(sz.scale, steps, rtol=1e-12)
    # napari places pixel k at translate + k * scale: the first cell's centre
    np.testing.assert_allclose(rgb.translate, np.add(mins, np.divide(steps, 2)), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(rgb.data, axis=-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(sz.data, rgb.data[..., 2])
    assert [str(u) for u in rgb.units] == ["meter"] * 3


def test_manifest_contributes_the_reader_and_the_widget(plugin):
    import npe2

    from spinsr_tf.napari.reader import get_reader
    from spinsr_tf.napari.widget import SuperResolveWidget

    pm = npe2.PluginManager.instance()
    assert pm.commands.get(f"{plugin}.super_resolve") is SuperResolveWidget
    assert pm.commands.get(f"{plugin}.get_reader") is get_reader
    for name in ("a.ovf", "b.omf", "c.h5", "d.hdf5", "e.npy"):
        assert plugin in [r.plugin_name for r in pm.iter_compatible_readers([name])], name


def test_reader_declines_other_files():
    from spinsr_tf.napari.reader import get_reader

    assert get_reader("image.png") is None
    assert get_reader(["a.ovf", "b.ovf"]) is None
    assert callable(get_reader(str(OMF)))


@pytest.mark.parametrize("pixel", ["sample", "integrate"])
def test_finer_grid_puts_lr_pixels_where_the_pixel_model_does(pixel):
    from spinsr_tf.napari.compute import finer_grid

    factor, scale, translate = 4, np.array([2.0, 3.0]), np.array([-5.0, 7.0])
    hr_scale, hr_translate = finer_grid(scale, translate, factor, pixel)
    np.testing.assert_allclose(hr_scale, scale / factor)
    k = np.arange(6)
    lr_centres = translate[:, None] + k * scale[:, None]
    hr = lambda j: hr_translate[:, None] + j * hr_scale[:, None]  # noqa: E731
    if pixel == "sample":        # LR pixel k is HR pixel k·f
        expected = hr(k * factor)
    else:                        # LR pixel k is the mean of HR pixels k·f .. k·f + f - 1
        expected = np.mean([hr(k * factor + u) for u in range(factor)], axis=0)
    np.testing.assert_allclose(expected, lr_centres, atol=1e-12)


def _spin_map(size: int, seed: int) -> np.ndarray:
    """A smooth random unit-vector map (H, W, 3)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.normal(size=(size, size, 3)), (2, 2, 0), mode="wrap")
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _run(qapp, widget, timeout: float) -> dict:
    state = {"finished": False}
    worker = widget.start()
    worker.finished.connect(lambda: state.update(finished=True))
    state["seconds"] = _wait(qapp, lambda: state["finished"], timeout, "the run")
    return state


def test_widget_super_resolves_a_layer_as_upscale_does(qapp, tmp_path):
    from napari.components import ViewerModel

    from spinsr_tf.cli import main
    from spinsr_tf.napari.widget import SuperResolveWidget

    lr = _spin_map(16, seed=3)
    viewer = ViewerModel()
    viewer.add_image(lr, rgb=True, name="lr", scale=(2.0, 3.0), translate=(1.0, -4.0))
    widget = SuperResolveWidget(viewer)
    widget.method_box.setCurrentText("pretrained:type-I-x4")
    _run(qapp, widget, timeout=300)
    assert widget.status.text().startswith("done"), widget.status.text()
    sr, sz = viewer.layers["lr SR x4"], viewer.layers["lr SR x4 Sz"]
    assert sr.rgb and sr.data.shape == (64, 64, 3)
    np.testing.assert_allclose(sr.scale, [0.5, 0.75])
    np.testing.assert_allclose(sr.translate, [1.0, -4.0])     # type-I-x4: point samples
    np.testing.assert_array_equal(sz.data, sr.data[..., 2])
    np.testing.assert_allclose(sz.scale, sr.scale)
    # the same maps as the command line's upscale
    np.save(tmp_path / "lr.npy", lr)
    assert main(["upscale", str(tmp_path / "lr.npy"), "--model", "pretrained:type-I-x4",
                 "--out", str(tmp_path / "sr.npy")]) == 0
    np.testing.assert_allclose(sr.data, np.load(tmp_path / "sr.npy"), atol=1e-5)


def test_shipped_spin_model_on_a_grey_layer_points_to_the_fit():
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.napari.compute import FIT, upscale_with_model

    with pytest.raises(UserError, match=FIT):
        upscale_with_model(np.zeros((1, 8, 8, 1), np.float32), "pretrained:type-I-x4")


def test_cancel_stops_a_running_fit(qapp):
    from napari.components import ViewerModel

    from spinsr_tf.napari.compute import FIT
    from spinsr_tf.napari.widget import SuperResolveWidget

    viewer = ViewerModel()
    viewer.add_image(_spin_map(48, seed=5)[..., 2], name="grey")
    widget = SuperResolveWidget(viewer)
    widget.method_box.setCurrentText(FIT)
    widget.factor_box.setCurrentText("x2")
    widget.epochs_box.setValue(5000)              # far longer than the test waits
    state = {"finished": False}
    worker = widget.start()
    worker.finished.connect(lambda: state.update(finished=True))
    _wait(qapp, lambda: "epoch 1/5000" in widget.status.text() or state["finished"], 400,
          "the fit's first epoch")
    assert not state["finished"], widget.status.text()
    widget.cancel_button.click()
    seconds = _wait(qapp, lambda: state["finished"], 60, "the cancel")
    assert widget.status.text() == "cancelled"
    assert seconds < 60 and len(viewer.layers) == 1
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_widget_fit_returns_sr_and_uncertainty_on_the_camera_grid(qapp):
    from napari.components import ViewerModel

    from spinsr_tf.napari.compute import FIT
    from spinsr_tf.napari.widget import SuperResolveWidget

    image = 100.0 + 20.0 * _spin_map(32, seed=7)[..., 2]     # a grey image in its own units
    viewer = ViewerModel()
    viewer.add_image(image, name="grey", scale=(0.4, 0.4))
    widget = SuperResolveWidget(viewer)
    widget.method_box.setCurrentText(FIT)
    widget.factor_box.setCurrentText("x2")
    widget.epochs_box.setValue(2)
    widget.uncertainty_box.setChecked(True)
    _run(qapp, widget, timeout=400)
    assert widget.status.text().startswith("done"), widget.status.text()
    sr, spread = viewer.layers["grey SR x2"], viewer.layers["grey SR x2 uncertainty"]
    assert sr.data.shape == spread.data.shape == (64, 64)
    np.testing.assert_allclose(sr.scale, [0.2, 0.2])
    # fit-image's camera pixels: LR pixel k is centred on HR pixels 2k, 2k + 1
    np.testing.assert_allclose(sr.translate, [-0.1, -0.1])
    # back in the image's units (a result in network units would sit near 0)
    assert abs(float(np.mean(sr.data)) - float(np.mean(image))) < 10.0
    assert np.all(np.isfinite(spread.data)) and float(spread.data.max()) > 0
