"""The napari dock widget: super-resolve an image layer with a shipped model or a network fitted
to it, in a worker thread with a progress bar and a cancel button.

The results come back as new layers on the finer grid (:func:`spinsr_tf.napari.compute.finer_grid`):
the SR map (a spin map as RGB + Sz, like the reader's layers) and, when computed, its uncertainty.
All the work is in :mod:`spinsr_tf.napari.compute`; this module is the Qt side only.
"""

import threading

import napari
import numpy as np
from napari.qt.threading import thread_worker
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel,
                            QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from spinsr_tf.base.errors import UserError
from spinsr_tf.napari.compute import (FIT, Cancelled, finer_grid, fit_to_image, layer_maps,
                                      model_choices, upscale_with_model)
from spinsr_tf.napari.reader import scalar_layer, vector_layers

#: SR factors offered for a fit (powers of two, as ``fit-image`` takes).
FIT_FACTORS = (2, 4, 8, 16)


class _Relay(QObject):
    """Carries progress from the worker thread to the widget (a queued Qt signal)."""

    progress = Signal(float, str)


def result_layers(layer, result: dict) -> list[tuple]:
    """LayerData of a run's result for the source ``layer``: the SR map on the finer grid (RGB +
    Sz for a spin map) and its uncertainty, named after the layer and the factor."""
    factor = result["factor"]
    scale, translate = finer_grid(layer.scale, layer.translate, factor, result["pixel"])
    units = tuple(str(u) for u in layer.units) if getattr(layer, "units", None) else None
    name = f"{layer.name} SR x{factor}"
    rgb = bool(layer.rgb)
    shape = layer.data.shape[:-1] if rgb else layer.data.shape
    hr_shape = shape[:-2] + (shape[-2] * factor, shape[-1] * factor)
    sr = np.reshape(result["sr"], hr_shape + ((3,) if rgb else ()))
    metadata = {"spinsr_tf": {"source_layer": layer.name, "factor": factor,
                              "pixel": result["pixel"], "method": result.get("method")}}
    layers = (vector_layers(sr, name, scale, translate, units, metadata) if rgb
              else [scalar_layer(sr, name, scale, translate, units, metadata)])
    if result["uncertainty"] is not None:
        spread = np.reshape(result["uncertainty"], hr_shape)
        layers.append(scalar_layer(spread, f"{name} uncertainty", scale, translate, units,
                                   metadata, colormap="magma"))
    return layers


def run_method(layer, method: str, factor: int, epochs: int | None, uncertainty: bool,
               progress, cancelled) -> dict:
    """Super-resolve ``layer`` with ``method`` (``pretrained:NAME`` or :data:`FIT`): runs in the
    worker thread."""
    maps = layer_maps(layer.data, layer.rgb)
    if method == FIT:
        if len(maps) != 1:
            raise UserError(f"fit to this image takes one image; layer {layer.name!r} holds "
                            f"{len(maps)}")
        result = fit_to_image(maps[0], factor, epochs, uncertainty, progress=progress,
                              cancelled=cancelled)
    else:
        result = upscale_with_model(maps, method, uncertainty, progress=progress,
                                    cancelled=cancelled)
    return {**result, "method": method}


class SuperResolveWidget(QWidget):
    """Pick an image layer and a method, run, cancel; results arrive as new layers."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.worker = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._show_progress)

        self.layer_box = QComboBox()
        self.method_box = QComboBox()
        self.method_box.addItems(model_choices())
        self.factor_box = QComboBox()
        self.factor_box.addItems([f"x{f}" for f in FIT_FACTORS])
        self.factor_box.setCurrentIndex(FIT_FACTORS.index(4))
        self.epochs_box = QSpinBox()
        self.epochs_box.setRange(0, 10000)
        self.epochs_box.setSpecialValueText("auto")
        self.uncertainty_box = QCheckBox("uncertainty map (slower: twice the passes)")
        self.run_button = QPushButton("Super-resolve")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("layer", self.layer_box)
        form.addRow("model", self.method_box)
        form.addRow("fit: factor", self.factor_box)
        form.addRow("fit: epochs", self.epochs_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.uncertainty_box)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addStretch()

        self.method_box.currentTextChanged.connect(self._method_changed)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self._refresh_layers()
        self._method_changed(self.method_box.currentText())

    # --- state -----------------------------------------------------------------------------
    def _image_layers(self):
        return [lay for lay in self.viewer.layers if isinstance(lay, napari.layers.Image)]

    def _refresh_layers(self, event=None):
        current = self.layer_box.currentText()
        self.layer_box.clear()
        self.layer_box.addItems([lay.name for lay in self._image_layers()])
        if current:
            self.layer_box.setCurrentText(current)

    def _method_changed(self, method: str):
        fit = method == FIT
        self.factor_box.setEnabled(fit)
        self.epochs_box.setEnabled(fit)

    def _show_progress(self, fraction: float, text: str):
        if fraction < 0:                         # unknown: a busy bar
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 100)
            self.progress_bar.setValue(round(100 * fraction))
        self.status.setText(text)

    # --- actions ---------------------------------------------------------------------------
    def start(self):
        """Run the chosen method on the chosen layer in a worker thread; returns the worker."""
        name = self.layer_box.currentText()
        if name not in self.viewer.layers:
            self.status.setText("no image layer to super-resolve")
            return None
        layer = self.viewer.layers[name]
        method = self.method_box.currentText()
        factor = FIT_FACTORS[self.factor_box.currentIndex()]
        epochs = self.epochs_box.value() or None
        uncertainty = self.uncertainty_box.isChecked()
        self._cancel.clear()

        def progress(fraction, text):
            self._relay.progress.emit(-1.0 if fraction is None else float(fraction), text)

        # errors are shown by _failed; napari's default re-raises them in the main thread,
        # which aborts a Qt application that has no exception hook (a test, a script)
        @thread_worker(ignore_errors=True)
        def job():
            return run_method(layer, method, factor, epochs, uncertainty, progress,
                              self._cancel.is_set)

        self.worker = job()
        self.worker.returned.connect(lambda result: self._done(layer, result))
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(self._finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._show_progress(-1.0, f"{method}: starting")
        self.worker.start()
        return self.worker

    def cancel(self):
        """Ask the running job to stop (between batches, or after the fit's current batch)."""
        self._cancel.set()
        self.status.setText("cancelling…")

    def _done(self, layer, result):
        for data, kwargs, _ in result_layers(layer, result):
            self.viewer.add_image(data, **kwargs)
        self._show_progress(1.0, f"done: {layer.name} x{result['factor']} ({result['method']})")

    def _failed(self, exc):
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        if isinstance(exc, Cancelled):
            self.status.setText("cancelled")
        elif isinstance(exc, UserError):
            self.status.setText(str(exc))
        else:
            self.status.setText(f"failed: {type(exc).__name__}: {exc}")

    def _finished(self):
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
