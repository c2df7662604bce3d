"""Which symmetries an image's ensemble may use: the global flip S → −S only where the image
carries no net magnetisation.

A result averaged over ``T_g⁻¹ f(T_g y)`` (``fit-image``'s result, ``upscale --uncertainty``'s
mean map, :func:`~spinsr_tf.inference.uncertainty.symmetry_spread`) is right only where every
``T_g y`` is a texture the network knows. A field breaks the flip: an image whose domains favour
one sign, reversed, is a texture of the opposite field. NumPy only: fit-image records the
group before TensorFlow starts.
"""

from __future__ import annotations

import numpy as np

#: Mean Sz (network units: Ms, or a grey image's [-1, 1]; over the magnet) beyond which an
#: image's ensemble and fit-image's symmetry term leave out the global flip S → −S: a net
#: magnetisation is a field's mark.
MAGNETISED = 0.1
#: The group of a magnetised map: the lattice's elements that keep Sz (no flip, no flip-overs),
#: under whatever Hamiltonian the model was trained with; :data:`spinsr_tf.nn.symmetry.IN_FIELD`
#: (named here, not imported: that module loads TensorFlow).
IN_FIELD = "lattice-in-field"
#: The groups of a spin map whose Hamiltonian is not known (the universal models, trained on
#: Néel and Bloch textures of one chirality each; fit-image on a user's image): no
#: reflections, since a Bloch texture's mirror image has the other chirality. On the tune maps
#: of docs/generalization.md the mirrored members cost ``universal-x8`` 1.2 dB on Bloch
#: labyrinths (+5.22 dB over bicubic_norm instead of the one pass's +6.43); without them
#: +6.93. fit-image on an open Bloch film of this package (D/J 0.3, σ 2, 4×4 camera pixels,
#: noise 0.05): +1.40 dB over bicubic_norm with the mirrors in its symmetry term and mean,
#: +4.87 without; on the Néel film of the same material +5.85 and +5.82. A grey image keeps
#: the mirrors (the Sz of either chirality looks alike).
NO_REFLECTIONS = {"lattice": "translations+rotations+flip", IN_FIELD: "translations+rotations"}


def ensemble_group(lr: np.ndarray, mask: np.ndarray | None = None,
                   hamiltonian_known: bool = True) -> dict:
    """The symmetry group of one image's ensemble, and why: ``{"group", "mean_sz", "why"}``.

    ``lr``: (h, w, C), Sz its last component (C = 1: a grey image), in network units;
    ``mask``: (h, w) bool, True on the magnet, or None; ``hamiltonian_known`` False and C = 3:
    the :data:`NO_REFLECTIONS` group.

    Measured (docs/generalization.md): a network fitted to one tune film in a field (mean Sz
    0.30 Ms) scored 6–7 dB lower on the flipped film than on the film, and the ensemble with
    the flip lost 4.2 dB against the one without; on a film with mean Sz −0.02 the flip added
    0.02–0.10 dB. The shipped universal models, trained on fields of both signs, lose less:
    without the flip their mean map on the tune films in a field gained 1.6 dB at ×4 and 0.1
    dB at ×8, and on tune skyrmion lattices at ×4 −0.97 to +0.97 dB per map (+0.12 dB on
    average)."""
    lr = np.asarray(lr)
    sz = lr[..., -1] if mask is None else lr[..., -1][np.asarray(mask, bool)]
    net = float(np.mean(sz)) if sz.size else 0.0
    if abs(net) > MAGNETISED:
        out = {"group": IN_FIELD, "mean_sz": net,
               "why": f"mean Sz {net:+.3g}, beyond ±{MAGNETISED:g}: a field breaks the flip"}
    else:
        out = {"group": "lattice", "mean_sz": net,
               "why": f"mean Sz {net:+.3g}, within ±{MAGNETISED:g}"}
    if hamiltonian_known or lr.shape[-1] == 1:
        return out
    return {**out, "group": NO_REFLECTIONS[out["group"]],
            "why": out["why"] + "; no mirrors: the chirality is not known"}


def ensemble_groups(lr: np.ndarray, mask: np.ndarray | None = None,
                    hamiltonian_known: bool = True) -> list[str]:
    """:func:`ensemble_group`'s group of each map of ``lr`` (N, h, w, C), ``mask`` (N, h, w) or
    None; ``hamiltonian_known`` False (a model trained without a recorded Hamiltonian) and
    C = 3: the :data:`NO_REFLECTIONS` group instead."""
    return [ensemble_group(x, None if mask is None else m, hamiltonian_known)["group"]
            for x, m in zip(lr, mask if mask is not None else [None] * len(lr))]


__all__ = ["IN_FIELD", "MAGNETISED", "NO_REFLECTIONS", "ensemble_group", "ensemble_groups"]
