"""The unit conversion to Spirit (benchmarks/foreign_textures.py), checked by energies.

The same random configuration is set in Spirit and in the package; the total energies in units
of J must agree term by term (exchange, Néel and Bloch DMI, anisotropy, Zeeman, dipolar, open
edges). A wrong sign, unit, chirality or site ordering changes the energy of a random
configuration by far more than the agreement. Spirit (``pip install spirit``, a 1.4 MB wheel) is
in the ``test`` and ``benchmarks`` extras.
"""

import math
import platform

import numpy as np
import pytest
from conftest import benchmark_module

from spinsr_tf.physics import TypeI, TypeII, energy, with_field

if platform.system() == "Linux" and platform.machine() != "x86_64":
    pytest.skip("Spirit has no wheel for Linux on this machine", allow_module_level=True)
import spirit  # noqa: E402,F401  (a test dependency: fail here, loudly, if it is missing)

ft = benchmark_module("foreign_textures")

# non-square, so that a transposed site order cannot pass
SHAPE = (12, 16)


@pytest.fixture(scope="module")
def spins():
    return ft.random_spins(SHAPE, seed=7)


def _open(s):
    """A map padded by one row and column of zero vectors: the package's periodic energy of it
    is the open-boundary energy of ``s`` (the wrap-around bonds meet zeros)."""
    return np.pad(s, ((0, 1), (0, 1), (0, 0)))


def test_site_order_round_trip(spins):
    with ft.spirit_state(ft.Material(), SHAPE) as p_state:
        ft.set_spins(p_state, spins)
        back = ft.get_spins(p_state, SHAPE)
        from spirit import geometry

        pos = np.array(geometry.get_positions(p_state)).reshape(*SHAPE, 3)  # a copy
    np.testing.assert_allclose(back, spins, atol=1e-12)
    # spins[i, j] sits at x = j, y = i
    np.testing.assert_array_equal(pos[3, 5, :2], [5.0, 3.0])


@pytest.mark.parametrize("kind", ["interfacial", "bulk"])
@pytest.mark.parametrize("dmi", [0.37, -0.2])
def test_exchange_and_dmi_energy(spins, kind, dmi):
    m = ft.Material(J=1.2, dmi=dmi, dmi_kind=kind)
    want = energy(spins, TypeI(J=1.2, dmi=dmi, dmi_kind=kind))
    assert ft.spirit_energy(spins, m) == pytest.approx(want, rel=1e-6, abs=1e-6)
    # the other chirality's energy differs by far more than the agreement (~1e-5)
    other = energy(spins, TypeI(J=1.2, dmi=-dmi, dmi_kind=kind))
    assert abs(other - want) > 0.1


def test_anisotropy_energy(spins):
    m = ft.Material(J=0.9, anisotropy=0.23)
    want = energy(spins, TypeII(J=0.9, dipolar=0.0, anisotropy=0.23))
    assert ft.spirit_energy(spins, m) == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_zeeman_energy(spins):
    """Zeeman ``-h Σ Sz`` (units of J): Spirit's field in tesla times μ_s μ_B."""
    h = 0.07
    want = energy(spins, with_field(TypeI(J=1.1, dmi=0.3), h))
    assert want - energy(spins, TypeI(J=1.1, dmi=0.3)) == pytest.approx(-h * spins[..., 2].sum())
    # Spirit stores the field as a C float: relative error ~1e-7 of the Zeeman part
    got = ft.spirit_energy(spins, ft.Material(J=1.1, dmi=0.3, field=h))
    assert got == pytest.approx(want, rel=1e-6, abs=1e-5)
    want = energy(spins, with_field(TypeII(dipolar=0.0, anisotropy=0.2), -h))
    got = ft.spirit_energy(spins, ft.Material(anisotropy=0.2, field=-h))
    assert got == pytest.approx(want, rel=1e-6, abs=1e-5)


