"""What a researcher sees (issue 27): logs fit for a file, TensorFlow quiet unless asked, the
figures' error maps and zoom, the fit-image misfit against the noise it does not fit."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import smooth_unit_spins

ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


# --- logs: one line now and then in a file, no escape codes ------------------------------------

def test_epoch_lines_are_few_and_name_the_first_and_last_epoch():
    from spinsr_tf.nn.training import EpochLines

    printed = []
    cb = EpochLines(60, print_fn=lambda text, **k: printed.append(text))
    cb.on_train_begin()
    for epoch in range(60):
        cb.on_epoch_end(epoch, {"loss": 0.5 / (epoch + 1), "val_sr_mse": 0.01, "lr_loss": 1.0})
    assert [line.split(":")[0].split()[-1] for line in printed] == \
        ["1/60"] + [f"{e}/60" for e in range(6, 61, 6)]
    assert "loss 0.00833" in printed[-1] and "val_sr_mse 0.01" in printed[-1]
    assert "lr_loss" not in printed[-1]
    # a resumed run says where it starts
    printed.clear()
    cb.on_train_begin()
    cb.on_epoch_end(42, {"loss": 1.0})
    assert printed and printed[0].split(":")[0].endswith("43/60")


def test_train_to_a_pipe_is_short_plain_text_without_tensorflow_notices(tmp_path):
    """The command line writes no progress bar, no colour code and none of TensorFlow's own
    lines (oneDNN notices, retracing warnings) when its output is a pipe, as in a log file."""
    data = tmp_path / "lr.h5"
    with h5py.File(data, "w") as f:
        f["spins"] = smooth_unit_spins(8, 16, seed=0)
    cmd = [sys.executable, "-m", "spinsr_tf", "train", "--data", str(data), "--scale", "2",
           "--epochs", "3", "--batch-size", "4", "--no-jit", "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    both = proc.stdout + proc.stderr
    assert "\x1b[" not in both and "\r" not in both
    assert len(both.encode()) < 5000, both
    assert "epoch 3/3" in proc.stdout
    for noise in ("oneDNN", "I0000", "E0000", "retracing", "absl"):
        assert noise not in both, noise


def test_import_sets_the_tensorflow_log_level_only_when_unset():
    code = "import os, spinsr_tf; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"

    def level(env):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120, env=env, check=True).stdout.strip()

    assert level(ENV) == "3"
    assert level({**ENV, "TF_CPP_MIN_LOG_LEVEL": "1"}) == "1"


def test_verbose_undoes_what_quiet_did(monkeypatch):
    import logging

    from spinsr_tf.base import imports

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(imports, "_quieted", {})
    logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    assert imports.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == imports.QUIET_LEVEL
    assert logger.level == logging.ERROR
    imports.show_tensorflow_log()
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ and logger.level == logging.NOTSET
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")   # the user's choice is left alone
    assert not imports.quiet_tensorflow() and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_verbose_flag_on_every_command():
    import argparse

    from spinsr_tf.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in COMMANDS:
        parser = sub.choices[name.replace("_", "-")]
        flags = {o for action in parser._actions for o in action.option_strings}
        assert "--verbose" in flags, name
    assert sub.choices["quickstart"].parse_args(["--verbose"]).verbose is True


# --- figures -----------------------------------------------------------------------------------

def _captured_figure(monkeypatch):
    from spinsr_tf.data import render

    figures = []
    monkeypatch.setattr(render, "save_figure", lambda fig, path: figures.append(fig) or path)
    return figures


def test_error_maps_are_the_distance_to_the_truth_on_one_log_scale(monkeypatch, tmp_path):
    from spinsr_tf.data.render import ERROR_FLOOR, comparison_panel

    truth = smooth_unit_spins(1, 16, seed=1)[0]
    near = truth + 0.01 * np.random.default_rng(0).standard_normal(truth.shape)
    far = truth + 0.3 * np.random.default_rng(1).standard_normal(truth.shape)
    figures = _captured_figure(monkeypatch)
    comparison_panel({"LR": truth[::4, ::4], "near": near, "far": far, "truth": truth},
                     tmp_path / "f.png", truth=truth, zoom=8,
                     scores={"near": "PSNR 1 dB", "far": "PSNR 2 dB"})
    fig = figures[0]
    titles = [ax.get_title() for ax in fig.axes]
    assert "near\nPSNR 1 dB" in titles and "far\nPSNR 2 dB" in titles
    log_images = [im for ax in fig.axes for im in ax.images
                  if type(im.norm).__name__ == "LogNorm"]
    assert len(log_images) == 2   # near and far; none for LR (another grid) or the truth
    top = np.linalg.norm(far - truth, axis=-1).max()
    for im in log_images:
        assert (im.norm.vmin, im.norm.vmax) == (ERROR_FLOOR, pytest.approx(top))
    shown = sorted((np.asarray(im.get_array()) for im in log_images), key=np.mean)
    np.testing.assert_allclose(shown[0], np.maximum(np.linalg.norm(near - truth, axis=-1),
                                                    ERROR_FLOOR))


def test_wall_window_is_the_window_of_largest_gradient():
    from spinsr_tf.data.render import wall_window

    t = smooth_unit_spins(1, 12, seed=3)[0].astype(np.float64)
    g = sum(np.square(np.diff(t, axis=a, append=np.take(t, [-1], axis=a))).sum(-1)
            for a in (0, 1))
    side = 5
    sums = {(r, c): g[r:r + side, c:c + side].sum() for r in range(12 - side + 1)
            for c in range(12 - side + 1)}
    assert wall_window(t, side) == max(sums, key=sums.get)


def test_uncertainty_column_has_its_own_bar_and_the_caption_is_drawn(monkeypatch, tmp_path):
    from spinsr_tf.data.render import comparison_panel

    img = smooth_unit_spins(1, 32, seed=2)[0]
    spread = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    spread[0, 0] = 100.0   # one bright pixel (of 1024) does not set the scale
    figures = _captured_figure(monkeypatch)
    comparison_panel({"input": img, "result": img}, tmp_path / "p.png",
                     extra=("uncertainty", spread, "uncertainty"), caption="sigma 1 (given)")
    fig = figures[0]
    viridis = [im for ax in fig.axes for im in ax.images
               if im.get_array().ndim == 2 and im.get_cmap().name == "viridis"]
    assert len(viridis) == 1 and viridis[0].norm.vmax < 2
    assert any(t.get_text() == "sigma 1 (given)" for t in fig.texts)
    bars = [c for ax in fig.axes for c in [ax, *ax.child_axes]]   # colour bars are insets
    assert any(ax.get_xlabel() == "uncertainty" for ax in bars)    # a horizontal one


# --- fit-image: the misfit against the noise the method does not fit -----------------------------

def test_misfit_is_compared_with_the_noise_variance():
    from spinsr_tf.inference.fit_image import _misfit_line, _noise_variance

    lr = np.random.default_rng(0).uniform(-1, 1, size=(6, 5, 3))
    gaussian = {"noise_kind": "gaussian", "noise_std": 0.1, "noise_slope": 0.0}
    assert _noise_variance(lr, gaussian) == pytest.approx(3 * 0.01)
    poisson = {"noise_kind": "poisson", "noise_std": 0.1, "noise_slope": 0.02}
    brute = np.mean([sum(max(0.01 + 0.02 * lr[i, j, k], 0) for k in range(3))
                     for i in range(6) for j in range(5)])
    assert _noise_variance(lr, poisson) == pytest.approx(brute)
    assert _noise_variance(lr, {"noise_kind": "none"}) == 0.0
    line = _misfit_line({"sr": 0.0301, "bicubic": 0.0025}, 0.03, gaussian, 3)
    assert "sr 0.0301" in line and "noise variance is 0.03" in line and "std 0.1" in line
    assert "misfits by about 0" in _misfit_line({"sr": 0.0, "bicubic": 0.0}, 0.0,
                                                 {"noise_kind": "none"}, 1)


def test_preview_caption_says_what_was_estimated_and_what_assumed():
    from spinsr_tf.inference.fit_image import _optics_caption

    optics = {"sigma": 1.0, "pixel": "integrate", "noise_kind": "gaussian", "noise_std": 0.0427,
              "noise_slope": 0.0,
              "how": {"sigma": {"method": "default (scalar images carry no vector length)",
                                "confident": False},
                      "noise": {"method": "patch PCA (Chen et al.)", "confident": True}}}
    text = _optics_caption(optics, uncertainty=True)
    assert "σ = 1 HR px (default)" in text and "std 0.0427 (patch PCA)" in text
    assert "uncertainty: their spread" in text
    optics["how"]["sigma"] = {"method": "vector lengths", "confident": False}
    assert "(vector lengths unsure: default used)" in _optics_caption(optics, False)
    assert "uncertainty" not in _optics_caption(optics, False)
