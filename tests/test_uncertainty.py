"""Uncertainty maps (spinsr_tf.inference.uncertainty), their calibration
(spinsr_tf.evaluation.calibration) and ``spinsr-tf upscale --uncertainty``."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import random_unit_spins, smooth_unit_spins
from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data.degradation import Degradation, gaussian_downsample
from spinsr_tf.data.interpolation import upsample
from spinsr_tf.evaluation.calibration import calibration, pixel_error
from spinsr_tf.inference.ensemble import NO_REFLECTIONS
from spinsr_tf.inference.uncertainty import (SMOOTH, SpreadOptions, back_transform, group_ops,
                                             hr_op, local_rms, symmetric_mean, symmetry_spread,
                                             uncertainty_figure)
from spinsr_tf.nn.symmetry import LatticeOp, apply

F = 4


def bicubic(padding="periodic", convention="aligned"):
    """Aligned interpolation as a plain callable: equivariant under every lattice operation."""
    return lambda x: upsample(x, F, "bicubic", convention=convention,
                              padding=padding).astype(np.float32)


@pytest.fixture(scope="module")
def lr3():
    return smooth_unit_spins(2, 16 * F, 0)[:, ::F, ::F]


@pytest.fixture(scope="module")
def lr1(lr3):
    return np.ascontiguousarray(lr3[:, :, :6, 2:])          # scalar, not square: half turns


# --- the group and its HR image ---------------------------------------------------------------


def test_group_ops_identity_first_and_no_translations_with_borders():
    ops = group_ops("lattice", None, 3, (8, 8), periodic=True, shifts=[(0, 1), (1, 1)])
    assert ops[0] == LatticeOp() and len(ops) == len(set(ops)) == 3 * 16
    border = group_ops("lattice", None, 3, (8, 8), periodic=False, shifts=[(0, 1), (1, 1)])
    assert len(border) == 16 and all(op.shift == (0, 0) for op in border)
    assert len(group_ops("lattice", None, 1, (8, 6))) == 8      # half turns x mirror x flip
    bulk = {"type": "I", "J": 1.0, "dmi": 0.3, "dmi_kind": "bulk"}
    assert not any(op.mirror and not op.zflip for op in group_ops("lattice", bulk, 3, (8, 8)))


@pytest.mark.parametrize("pixel", ["sample", "integrate"])
def test_apply_then_back_transform_is_identity(pixel):
    rng = np.random.default_rng(3)
    for c in (1, 3):
        hr = rng.normal(size=(2, 8 * F, 8 * F, c)).astype(np.float32)
        for op in group_ops("lattice", None, c, (8, 8), shifts=[(1, 2)]):
            moved = apply(hr, hr_op(op, F, pixel))
            np.testing.assert_array_equal(back_transform(moved, op, F, pixel), hr)


def test_back_transform_with_borders_leaves_uncovered_pixels_out():
    hr = np.random.default_rng(4).normal(size=(1, 8 * F, 8 * F, 3)).astype(np.float32)
    mirror = LatticeOp(mirror=True)
    back = back_transform(apply(hr, hr_op(mirror, F)), mirror, F, periodic=False)
    covered = np.isfinite(back).all(-1)
    assert covered[:, :, :-(F - 1)].all() and not covered[:, :, -(F - 1):].any()
    np.testing.assert_array_equal(back[:, :, :-(F - 1)], hr[:, :, :-(F - 1)])
    np.testing.assert_array_equal(back_transform(apply(hr, mirror), mirror, F, "integrate",
                                                 periodic=False), hr)


def test_hr_op_is_the_image_of_the_lr_op_under_the_degradation():
    """A(T_HR x) = T_LR A(x) for point sampling at k·f, periodic maps."""
    hr = random_unit_spins((1, 8 * F, 8 * F, 3), seed=5)
    lr = gaussian_downsample(hr, F)
    for op in group_ops("lattice", None, 3, (8, 8), shifts=[(1, 3)]):
        np.testing.assert_allclose(gaussian_downsample(apply(hr, hr_op(op, F)), F), apply(lr, op),
                                   atol=1e-6)
    assert hr_op(LatticeOp(mirror=True), F).shift == (0, -(F - 1))
    assert hr_op(LatticeOp(quarter_turns=2), F).shift == (-(F - 1), -(F - 1))
    assert hr_op(LatticeOp((1, 2)), F, "integrate").shift == (F, 2 * F)


# --- the spread -------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
def test_spread_of_an_equivariant_callable_is_zero_and_its_mean_is_the_plain_map(lr3, lr1,
                                                                                  padding):
    for lr in (lr3, lr1):
        fn, geometry = bicubic(padding), Degradation(F, padding=padding)
        sr, u = symmetry_spread(fn, lr, degradation=geometry,
                                options=SpreadOptions(reference="mean", smooth=0))
        assert u.shape == lr.shape[:1] + sr.shape[1:3] and u.dtype == np.float32
        assert u.max() < 1e-5
        plain = fn(lr)
        want = plain / np.linalg.norm(plain, axis=-1, keepdims=True) if lr.shape[-1] == 3 else plain
        np.testing.assert_allclose(sr, want, atol=1e-5)
        np.testing.assert_allclose(symmetry_spread(fn, lr, degradation=geometry,
                                                   options=SpreadOptions(sr="plain"))[0],
                                   plain, atol=1e-6)
        # the block-centre convention is equivariant under camera-pixel geometry, not under points
        centred = bicubic(padding, "resize")
        for pixel, spread in (("integrate", 0.0), ("sample", 1e-2)):
            u = symmetry_spread(centred, lr, degradation=geometry.replace(pixel=pixel),
                                options=SpreadOptions(reference="mean"))[1]
            assert (u.mean() > spread) if spread else (u.max() < 1e-5)


def test_spread_of_an_interpolation_only_model_is_zero(lr3):
    """The untrained residual network is aligned bicubic + unit vectors: exactly equivariant."""
    import keras

    from spinsr_tf.nn.network import build_sr_model

    keras.utils.set_random_seed(0)
    model = build_sr_model(Degradation(F, padding="reflect"), 3, residual=True, output="unit")
    for reference in ("mean", "interpolation"):         # it is the interpolation, too
        sr, u = symmetry_spread(model, lr3, options=SpreadOptions(reference=reference),
                                batch_size=4)
        assert u.max() < 1e-5
    np.testing.assert_allclose(sr, upsample(lr3, F, "bicubic", normalize=True, padding="reflect"),
                               atol=1e-5)
    # a random network is far from equivariant under the point operations, and exactly
    # equivariant (up to rounding) under LR-pixel translations with periodic padding
    paper = build_sr_model(F, 3)
    spread_only = SpreadOptions(reference="mean")
    assert symmetry_spread(paper, lr3, group="rotations", options=spread_only)[1].min() > 1e-2
    shifts = SpreadOptions(reference="mean", shifts=[(0, 1), (1, 0), (3, 5)])
    _, u = symmetry_spread(paper, lr3, group="translations", options=shifts)
    assert u.max() < 1e-5


def test_stacked_members_equal_one_predict_call_per_element(lr3, monkeypatch):
    """The symmetric copies run as one stacked batch: the numbers of one predict call per
    element (the loop computed here by hand), to float32 rounding, in one call."""
    import keras

    from spinsr_tf.nn.export import serving_model
    from spinsr_tf.nn.network import build_sr_model

    keras.utils.set_random_seed(5)
    model = build_sr_model(F, 3)
    serve = serving_model(model)
    ops = group_ops("rotations", None, 3, lr3.shape[1:3])
    members = np.stack([back_transform(serve.predict(apply(lr3, op), batch_size=8, verbose=0),
                                       op, F) for op in ops]).astype(np.float64)
    mean = members.mean(0)
    spread = np.sqrt(np.mean(np.sum((members - mean) ** 2, axis=-1), axis=0))
    assert spread.min() > 1e-3                  # an untrained network: members that differ

    calls = []
    predict = keras.Model.predict
    monkeypatch.setattr(keras.Model, "predict",
                        lambda self, x, **kw: calls.append(len(x)) or predict(self, x, **kw))
    options = SpreadOptions(reference="mean", smooth=0, normalize=False)
    sr, u = symmetry_spread(model, lr3, "rotations", options=options)
    assert calls == [len(ops) * len(lr3)]
    np.testing.assert_allclose(sr, mean, atol=2e-6)
    np.testing.assert_allclose(u, spread, atol=2e-6)


def test_chunks_of_elements_give_the_same_numbers(lr1, monkeypatch):
    """CHUNK_BYTES splits the stacked batch: whatever the chunks (one element per call is the
    loop that was), the same members in the same order, so the same bits."""
    from spinsr_tf.inference import uncertainty

    calls = []

    def skewed(x):                       # not equivariant: a fixed ramp along x
        calls.append(len(x))
        ramp = np.linspace(-0.5, 0.5, x.shape[2] * F)[None, None, :, None]
        return (upsample(x, F, "bicubic") + ramp).astype(np.float32)

    n_ops = len(group_ops("lattice", None, 1, lr1.shape[1:3]))
    per_element = lr1.size * F * F * 4          # bytes of SR output of one element
    results = {}
    for budget, geometry, n_calls in ((uncertainty.CHUNK_BYTES, None, 2),  # scale found first
                                      (uncertainty.CHUNK_BYTES, Degradation(F), 1),
                                      (3 * per_element, Degradation(F), -(-n_ops // 3)),
                                      (0, None, n_ops)):
        monkeypatch.setattr(uncertainty, "CHUNK_BYTES", budget)
        calls.clear()
        results[budget, n_calls] = symmetry_spread(skewed, lr1, degradation=geometry,
                                                   batch_size=len(lr1) * n_ops)
        assert len(calls) == n_calls and sum(calls) == n_ops * len(lr1)
    first = next(iter(results.values()))
    assert first[1].mean() > 0.01
    for sr, u in results.values():
        np.testing.assert_array_equal(sr, first[0])
        np.testing.assert_array_equal(u, first[1])


def test_uncertainty_is_the_rms_distance_to_the_reference(lr3, lr1):
    """Against members computed by hand. Reference "mean": C = 1 the standard deviation of the
    members, C = 3 sqrt(1 − |m|²) for unit members; "interpolation": the RMS distance to the
    aligned interpolation, spread² + departure²."""
    def skewed(x):                       # not equivariant: a fixed ramp along x
        ramp = np.linspace(-0.5, 0.5, x.shape[2] * F)[None, None, :, None]
        y = upsample(x, F, "bicubic") + ramp
        return (y / np.linalg.norm(y, axis=-1, keepdims=True) if x.shape[-1] == 3
                else y).astype(np.float32)

    for lr in (lr3, lr1):
        ops = group_ops("lattice", None, lr.shape[-1], lr.shape[1:3])
        members = np.stack([back_transform(skewed(apply(lr, op)), op, F) for op in ops])
        m = members.mean(0)
        sr, u = symmetry_spread(skewed, lr, options=SpreadOptions(reference="mean", smooth=0))
        if lr.shape[-1] == 1:
            np.testing.assert_allclose(u, members.std(0)[..., 0], atol=1e-5)
            np.testing.assert_allclose(sr, m, atol=1e-5)
        else:
            np.testing.assert_allclose(u, np.sqrt(1 - np.sum(m * m, axis=-1)), atol=1e-5)
            np.testing.assert_allclose(sr, m / np.linalg.norm(m, axis=-1, keepdims=True),
                                       atol=1e-5)
        assert u.mean() > 0.01
        ref = upsample(lr, F, "bicubic", normalize=True)
        want = np.sqrt(np.mean(np.sum((members - ref) ** 2, axis=-1), axis=0))
        _, dist = symmetry_spread(skewed, lr, options=SpreadOptions(smooth=0))
        np.testing.assert_allclose(dist, want, atol=1e-5)
        departure = np.sum((m - ref) ** 2, axis=-1)
        np.testing.assert_allclose(dist ** 2, u ** 2 + departure, atol=1e-5)
        smoothed = symmetry_spread(skewed, lr,
                                   options=SpreadOptions(reference="mean", smooth=SMOOTH))[1]
        assert smoothed.std() < u.std() and abs(np.mean(smoothed ** 2) - np.mean(u ** 2)) < 1e-3


def test_spread_over_models(lr1):
    fn = bicubic()
    half = lambda x: 0.5 * fn(x)          # noqa: E731  (equivariant too)
    spread_only = SpreadOptions(reference="mean", smooth=0)
    _, alone = symmetry_spread([fn, fn], lr1, options=spread_only)
    assert alone.max() < 1e-5
    sr, u = symmetry_spread([fn, half], lr1, options=spread_only)
    np.testing.assert_allclose(u, 0.25 * np.abs(fn(lr1)[..., 0]), atol=1e-5)
    np.testing.assert_allclose(sr, 0.75 * fn(lr1), atol=1e-5)


def test_bad_arguments(lr3, lr1):
    fn = bicubic()
    cases = [
        (lambda: symmetry_spread(fn, lr3[..., :2]), "C = 1 or 3"),
        (lambda: SpreadOptions(sr="median"), "sr must be one of"),
        (lambda: SpreadOptions(reference="hr"), "reference must be one of"),
        (lambda: SpreadOptions(shifts=[(0, 1, 2)]), "pairs"),
        (lambda: SpreadOptions(normalize=1), "True or False"),
        (lambda: symmetry_spread(fn, lr3, degradation="x4"), "must be a Degradation"),
        (lambda: symmetry_spread(fn, lr3, options={"sr": "mean"}), "SpreadOptions"),
        (lambda: symmetry_spread(fn, lr3, batch_size=0), "batch_size"),
        (lambda: SpreadOptions(smooth=-1.0), "smooth"),
        (lambda: symmetry_spread("model", lr3), "callable"),
        (lambda: symmetry_spread([], lr3), "non-empty"),
        (lambda: symmetry_spread(lambda x: x[:, :, 1:], lr3), "not to SR maps"),
        (lambda: symmetry_spread(fn, lr1, options=SpreadOptions(normalize=True)), "C = 3"),
        (lambda: symmetry_spread(fn, lr3, degradation=Degradation(2)), r"not to SR maps \(x2"),
        (lambda: symmetry_spread(fn, lr3, group="mirrors",
                                 hamiltonian={"type": "I", "dmi": 0.3, "dmi_kind": "bulk"}),
         "not a symmetry"),
    ]
    for call, message in cases:
        with pytest.raises(UserError, match=message):
            call()


# --- calibration ------------------------------------------------------------------------------


def test_calibration_of_known_relations():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    u = rng.uniform(size=(4, 32, 32))
    assert calibration(u, np.exp(3 * u)) == pytest.approx(1.0)
    assert calibration(u, -u) == pytest.approx(-1.0)
    assert abs(calibration(u, rng.uniform(size=u.shape))) < 0.05
    noisy = u + 0.3 * rng.normal(size=u.shape)
    assert calibration(u, noisy) == pytest.approx(spearmanr(u.ravel(), noisy.ravel())[0])
    ties = np.round(u, 1)
    assert calibration(ties, u) == pytest.approx(spearmanr(ties.ravel(), u.ravel())[0])
    with_nan = u.copy()
    with_nan[0, 0, 0] = np.nan
    assert calibration(with_nan, u) == pytest.approx(1.0)
    assert np.isnan(calibration(np.zeros_like(u), u))
    with pytest.raises(UserError, match="same shape"):
        calibration(u, u[:1])


def test_pixel_error_is_the_vector_distance():
    a, b = random_unit_spins((2, 8, 8, 3), 1), random_unit_spins((2, 8, 8, 3), 2)
    e = pixel_error(a, b)
    np.testing.assert_allclose(e, np.linalg.norm(a - b, axis=-1))
    np.testing.assert_allclose(np.mean(e ** 2, axis=(1, 2)), np.sum((a - b) ** 2, -1).mean((1, 2)))


def test_uncertainty_figure(tmp_path):
    u = np.random.default_rng(0).uniform(size=(2, 16, 16))
    path = uncertainty_figure(u, tmp_path / "u.png")
    with Image.open(path) as im:
        assert im.size[0] > 100
    with pytest.raises(UserError, match="shape"):
        uncertainty_figure(np.zeros((1, 1, 4, 4)), tmp_path / "bad.png")


# --- spinsr-tf upscale: the mean of the symmetric copies, --uncertainty -------------------------


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    import keras

    from spinsr_tf.nn.network import build_sr_model

    d = tmp_path_factory.mktemp("unc_models")
    out = {}
    for channels, padding in ((3, "periodic"), (1, "reflect")):
        keras.utils.set_random_seed(channels)
        path = d / f"c{channels}.keras"
        build_sr_model(Degradation(F, padding=padding), channels).save(path)
        out[channels] = path
    return out


def _run(capsys, *argv):
    code = main(["upscale", *map(str, argv)])
    return code, capsys.readouterr()


def test_cli_writes_the_uncertainty_and_refuses_to_overwrite(saved_models, lr3, tmp_path, capsys):
    from spinsr_tf.nn.network import load_sr_model

    np.save(tmp_path / "in.npy", lr3)
    argv = [tmp_path / "in.npy", "--model", saved_models[3], "--out", tmp_path / "sr.npy",
            "--uncertainty"]
    code, cap = _run(capsys, *argv)
    assert code == 0, cap.err
    # a model with no recorded Hamiltonian: quarter turns and the flip, no mirrors
    assert "8 symmetry element(s)" in cap.out and "periodic" in cap.out
    u = np.load(tmp_path / "sr.uncertainty.npy")
    assert u.shape == (2, 16 * F, 16 * F) and u.dtype == np.float32 and u.min() > 0
    assert (tmp_path / "sr.uncertainty.png").stat().st_size > 0
    sr, want = symmetry_spread(load_sr_model(saved_models[3], compile=False), lr3,
                               group=NO_REFLECTIONS["lattice"])
    np.testing.assert_allclose(u, want, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "sr.npy"), sr, atol=1e-5)

    files = lambda: {p.name: p.read_bytes() for p in tmp_path.iterdir()}     # noqa: E731
    outputs = sorted(set(files()) - {"in.npy"})
    assert {"sr.npy", "sr.uncertainty.npy", "sr.uncertainty.png"} <= set(outputs)
    for _ in outputs:                 # each output refused in one line, until none is left
        before = files()
        code, cap = _run(capsys, *argv)
        assert code == 2 and cap.err.count("\n") == 1, cap.err
        named = [name for name in outputs if f"/{name}' exists; pass --force" in cap.err]
        assert len(named) == 1 and files() == before, cap.err
        (tmp_path / named[0]).unlink()
    code, cap = _run(capsys, *argv, "--force")
    assert code == 0 and np.load(tmp_path / "sr.uncertainty.npy").shape == u.shape


def test_cli_uncertainty_of_an_image_with_borders(saved_models, tmp_path, capsys):
    img = np.random.default_rng(1).integers(0, 256, size=(8, 10), dtype=np.uint8)
    Image.fromarray(img, mode="L").save(tmp_path / "in.png")
    code, cap = _run(capsys, tmp_path / "in.png", "--model", saved_models[1], "--out",
                     tmp_path / "out.png", "--uncertainty")
    assert code == 0, cap.err
    assert "reflect" in cap.out and "8 symmetry element(s)" in cap.out    # not square: half turns
    assert np.load(tmp_path / "out.uncertainty.npy").shape == (1, 8 * F, 10 * F)
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (10 * F, 8 * F)


def test_one_group_per_map_runs_each_map_with_its_group(saved_models, lr3):
    """Maps of one call with different groups give what separate calls give; the count of
    groups is checked."""
    from spinsr_tf.nn.network import load_sr_model

    model = load_sr_model(saved_models[3], compile=False)
    sr, u = symmetry_spread(model, lr3, group=["lattice-in-field", "lattice"])
    for i, group in enumerate(["lattice-in-field", "lattice"]):
        want_sr, want_u = symmetry_spread(model, lr3[i:i + 1], group=group)
        np.testing.assert_allclose(sr[i:i + 1], want_sr, atol=1e-5)
        np.testing.assert_allclose(u[i:i + 1], want_u, atol=1e-5)
    with pytest.raises(UserError, match="one per map"):
        symmetry_spread(model, lr3, group=["lattice"])
    # a model trained under bulk DMI (no mirrors): the magnetised map's group follows it
    bulk = {"type": "I", "dmi_kind": "bulk"}
    _, u_bulk = symmetry_spread(model, lr3, group=["lattice-in-field", "lattice"],
                                hamiltonian=bulk)
    assert u_bulk.shape == u.shape


def test_cli_leaves_out_the_flip_of_a_magnetised_map(saved_models, lr3, tmp_path, capsys):
    """upscale --uncertainty: a map in a field (mean Sz > MAGNETISED) is averaged without the
    flip, said in one line and recorded; the other keeps it."""
    import h5py

    from spinsr_tf.inference.ensemble import MAGNETISED
    from spinsr_tf.nn.network import load_sr_model

    lr = lr3.copy()
    lr[1, ..., 2] += 1.5
    lr[1] /= np.linalg.norm(lr[1], axis=-1, keepdims=True)
    assert abs(lr[0, ..., 2].mean()) < MAGNETISED < lr[1, ..., 2].mean()
    np.save(tmp_path / "in.npy", lr)
    code, cap = _run(capsys, tmp_path / "in.npy", "--model", saved_models[3], "--out",
                     tmp_path / "sr.h5", "--uncertainty")
    assert code == 0, cap.err
    assert "1 of 2 map(s) magnetised" in cap.out
    groups = [NO_REFLECTIONS["lattice"], NO_REFLECTIONS["lattice-in-field"]]
    with h5py.File(tmp_path / "sr.h5", "r") as f:
        sr = f["sr"][...]
        assert json.loads(f.attrs["ensemble.groups"]) == groups
    want, _ = symmetry_spread(load_sr_model(saved_models[3], compile=False), lr, group=groups)
    np.testing.assert_allclose(sr, want, atol=1e-5)
    flipped, _ = symmetry_spread(load_sr_model(saved_models[3], compile=False), lr,
                                 group=NO_REFLECTIONS["lattice"])
    assert np.abs(sr[1] - flipped[1]).max() > 1e-4      # the flip would have changed map 1


# --- the bias of a model on its own result degraded again ------------------------------------


@pytest.mark.parametrize("channels,padding,pixel", [(3, "periodic", "sample"),
                                                    (1, "reflect", "integrate")])
def test_redegraded_uncertainty_is_spread_plus_the_error_on_the_result_degraded_again(
        lr3, lr1, channels, padding, pixel):
    """Recomputed here from its parts: the members' spread (reference "mean") and the distance
    of the members' mean on ``D(result)`` to the result, D written out with the model's
    settings (σ = 1.5, not the default; camera pixels for the scalar model)."""
    import keras

    from spinsr_tf.nn.network import build_sr_model

    keras.utils.set_random_seed(channels)
    own = Degradation(F, 1.5, pixel=pixel, padding=padding)
    model = build_sr_model(own, channels)
    lr = lr3 if channels == 3 else lr1
    sr, u = symmetry_spread(model, lr, options=SpreadOptions(smooth=0))   # a spinsr default
    sr_mean, spread = symmetry_spread(model, lr,
                                      options=SpreadOptions(reference="mean", smooth=0))
    np.testing.assert_array_equal(sr, sr_mean)
    again = gaussian_downsample(sr, F, 23, 1.5, padding, pixel=pixel)
    second, _ = symmetry_spread(model, again, options=SpreadOptions(reference="mean"))
    bias2 = np.sum((second.astype(np.float64) - sr) ** 2, axis=-1)
    want = np.sqrt(spread.astype(np.float64) ** 2 + bias2)
    np.testing.assert_allclose(u, want, rtol=1e-4, atol=1e-6)
    assert np.abs(u - spread).max() > 0.1 * u.max()               # the bias term counts
    # by default spins are smoothed over SMOOTH pixels, a scalar image's map is per pixel
    default = symmetry_spread(model, lr)[1]
    smoothed = local_rms(u, SMOOTH, padding == "periodic")
    np.testing.assert_allclose(default, u if channels == 1 else smoothed, rtol=1e-4, atol=1e-6)
    assert np.abs(smoothed - u).max() > 0.1 * u.max()             # the two defaults differ
    # a second model of another sigma: the models disagree on the degradation, said in one line
    blurrier = build_sr_model(own.replace(sigma=2.0), channels)
    with pytest.raises(UserError, match="disagree on degradation"):
        symmetry_spread([model, blurrier], lr)
    # a degradation given with the model must be the model's own (checked before predicting)
    other = "reflect" if padding == "periodic" else "periodic"
    for given, message in ((own.replace(padding=other), f"padding={other!r} but a model"),
                           (own.replace(sigma=2.0), r"\(kernel_size, sigma\)=\(23, 2.0\) but"),
                           (own.replace(factor=2), "factor=2 but a model")):
        with pytest.raises(UserError, match=message):
            symmetry_spread(model, lr, degradation=given)


def test_redegraded_needs_a_degradation_layer(lr3):
    with pytest.raises(UserError, match="needs spinsr models"):
        symmetry_spread(bicubic(), lr3, options=SpreadOptions(reference="redegraded"))
    # a plain callable gets the interpolation reference by default
    _, u = symmetry_spread(bicubic(), lr3)
    _, want = symmetry_spread(bicubic(), lr3, options=SpreadOptions(reference="interpolation"))
    np.testing.assert_array_equal(u, want)


def test_upscale_writes_the_mean_of_the_symmetric_copies_by_default(saved_models, lr3, tmp_path,
                                                                   capsys):
    """Without flags the output is ``symmetric_mean``'s map (not the one pass), said in the
    summary line and recorded; ``--single-pass`` is the network's own output."""
    from spinsr_tf.nn.export import serving_model
    from spinsr_tf.nn.network import load_sr_model

    model = load_sr_model(saved_models[3], compile=False)
    np.save(tmp_path / "in.npy", lr3)
    code, cap = _run(capsys, tmp_path / "in.npy", "--model", saved_models[3], "--out",
                     tmp_path / "mean.npy")
    assert code == 0, cap.err
    assert cap.out.strip().splitlines()[-1].endswith("; the mean of the symmetric copies")
    want, spread, groups = symmetric_mean(model, lr3)
    assert spread is None and groups == [NO_REFLECTIONS["lattice"]] * 2
    np.testing.assert_allclose(np.load(tmp_path / "mean.npy"), want, atol=1e-5)
    record = json.loads((tmp_path / "mean.degradation.json").read_text())
    assert record["ensemble"] == {"groups": groups}
    assert not (tmp_path / "mean.uncertainty.npy").exists()

    code, cap = _run(capsys, tmp_path / "in.npy", "--model", saved_models[3], "--out",
                     tmp_path / "one.npy", "--single-pass")
    assert code == 0 and cap.out.strip().endswith("; one pass")
    one = np.load(tmp_path / "one.npy")
    np.testing.assert_allclose(one, serving_model(model).predict(lr3, verbose=0), atol=1e-5)
    assert np.abs(one - want).max() > 1e-3
    assert json.loads((tmp_path / "one.degradation.json").read_text())["ensemble"] == \
        "single pass"


