"""Mixtures: spec parsing and validation, per-map draws from (seed, index), per-map records that
describe the stored maps, no numba recompilation per map, CLI refusals."""

import json

import h5py
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data.generate import (dataset_attrs, generate_dataset, map_hamiltonians,
                                     read_map_params, read_spins)
from spinsr_tf.data.mixture import (PRESETS, Choice, LogUniform, Mixture, Uniform, map_record,
                                    record_hamiltonian)
from spinsr_tf.physics import (Schedule, TypeI, TypeII, anneal, max_torque, saturation_field,
                               with_boundary, with_field)

CHIRAL = "type=I,dmi=0.25..0.6,dmi_kind=interfacial|bulk,field=-0.6..0.6,boundary=periodic|open"
OVERRIDES = {"sweeps": 40}


@pytest.mark.parametrize("spec", [*PRESETS, CHIRAL, "universal,field=0,dmi=0.2..0.3",
                                  "universal,dmi=0.1..0.73:log",
                                  "universal,dipolar=0.025..0.1,k_eff=-0.02..0.1"])
def test_spec_and_json_round_trips(spec):
    m = Mixture.parse(spec)
    assert Mixture.parse(m.spec()) == m
    assert Mixture.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_parse_reads_ranges_weights_and_preset_overrides():
    m = Mixture.parse("universal,field=0,type=I:1|II:3")
    assert m["field"] == Choice((0.0,), (1.0,))
    assert m["type"] == Choice(("I", "II"), (1.0, 3.0))
    assert m["dmi"] == Uniform(0.1, 0.73)          # kept from the preset
    assert Mixture.parse("type=II")["dmi_kind"] == Choice(("interfacial",), (1.0,))  # default