def test_open_edges_energy(spins):
    m = ft.Material(dmi=0.3, anisotropy=0.1, periodic=False)
    want = (energy(_open(spins), TypeI(dmi=0.3))
            - 0.1 * np.sum(spins[..., 2] ** 2))
    assert ft.spirit_energy(spins, m) == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert abs(want - energy(spins, TypeI(dmi=0.3))) > 1.0


def test_dipolar_energy_open_film():
    """Spirit's dipolar sum (open edges: exact, no images) equals the brute-force
    ``dipolar Σ_{i<j} [Si·Sj - 3 (Si·r̂)(Sj·r̂)] / r³`` with r in lattice sites."""
    shape = (6, 7)
    s = ft.random_spins(shape, seed=3)
    d = 0.13
    base = ft.spirit_energy(s, ft.Material(periodic=False))
    with_ddi = ft.spirit_energy(s, ft.Material(dipolar=d, periodic=False))
    y, x = np.mgrid[:shape[0], :shape[1]]
    pos = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1).astype(float)
    v = s.reshape(-1, 3)
    e = 0.0
    for i in range(len(v)):
        for j in range(i + 1, len(v)):
            r = pos[j] - pos[i]
            dist = math.sqrt(r @ r)
            rh = r / dist
            e += d * (v[i] @ v[j] - 3 * (v[i] @ rh) * (v[j] @ rh)) / dist ** 3
    assert with_ddi - base == pytest.approx(e, rel=1e-4)


def test_conversion_values():
    """The conversion itself, in numbers: 1 J = 1 meV, h = μ_s μ_B B, Bloch sign flipped."""
    p = ft.spirit_parameters(ft.Material(J=1.0, dmi=0.3, dmi_kind="bulk", field=0.1,
                                         anisotropy=0.2), energy_unit_mev=2.0, mu_s=3.0)
    assert p["jij"] == 2.0 and p["dij"] == pytest.approx(-0.6) and p["dm_chirality"] == 1
    assert p["anisotropy_magnitude"] == pytest.approx(0.4)
    assert p["external_field_magnitude"] * 3.0 * ft.MU_B_MEV_PER_T == pytest.approx(0.2)
    assert ft.spirit_parameters(ft.Material(dmi=0.3))["dij"] == pytest.approx(0.3)


def test_relax_lowers_energy_and_caches(tmp_path):
    """A relaxed map is a low-energy, low-torque state of the package's own Hamiltonian, and a
    second call reads it back from the cache unchanged."""
    from spinsr_tf.physics import max_torque

    fam = ft.FAMILIES["neel_short"]
    spins, rec = ft.load_or_make("neel_short", "tune", 0, 32, tmp_path)
    m = fam.tune[0]
    ham = TypeI(dmi=m.dmi, dmi_kind=m.dmi_kind)
    assert spins.shape == (32, 32, 3) and spins.dtype == np.float32
    assert rec["converged"] and rec["seed"] == ft.map_seed("neel_short", "tune", 0)
    assert max_torque(spins, ham) < 1e-3
    assert energy(spins, ham) < energy(ft.random_spins((32, 32), rec["seed"]), ham) - 1000
    again, rec2 = ft.load_or_make("neel_short", "tune", 0, 32, tmp_path)
    np.testing.assert_array_equal(again, spins)
    assert rec2 == rec
    assert ft.map_seed("neel_short", "heldout", 0) != rec["seed"]