def test_uncertainty_with_a_single_pass_is_refused(saved_models, lr3, tmp_path, capsys):
    np.save(tmp_path / "in.npy", lr3)
    code, cap = _run(capsys, tmp_path / "in.npy", "--model", saved_models[3], "--out",
                     tmp_path / "sr.npy", "--uncertainty", "--single-pass")
    assert code == 2 and cap.err.count("\n") == 1 and "--single-pass" in cap.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


@pytest.mark.parametrize("name, group", [("type-I-x4", "lattice"),
                                         ("universal-x4", NO_REFLECTIONS["lattice"])])
def test_a_recorded_hamiltonian_keeps_its_mirrors_and_a_mixture_none(name, group, tmp_path,
                                                                      capsys):
    """type-I-x4 records its interfacial-DMI Hamiltonian (mirrors are symmetries of it); a
    universal model records none (its Bloch maps' mirror images are the other chirality)."""
    import h5py

    lr = random_unit_spins((1, 8, 8, 3), 5)
    np.save(tmp_path / "in.npy", lr)
    code, cap = _run(capsys, tmp_path / "in.npy", "--model", f"pretrained:{name}", "--out",
                     tmp_path / "sr.h5")
    assert code == 0, cap.err
    assert f"{16 if group == 'lattice' else 8} symmetry element(s)" in cap.out
    with h5py.File(tmp_path / "sr.h5", "r") as f:
        assert json.loads(f.attrs["ensemble.groups"]) == [group]


def test_the_mean_is_refused_where_memory_holds_only_one_pass(saved_models, lr3, tmp_path,
                                                              capsys, monkeypatch):
    """Memory for one pass but not for the streamed moments: one line naming --single-pass,
    nothing written; --single-pass runs."""
    from spinsr_tf.cli.upscale import SYMMETRIC_MEMORY
    from spinsr_tf.data import io as io_module

    sr_bytes = lr3.size * F * F * 4
    monkeypatch.setattr(io_module, "available_memory", lambda: 8 * sr_bytes)
    assert 4 < 8 < SYMMETRIC_MEMORY
    np.save(tmp_path / "in.npy", lr3)
    argv = [tmp_path / "in.npy", "--model", saved_models[3], "--out", tmp_path / "sr.npy"]
    code, cap = _run(capsys, *argv)
    assert code == 2 and cap.err.count("\n") == 1 and "--single-pass needs less" in cap.err
    assert not (tmp_path / "sr.npy").exists()
    code, cap = _run(capsys, *argv, "--single-pass")
    assert code == 0, cap.err