@pytest.mark.parametrize("spec, message", [
    ("", "preset"),
    ("nosuch", "unknown preset"),
    ("type=I,colour=red", "unknown parameter 'colour'"),
    ("dmi=0.5..0.2", "empty or inverted"),
    ("dmi=0.3..0.3", "empty or inverted"),
    ("dmi=0.3..", "empty range"),
    ("dmi=0..0.5:log", "must be > 0"),
    ("dmi=0.5..0.2:log", "empty or inverted"),
    ("dmi=-0.1..0.3", "dmi must lie in [0, 1]"),
    ("dmi=0.2..2", "dmi must lie in [0, 1]"),
    ("field=0..1", "saturation"),
    ("field=-1", "saturation"),
    ("dipolar=0.5", "dipolar must lie"),
    ("anisotropy=nan", "finite"),
    ("dmi=abc", "needs numbers"),
    ("type=III", "type must be one of I|II"),
    ("type=I:0|II", "weight"),
    ("type=I|I", "twice"),
    ("boundary=periodic..open", "not a range"),
    ("type=II,boundary=open", "Type I maps"),
    ("type=I,universal", "not name=value"),
    ("k_eff=0.5", "k_eff must lie in [-0.3, 0.3]"),
    ("type=II,anisotropy=0.2,k_eff=0.01", "one of anisotropy and k_eff"),
    ("universal,anisotropy=0.2,k_eff=0.01", "one of anisotropy and k_eff"),
    ("type=II,dipolar=0.01,k_eff=-0.1", "outside [0, 1]"),
])
def test_bad_specs_are_one_line_user_errors(spec, message):
    with pytest.raises(UserError, match=None) as info:
        Mixture.parse(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_log_uniform_draws_equal_weight_per_octave():
    """0.1..0.8:log spans three octaves: each holds a third of the draws (a uniform draw puts
    1/7 of them in the first); every draw lies in the range."""
    m = Mixture.parse("type=I,dmi=0.1..0.8:log")
    assert m["dmi"] == LogUniform(0.1, 0.8)
    d = np.array([m.draw(5, k)["dmi"] for k in range(3000)])
    assert d.min() >= 0.1 and d.max() < 0.8
    per_octave = np.histogram(d, bins=[0.1, 0.2, 0.4, 0.8])[0] / len(d)
    np.testing.assert_allclose(per_octave, 1 / 3, atol=0.03)


def test_draws_are_a_pure_function_of_seed_and_index():
    m = Mixture.parse("universal")
    a = [m.draw(7, k) for k in range(300)]
    assert a == [m.draw(7, k) for k in range(300)]
    assert a != [m.draw(8, k) for k in range(300)]
    # each parameter has its own stream: changing one leaves the others' draws unchanged
    other = Mixture.parse("universal,field=-0.3..0.2")
    assert [d["dmi"] for d in a] == [other.draw(7, k)["dmi"] for k in range(300)]
    dmi = np.array([d["dmi"] for d in a])
    assert 0.1 <= dmi.min() and dmi.max() < 0.73 and np.ptp(dmi) > 0.5
    types = np.array([d["type"] for d in a])
    assert abs(np.mean(types == "I") - 0.75) < 0.08       # weights I:3 | II:1


def test_map_hamiltonians_follow_the_draws():
    m = Mixture.parse("universal")
    for k in range(40):
        d, ham = m.draw(3, k), m.hamiltonian(3, k)
        if d["type"] == "I":
            base = TypeI(dmi=d["dmi"], dmi_kind=d["dmi_kind"])
            expect = with_field(with_boundary(base, d["boundary"]),
                                d["field"] * saturation_field(base))
        else:      # Type II maps are periodic whatever boundary was drawn
            base = TypeII(dipolar=d["dipolar"], anisotropy=d["anisotropy"])
            expect = with_field(base, d["field"] * saturation_field(base))
        assert ham == expect
        assert abs(ham.terms().field[2]) < saturation_field(base)
        assert record_hamiltonian(map_record(ham, Schedule())[0]) == ham


def test_k_eff_sets_each_maps_anisotropy_from_its_dipolar_strength():
    """k_eff replaces a preset's K: every Type II map gets K = k_eff + 0.75 Ddip Σ, so its
    uniform states differ in energy by exactly the drawn K_eff (energy, converged images)."""
    from spinsr_tf.physics import energy

    m = Mixture.parse("universal,dipolar=0.025..0.1,k_eff=-0.02..0.1")
    assert "anisotropy" not in m and m["k_eff"] == Uniform(-0.02, 0.1)
    assert "k_eff" not in Mixture.parse("universal")          # absent unless given
    assert Mixture.parse("universal").to_dict() == Mixture.parse(PRESETS["universal"]).to_dict()
    n, seen = 16, 0
    for k in range(40):
        d, ham = m.draw(2, k), m.hamiltonian(2, k)
        if d["type"] != "II":
            continue
        seen += 1
        base = ham.base
        x = np.broadcast_to(np.array([1.0, 0.0, 0.0]), (n, n, 3))
        z = np.broadcast_to(np.array([0.0, 0.0, 1.0]), (n, n, 3))
        k_eff = (energy(x, base) - energy(z, base)) / n ** 2
        assert k_eff == pytest.approx(d["k_eff"], abs=1e-9)
        assert base.dipolar == d["dipolar"] and 0 <= base.anisotropy <= 1
    assert seen >= 5


def _mix(path, spec=CHIRAL, n=5, block=2, workers=None, progress=False, seed=5):
    return generate_dataset(path, Mixture.parse(spec), n=n, size=16, seed=seed,
                            schedule=OVERRIDES, block=block, workers=workers, progress=progress)


def test_same_maps_and_records_for_any_block_size_and_worker_count(tmp_path):
    a = _mix(tmp_path / "a.h5", block=2, workers=1)
    b = _mix(tmp_path / "b.h5", block=3, workers=2)
    np.testing.assert_array_equal(read_spins(a), read_spins(b))
    np.testing.assert_array_equal(read_map_params(a), read_map_params(b))
    # a map of a larger file, in another block, is the same map
    c = _mix(tmp_path / "c.h5", n=7, block=4)
    np.testing.assert_array_equal(read_spins(c)[:5], read_spins(a))


def test_records_describe_the_stored_maps(tmp_path):
    path = _mix(tmp_path / "m.h5", n=6)
    spins, hams, recs = read_spins(path), map_hamiltonians(path), read_map_params(path)
    assert [h.terms().boundary for h in hams] == [r.decode() for r in recs["boundary"]]
    # each map is relaxed under its own recorded Hamiltonian, and far from it under the others'
    torque = np.array([[float(np.max(max_torque(s, h))) for h in hams] for s in spins])
    assert np.all(np.diag(torque) < 2e-4)
    assert np.all(np.argmin(torque, axis=1) == np.arange(len(hams)))
    off = torque[~np.eye(len(hams), dtype=bool)]
    assert off.min() > 10 * np.diag(torque).max()
    # the field magnetises each map along its own sign
    mz = spins[..., 2].mean(axis=(1, 2))
    strong = np.abs(recs["field_z"]) > 0.1 * recs["dmi"] ** 2
    assert strong.sum() >= 3 and np.all(np.sign(mz[strong]) == np.sign(recs["field_z"][strong]))
    period = [TypeI(dmi=d).helix_period() for d in recs["dmi"]]
    np.testing.assert_allclose(recs["helix_period"], period)


def test_each_type_is_annealed_with_its_own_schedule(tmp_path):
    path = _mix(tmp_path / "u.h5", spec="universal", n=8, block=8, seed=2)
    recs, spins = read_map_params(path), read_spins(path)
    kinds = [t.decode() for t in recs["type"]]
    assert {"I", "II"} <= set(kinds)
    for k in (kinds.index("I"), kinds.index("II")):
        ham = record_hamiltonian(recs[k])
        schedule = Schedule(**{**ham.schedule_defaults(), **OVERRIDES})
        assert (recs["t_start"][k], recs["relax_sweeps"][k]) == (schedule.t_start,
                                                                 schedule.relax_sweeps)
        np.testing.assert_array_equal(spins[k], anneal(ham, 16, 2, [k], schedule=schedule)[0])
    assert all(r == b"periodic" for r, t in zip(recs["boundary"], kinds) if t == "II")
    stored = dataset_attrs(path)
    assert Mixture.from_dict(stored["mixture"]) == Mixture.parse("universal")
    assert stored["schedule"] == OVERRIDES and "hamiltonian" not in stored
    with h5py.File(path) as f:
        assert json.loads(f.attrs["mixture.dmi"]) == {"uniform": [0.1, 0.73]}


def test_no_numba_recompilation_per_map():
    import numba

    from spinsr_tf.physics import _kernels as kern

    def signatures():
        return {name: len(obj.signatures) for name in dir(kern)
                if isinstance(obj := getattr(kern, name), numba.core.registry.CPUDispatcher)}

    m = Mixture.parse("universal")
    kinds = [m.draw(0, k)["type"] for k in range(20)]
    warm = [kinds.index("I"), kinds.index("II")]
    m.anneal(16, 0, warm, {"sweeps": 10})
    before = signatures()
    m.anneal(16, 0, [k for k in range(16) if k not in warm], {"sweeps": 10})  # 16 maps in all
    assert signatures() == before


def test_single_hamiltonian_files_read_as_repeated_records(tmp_path):
    schedule = Schedule(sweeps=20)
    path = generate_dataset(tmp_path / "s.h5", with_field(TypeI(dmi=0.4), 0.05), n=3, size=8,
                            seed=1, schedule=schedule, progress=False)
    recs = read_map_params(path)
    assert recs.shape == (3,) and np.all(recs == map_record(with_field(TypeI(dmi=0.4), 0.05),
                                                            schedule))
    assert map_hamiltonians(path) == [with_field(TypeI(dmi=0.4), 0.05)] * 3
    with h5py.File(path) as f:
        assert "params" not in f


def test_other_mixture_is_refused_on_rerun(tmp_path):
    path = _mix(tmp_path / "m.h5", n=2)
    with pytest.raises(UserError, match="mixture.dmi") as info:
        _mix(path, spec=CHIRAL.replace("0.25..0.6", "0.25..0.5"), n=2)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="dict"):
        generate_dataset(tmp_path / "x.h5", Mixture.parse("universal"), n=1, size=8,
                         schedule=Schedule(), progress=False)
    with pytest.raises(UserError, match="no parameter 'sweep'"):
        generate_dataset(tmp_path / "x.h5", Mixture.parse("universal"), n=1, size=8,
                         schedule={"sweep": 3}, progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_cli_mix_writes_per_map_records(tmp_path, capsys):
    out = tmp_path / "m.h5"
    assert main(["generate", "--mix", "typeI-dmi,dmi_kind=interfacial|bulk", "--n", "4",
                 "--size", "16", "--sweeps", "30", "--seed", "9", "--out", str(out)]) == 0
    assert "mixture 'typeI-dmi'" in capsys.readouterr().out
    recs = read_map_params(out)
    assert np.all((recs["dmi"] >= 0.15) & (recs["dmi"] < 0.55)) and np.all(recs["sweeps"] == 30)
    m = Mixture.parse("typeI-dmi,dmi_kind=interfacial|bulk")
    assert map_hamiltonians(out) == [m.hamiltonian(9, k) for k in range(4)]


@pytest.mark.parametrize("extra, message", [
    (["--mix", "universal,dmi=0.6..0.2"], "empty or inverted"),
    (["--mix", "universal,field=0..1.5"], "saturation"),
    (["--mix", "galaxy"], "unknown preset"),
    (["--mix", "universal,colour=1"], "unknown parameter"),
    (["--mix", "type=II,boundary=open"], "Type I maps"),
    (["--mix", "universal", "--dmi", "0.2"], "--dmi sets one Hamiltonian"),
    (["--mix", "universal", "--field", "0.1"], "--field sets one Hamiltonian"),
    (["--mix", "universal", "--type", "I"], "one of --type"),
    ([], "one of --type"),
    (["--mix", "universal", "--sweeps", "0"], "--sweeps must be positive"),
])
def test_cli_refusals_are_one_line_exit_2_nothing_written(tmp_path, capsys, extra, message):
    code = main(["generate", "--n", "2", "--size", "8", "--out", str(tmp_path / "x.h5"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
