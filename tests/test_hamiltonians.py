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


# --- the interface ------------------------------------------------------------------------------


def test_registry_by_name_and_file_code():
    from spinsr_tf.physics import REGISTRY, hamiltonian_by_name

    assert REGISTRY == {"typeI": TypeI, "typeII": TypeII}
    assert hamiltonian_by_name("typeI", dmi=0.2) == TypeI(dmi=0.2)
    assert hamiltonian_by_name("II", anisotropy=0.1) == TypeII(anisotropy=0.1)
    assert hamiltonian_from_attrs({"type": "typeI", "dmi": 0.1}) == TypeI(dmi=0.1)
    assert [cls().kind for cls in REGISTRY.values()] == ["typeI", "typeII"]
    for call, word in [(lambda: hamiltonian_by_name("typeIII"), "typeI"),
                       (lambda: hamiltonian_by_name("typeI", anisotropy=0.1), "anisotropy"),
                       (lambda: TypeII().replace(dmi=0.3), "no parameter 'dmi'")]:
        with pytest.raises(UserError, match=word) as info:
            call()
        assert "\n" not in str(info.value)
    assert TypeI().replace(dmi=0.1, dmi_kind="bulk") == TypeI(dmi=0.1, dmi_kind="bulk")


def test_terms_are_the_parameters():
    t = TypeI(J=0.5, dmi=0.2, dmi_kind="bulk").terms()
    assert (t.J, t.anisotropy, t.field, t.dipolar) == (0.5, 0.0, (0.0, 0.0, 0.0), 0.0)
    np.testing.assert_array_equal(np.concatenate(t.dmi_vectors()),
                                  np.concatenate(TypeI(dmi=0.2, dmi_kind="bulk").dmi_vectors()))
    t = TypeII(dipolar_form="printed", dipolar_images="minimum").terms()
    assert (t.anisotropy, t.dipolar, t.dipolar_factor, t.dipolar_images, t.has_dmi) == (
        0.215, 0.03, 1.0, "minimum", False)
    assert hash(t) == hash(TypeII(dipolar_form="printed", dipolar_images="minimum").terms())


MIRROR = (np.diag([-1.0, 1.0, 1.0]), np.diag([-1.0, 1.0]))          # x → −x, Sx → −Sx
FLIPOVER = (np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, 1.0]))       # and Sz → −Sz
TURN = (np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]), np.array([[0.0, -1], [1, 0]]))
SPINS_ONLY_TURN = (TURN[0], np.eye(2))
FLIP = (-np.eye(3), np.eye(2))


@pytest.mark.parametrize("ham, kept", [
    (TypeI(), {"mirror", "turn", "flip"}),
    (TypeI(dmi_kind="bulk"), {"flipover", "turn", "flip"}),
    (TypeI(dmi=0.0), {"mirror", "flipover", "turn", "flip", "spins_only_turn"}),
    (TypeII(), {"mirror", "flipover", "turn", "flip"}),
    (TypeII(dipolar=0.0), {"mirror", "flipover", "turn", "flip", "spins_only_turn"}),
])
def test_each_hamiltonian_says_which_operations_keep_it(ham, kept):
    """The table of the nn.symmetry docstring, answered from the terms (energy invariance of
    the same operations is tested in tests/test_symmetry.py)."""
    ops = {"mirror": MIRROR, "flipover": FLIPOVER, "turn": TURN, "flip": FLIP,
           "spins_only_turn": SPINS_ONLY_TURN}
    assert {name for name, (P, A) in ops.items() if ham.keeps(P, A)} == kept
    assert ham.flip_symmetric


def test_default_schedule_overrides_come_from_the_hamiltonian():
    assert TypeI().schedule_defaults() == {}
    assert TypeII().schedule_defaults()["relax_sweeps"] == 200