@pytest.mark.slow
def test_benchmark_scores_match_evaluate(tmp_path):
    """The benchmark's model and baseline scores, one pass (``--single-pass``), are the
    package's own evaluation (:func:`spinsr_tf.evaluation.scoring.evaluate`) of the same maps
    with the same model, and its JSON records what made each map."""
    import json

    from spinsr_tf.evaluation.scoring import evaluate
    from spinsr_tf.nn.network import load_sr_model

    gen = benchmark_module("generalization")
    out = tmp_path / "g.json"
    assert gen.main(["--families", "neel_short", "--models", "type-I-x4", "--n", "1",
                     "--size", "32", "--home-n", "0", "--cache", str(tmp_path / "cache"),
                     "--json", str(out), "--single-pass"]) == 0
    result = json.loads(out.read_text())
    assert result["upscale"] == "single pass"
    part = result["families"]["neel_short"]["parts"]["heldout"]
    assert part["records"][0]["material"]["dmi"] == 0.40
    assert part["records"][0]["spirit_version"].startswith("2.")
    got = part["scores"]["type-I-x4"]
    hr, _ = ft.family_maps("neel_short", "heldout", 1, 32, tmp_path / "cache")
    ref = evaluate(hr, {"sr": load_sr_model("pretrained:type-I-x4", compile=False)})["methods"]
    assert got["bicubic_norm"]["psnr"] == pytest.approx(ref["bicubic_norm"]["psnr"], abs=1e-6)
    assert got["model"]["psnr"] == pytest.approx(ref["sr"]["psnr"], abs=1e-3)
    assert got["gain"] == pytest.approx(ref["sr"]["psnr"] - ref["bicubic_norm"]["psnr"], abs=1e-3)


def test_fit_noise_levels_are_checked_before_any_work(tmp_path, capsys):
    """``--fit-noise`` takes one fit per level; a negative or infinite level is refused by the
    argument check (exit 2), before a map is made."""
    gen = benchmark_module("generalization")
    for bad in ("-0.01", "inf"):
        with pytest.raises(SystemExit) as exit_:
            gen.main(["--fit-image", "--fit-noise", "0.05", bad, "--cache",
                      str(tmp_path / "cache")])
        assert exit_.value.code == 2
        assert "--fit-noise must be finite and >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        gen.main(["--fit-image", "--fit-map", "-1", "--cache", str(tmp_path / "cache")])
    assert exit_.value.code == 2 and "--fit-map must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_train_defaults_learn_from_the_tune_maps_only_and_resume(tmp_path, capsys):
    """``--train 4``: ``spinsr-tf train`` at its defaults on the tune maps of the families (the
    held-out maps never in its data), scored like a shipped model; with ``--train-dir`` a
    second run finds the finished run and trains no further."""
    import json

    import h5py

    gen = benchmark_module("generalization")
    argv = ["--families", "neel_short", "bloch", "--models", "type-I-x4", "--n", "1",
            "--size", "32", "--home-n", "0", "--cache", str(tmp_path / "cache"),
            "--train", "4", "--train-epochs", "1", "--train-dir", str(tmp_path / "runs")]
    assert gen.main([*argv, "--json", str(tmp_path / "g.json")]) == 0
    assert "### train-defaults-x4: x4" in capsys.readouterr().out
    result = json.loads((tmp_path / "g.json").read_text())
    assert result["train"]["train-defaults-x4"]["maps"] == 2
    for fam in ("neel_short", "bloch"):
        for part in ("tune", "heldout"):
            assert "train-defaults-x4" in result["families"][fam]["parts"][part]["scores"]
    (data,) = (tmp_path / "runs").glob("*.h5")
    with h5py.File(data, "r") as f:
        spins = f["spins"][...]
    tune = [ft.family_maps(fam, "tune", 1, 32, tmp_path / "cache")[0] for fam in
            ("neel_short", "bloch")]
    np.testing.assert_array_equal(spins, np.concatenate(tune).astype(np.float32))
    history = (tmp_path / "runs" / "train-x4" / "history.csv").read_text()
    assert gen.main(argv) == 0
    assert (tmp_path / "runs" / "train-x4" / "history.csv").read_text() == history


def test_train_factors_are_checked_before_any_work(tmp_path, capsys):
    gen = benchmark_module("generalization")
    for bad in (["--train", "3"], ["--train", "4", "--train-epochs", "0"]):
        with pytest.raises(SystemExit) as exit_:
            gen.main([*bad, "--cache", str(tmp_path / "cache")])
        assert exit_.value.code == 2
        assert "--train" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
