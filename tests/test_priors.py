"""Named physics priors: Hamiltonian resolution from data attributes, overrides."""

import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics import TypeI, TypeII
from spinsr_tf.physics.priors import parse_overrides, resolve_prior


def test_resolve_prior_reads_the_file_and_applies_overrides():
    attrs = {"hamiltonian.type": "I", "hamiltonian.J": 1.0, "hamiltonian.dmi": 0.4,
             "hamiltonian.dmi_kind": "bulk", "seed": 3}
    assert resolve_prior("typeI", attrs) == TypeI(dmi=0.4, dmi_kind="bulk")
    assert resolve_prior("typeI", attrs, {"dmi": 0.48}) == TypeI(dmi=0.48, dmi_kind="bulk")
    assert resolve_prior("typeII", attrs) == TypeII()        # the file is of the other type
    assert resolve_prior("exchange") == TypeI(dmi=0.0)
    assert resolve_prior("none") is None
    assert parse_overrides(["dmi=0.36", "dmi_kind=bulk"]) == {"dmi": 0.36, "dmi_kind": "bulk"}
    for call, message in [(lambda: resolve_prior("typeIII"), "must be one of"),
                          (lambda: resolve_prior("typeII", None, {"dmi": 1}), "no parameter"),
                          (lambda: parse_overrides(["dmi"]), "NAME=VALUE")]:
        with pytest.raises(UserError, match=message):
            call()
