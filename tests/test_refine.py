"""Per-image physics refinement: objective, constraint, recovery of a relaxed texture."""

import numpy as np
import pytest

from spinsr_tf.data.interpolation import upsample
from spinsr_tf.data.degradation import Degradation, gaussian_downsample
from spinsr_tf.base.errors import UserError
from spinsr_tf.evaluation.metrics import psnr
from spinsr_tf.physics import TypeI, anneal, energy
from spinsr_tf.inference.refine import objective, refine


@pytest.fixture(scope="module")
def labyrinth():
    """One relaxed 64² Type I texture (period ≈ 21.6 sites) and its ×8 LR map."""
    hr = anneal(TypeI(), 64, seed=3, indices=[0])
    return hr, gaussian_downsample(hr, 8)


def test_refinement_recovers_a_relaxed_texture_that_interpolation_cannot(labyrinth):
    hr, lr = labyrinth
    bicubic = upsample(lr, 8, "bicubic", normalize=True)
    sr, hist = refine(lr, TypeI(), 0.1, 8, steps=300, return_history=True)
    assert np.allclose(np.linalg.norm(sr, axis=-1), 1, atol=1e-5)
    assert psnr(sr, hr)[0] > psnr(bicubic, hr)[0] + 15
    # the data are still reproduced and the energy approaches that of the relaxed truth
    assert hist["data"][-1, 0] < 1e-6
    assert hist["energy"][-1, 0] < objective(hr, lr, TypeI(), 0, 8).energy[0] + 1e-3
    # the recorded energy (-1/2 Σ m·h) is the energy of the returned maps
    np.testing.assert_allclose(hist["energy"][-1], energy(sr.astype(np.float64), TypeI()) / 64 ** 2,
                               rtol=1e-5)


def test_without_prior_the_lr_data_are_fitted(labyrinth):
    hr, lr = labyrinth
    sr, hist = refine(lr, TypeI(), 0.0, 8, steps=100, return_history=True)
    assert hist["data"][-1, 0] < 0.05 * hist["data"][0, 0]


def test_masked_lr_pixels_do_not_enter_the_data_term(labyrinth):
    _, lr = labyrinth
    mask = np.ones(lr.shape[:3])
    mask[0, 3, 4] = 0
    other = lr.copy()
    other[0, 3, 4] = [1.0, 0.0, 0.0]
    a = refine(lr, TypeI(), 0.01, 8, start=upsample(lr, 8), steps=30, mask=mask)
    b = refine(other, TypeI(), 0.01, 8, start=upsample(lr, 8), steps=30, mask=mask)
    np.testing.assert_array_equal(a, b)


def test_batch_equals_maps_one_by_one(labyrinth):
    _, lr = labyrinth
    pair = np.concatenate([lr, np.roll(lr, 2, axis=1)])
    both = refine(pair, TypeI(), 0.01, 8, steps=25)
    np.testing.assert_allclose(both[1], refine(pair[1], TypeI(), 0.01, 8, steps=25), atol=1e-6)


def test_bad_input_is_one_clear_error(labyrinth):
    _, lr = labyrinth
    for kwargs, message in [({"lr": lr[..., :2]}, "shape"),
                            ({"lr": np.where(lr > 0.9, np.nan, lr)}, "NaN"),
                            ({"start": np.zeros((1, 32, 32, 3))}, "start must have shape"),
                            ({"weight": -1.0}, "weight"),
                            ({"steps": 1.5}, "steps"),
                            ({"mask": np.zeros(lr.shape[:3])}, "mask")]:
        args = {"lr": lr, "hamiltonian": TypeI(), "weight": 0.01, "degradation": 8, "steps": 2,
                **kwargs}
        with pytest.raises(UserError, match=message):
            refine(**args)


def test_camera_pixel_data_are_refined_against_camera_pixels(labyrinth):
    """LR maps of camera pixels (the f×f block mean of the blurred map): with their degradation
    the truth fits them exactly and the refinement's start is placed on the block centres; the
    point-sampling operator (what refinement used for every model before) misfits the truth."""
    hr, _ = labyrinth
    camera = Degradation(8, pixel="integrate")
    lr = camera.apply(hr)
    _, hist = refine(lr, TypeI(), 0.0, camera, start=hr, steps=0, return_history=True)
    assert hist["data"][0, 0] < 1e-13
    assert objective(hr, lr, TypeI(), 0, camera).data[0] < 1e-13
    assert objective(hr, lr, TypeI(), 0, Degradation(8)).data[0] > 1e-3
    start = refine(lr, TypeI(), 0.0, camera, steps=0)
    np.testing.assert_allclose(start, upsample(lr, 8, normalize=True, pixel="integrate"),
                               atol=1e-6)


def test_camera_pixel_refinement_recovers_the_texture_only_with_its_operator(labyrinth):
    hr, _ = labyrinth
    camera = Degradation(8, pixel="integrate")
    lr = camera.apply(hr)
    right = refine(lr, TypeI(), 0.1, camera, steps=150)
    wrong = refine(lr, TypeI(), 0.1, Degradation(8), steps=150)
    bicubic = camera.upsample(lr, normalize=True)
    assert psnr(right, hr)[0] > psnr(bicubic, hr)[0] + 10
    assert psnr(right, hr)[0] > psnr(wrong, hr)[0] + 10


def test_refinement_needs_a_periodic_degradation(labyrinth):
    _, lr = labyrinth
    with pytest.raises(UserError, match="periodic"):
        refine(lr, TypeI(), 0.01, Degradation(8, padding="reflect"), steps=1)
    with pytest.raises(UserError, match="degradation"):
        refine(lr, TypeI(), 0.01, 8.0, steps=1)
