"""Where the shipped pretrained models live, and what ``pretrained:NAME`` means.

A pretrained model is a run folder inside the package, ``spinsr_tf/pretrained/NAME/``, holding
what ``spinsr-tf train`` writes (``model.keras``, ``config.json``) plus its model card
(``README.md``) and the evaluation it was shipped with (``results.json``). Keeping the run-folder
layout means every command that reads ``config.json`` beside a model (the trained Hamiltonian,
the prior of a refinement) treats a pretrained model like any other. The folders are made by
``spinsr-tf make-pretrained`` (docs/pretrained.md).

This module is file lookup only (no Keras): the command line resolves ``--model pretrained:NAME``
while parsing.
"""

from __future__ import annotations

from pathlib import Path

from spinsr_tf.base.errors import UserError

#: What ``--model`` accepts in front of a pretrained model's name.
PREFIX = "pretrained:"
#: The folder of the shipped models (package data).
MODELS_DIR = Path(__file__).resolve().parent.parent / "pretrained"
#: The files each pretrained model folder holds.
MODEL_FILES = ("model.keras", "config.json", "results.json", "README.md")


def model_name(kind: str, scale: int) -> str:
    """``type-I-x8`` for Type I at ×8: the name of the pretrained model of a setting."""
    return f"type-{kind}-x{int(scale)}"


def known_models(models_dir: Path | None = None) -> tuple[str, ...]:
    """Names of the complete model folders in ``models_dir`` (default :data:`MODELS_DIR`),
    sorted."""
    models_dir = MODELS_DIR if models_dir is None else Path(models_dir)
    if not models_dir.is_dir():
        return ()
    return tuple(sorted(p.name for p in models_dir.iterdir()
                        if p.is_dir() and all((p / f).is_file() for f in MODEL_FILES)))


def is_pretrained(spec) -> bool:
    """True for a ``pretrained:NAME`` model argument."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def pretrained_path(name: str, models_dir: Path | None = None) -> Path:
    """``model.keras`` of pretrained model ``name``; an unknown name lists the known ones."""
    models_dir = MODELS_DIR if models_dir is None else Path(models_dir)
    known = known_models(models_dir)
    if name not in known:
        listed = ", ".join(known) if known else "none are installed"
        raise UserError(f"unknown pretrained model {name!r}; known: {listed}")
    return models_dir / name / "model.keras"


def resolve_model(spec) -> str:
    """A model argument as a file path: ``pretrained:NAME`` becomes the shipped file, any other
    value is returned unchanged (checked where it is read)."""
    if is_pretrained(spec):
        return str(pretrained_path(spec[len(PREFIX):]))
    return spec
