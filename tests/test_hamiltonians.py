import dataclasses
import math

import h5py
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics import TypeI, TypeII, hamiltonian_from_attrs


def test_defaults_are_the_papers_parameters():
    assert (TypeI().J, TypeI().dmi, TypeI().dmi_kind) == (1.0, 0.3, "interfacial")
    h = TypeII()
    assert (h.J, h.dipolar, h.anisotropy, h.dipolar_form) == (1.0, 0.03, 0.215, "standard")
    assert h.dipolar_factor == 3.0 and TypeII(dipolar_form="printed").dipolar_factor == 1.0


@pytest.mark.parametrize("kind", ["interfacial", "bulk"])
def test_dmi_vectors_follow_the_bond_direction(kind):
    x, y, z = np.eye(3)
    dx, dy = TypeI(dmi=0.7, dmi_kind=kind).dmi_vectors()
    if kind == "interfacial":
        expect = 0.7 * np.cross(z, x), 0.7 * np.cross(z, y)
    else:
        expect = 0.7 * x, 0.7 * y
    np.testing.assert_allclose(dx, expect[0])
    np.testing.assert_allclose(dy, expect[1])


def test_helix_period_is_two_pi_over_arctan():
    assert TypeI().helix_period() == pytest.approx(2 * math.pi / math.atan(0.3))
    assert TypeI().helix_period() == pytest.approx(21.55, abs=0.01)
    assert TypeI(dmi=0.0).helix_period() == math.inf


@pytest.mark.parametrize("ham", [TypeI(), TypeI(J=0.5, dmi=-0.2, dmi_kind="bulk"), TypeII(),
                                 TypeII(J=2.0, dipolar=0.0, anisotropy=-0.1,
                                        dipolar_form="printed"),
                                 TypeII(dipolar_images="minimum")])
def test_attrs_round_trip_through_hdf5(tmp_path, ham):
    attrs = ham.to_attrs()
    assert attrs["type"] == ("I" if isinstance(ham, TypeI) else "II")
    assert all(isinstance(v, (str, float, int)) for v in attrs.values())
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs)
        f.attrs["unrelated"] = 5
    with h5py.File(path, "r") as f:
        back = hamiltonian_from_attrs(dict(f.attrs))
    assert back == ham and type(back) is type(ham)
    assert hamiltonian_from_attrs({k: v.encode() if isinstance(v, str) else np.float64(v)
                                   for k, v in attrs.items()}) == ham


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TypeI().dmi = 0.1


@pytest.mark.parametrize("make, word", [
    (lambda: TypeI(J=float("nan")), "J"),
    (lambda: TypeI(dmi="0.3"), "dmi"),
    (lambda: TypeI(dmi_kind="neel"), "dmi_kind"),
    (lambda: TypeII(dipolar=-0.01), "dipolar"),
    (lambda: TypeII(anisotropy=float("inf")), "anisotropy"),
    (lambda: TypeII(dipolar_form="paper"), "dipolar_form"),
    (lambda: TypeII(dipolar_images="ewald"), "dipolar_images"),
    (lambda: TypeII(J=True), "J"),
    (lambda: hamiltonian_from_attrs({"J": 1.0}), "type"),
    (lambda: hamiltonian_from_attrs({"type": "III"}), "type"),
    (lambda: hamiltonian_from_attrs({"type": "I", "dmi_kind": "x"}), "dmi_kind"),
])
def test_invalid_values_raise_one_line_user_errors(make, word):
    with pytest.raises(UserError, match=word) as info:
        make()
    assert "\n" not in str(info.value)


def test_type_ii_attrs_written_before_the_image_sum_read_as_minimum_image():
    old = {"type": "II", "J": 1.0, "dipolar": 0.03, "anisotropy": 0.215,
           "dipolar_form": "standard"}
    assert hamiltonian_from_attrs(old).dipolar_images == "minimum"
    assert TypeII().dipolar_images == "converged"
    assert hamiltonian_from_attrs(TypeII().to_attrs()) == TypeII()
