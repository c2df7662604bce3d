"""A scalar student's training files: the Sz of a mixture's LR maps, and the Sz of the SR maps
a vector teacher makes of the same 3-component LR maps.

Why a teacher (:mod:`spinsr_tf.nn.losses.distillation`): from Sz alone, the LR-only recipe
learns at ×8 a prior 2–6 dB short of what a network of the same size reaches (measured with a
supervised bound, docs/generalization.md, "Scalar models"), while a vector model trained
LR-only on the same mixture resolves far more from all three components. The teacher's maps
are made as ``spinsr-tf upscale`` makes them (the mean over the input's symmetric copies), and
neither network ever sees an HR map.

Files (``lr_out``, ``teacher_out``)::

    lr       (N, h, w, 1)  the LR Sz maps, the sources' degradation attributes
    spins    (N, H, W, 1)  the teacher's SR Sz of the same samples (not ground truth)

Sample ``k·J + j`` is map ``k`` of source ``j`` (J sources of N/J maps each): interleaved, so
the validation split at the end of the file draws from every source.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from spinsr_tf.base.errors import UserError

#: The Sz component of a 3-component map.
SZ = 2
#: Maps the teacher super-resolves per call (its symmetric copies multiply them).
CHUNK = 64


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sources(lr_files) -> tuple[list, list[dict], dict]:
    """The LR maps of each source (:class:`~spinsr_tf.data.stream.MapFile`, dataset ``lr``),
    their records (name, map count, ``params_json``) and their shared degradation attributes.
    One line for a missing file, maps that are not 3-component, or sources that disagree."""
    from spinsr_tf.data.stream import DEGRADATION_ATTRS, LR, MapFile

    sources, records, degradation = [], [], None
    for path in map(Path, lr_files):
        if not path.is_file():
            raise UserError(f"LR file {str(path)!r} does not exist")
        maps = MapFile.open(path, LR)       # 4D floats, or one line
        if maps.shape[-1] != 3:
            raise UserError(f"{str(path)!r} holds no 3-component LR maps (dataset {LR!r} "
                            "(N, h, w, 3)): a teacher needs the vector maps")
        deg = {k: str(maps.attrs[k]) for k in DEGRADATION_ATTRS if k in maps.attrs}
        if sources and (deg != degradation or maps.shape != sources[0].shape):
            raise UserError(f"{str(path)!r} is not of the same degradation and shape as "
                            f"{str(sources[0].path)!r}: one student learns one imaging model")
        degradation = deg
        sources.append(maps)
        records.append({"name": path.name, "n": maps.shape[0],
                        "params_json": str(maps.attrs.get("params_json", ""))})
    if not sources:
        raise UserError("no LR file to distil from")
    return sources, records, degradation


def load_teacher(teacher: str, factor: int | None = None):
    """``(model, path)`` of the vector model ``teacher`` (``pretrained:NAME`` or a ``.keras``
    path); one line if it is missing, not a 3-component model or not of factor ``factor``."""
    from spinsr_tf.base.pretrained import resolve_model
    from spinsr_tf.evaluation.scoring import degradation_of
    from spinsr_tf.nn.network import load_sr_model

    path = resolve_model(teacher)
    if not Path(path).is_file():
        raise UserError(f"teacher model {teacher!r} does not exist")
    model = load_sr_model(path, compile=False)
    if int(model.input_shape[-1]) != 3:
        raise UserError(f"teacher {teacher!r} is not a 3-component model: a scalar student "
                        "learns what a vector model makes of all three components")
    if factor is not None and degradation_of(model)["factor"] != factor:
        raise UserError(f"teacher {teacher!r} is a x{degradation_of(model)['factor']} model, "
                        f"the student x{factor}")
    return model, path


def student_files(lr_files, teacher: str, lr_out, teacher_out,
                  progress=None) -> tuple[Path, Path]:
    """Write a scalar student's training files (module docstring) from the 3-component LR
    files ``lr_files`` (one factor and degradation, as many maps each) and the vector model
    ``teacher`` (``pretrained:NAME`` or a ``.keras`` path) of the same degradation; return
    ``(lr_out, teacher_out)``. Files already made from the same sources by the same teacher
    (its file's SHA-256) are kept; other files there are refused (one line).
    ``progress``: a callable that takes a line, or None."""
    import h5py

    from spinsr_tf.data.io import h5_output
    from spinsr_tf.data.stream import HR, LR
    from spinsr_tf.evaluation.scoring import degradation_of
    from spinsr_tf.inference.uncertainty import symmetric_mean, trained_hamiltonian

    lr_out, teacher_out = Path(lr_out), Path(teacher_out)
    sources, records, degradation = _sources(lr_files)
    try:
        model, model_path = load_teacher(teacher)
        identity = json.dumps({"sources": records, "teacher": teacher,
                               "teacher_sha256": _sha256(model_path)}, sort_keys=True)
        done = []
        for path in (lr_out, teacher_out):
            if path.exists():
                try:
                    with h5py.File(path, "r") as f:
                        same = f.attrs.get("student_of") == identity
                except OSError:
                    same = False
                if not same:
                    raise UserError(f"{str(path)!r} exists and is not this student's file "
                                    "(other sources or another teacher); remove it to make "
                                    "it again")
                done.append(path)
        if len(done) == 2:
            return lr_out, teacher_out

        taught = {k: str(v) for k, v in degradation_of(model).items()}
        if any(taught.get(k) != v for k, v in degradation.items()):
            raise UserError(f"teacher {teacher!r} inverts {taught}, the LR files were made "
                            f"with {degradation}")
        hamiltonian = trained_hamiltonian(model_path)
        per_source, h, w, _ = sources[0].shape
        n, factor = per_source * len(sources), int(degradation["factor"])
        attrs = {**{k: v for k, v in sources[0].attrs.items() if k in degradation},
                 "component": "z", "student_of": identity,
                 "sources": json.dumps([r["name"] for r in records]), "teacher": teacher}
        with h5_output(lr_out, n * h * w * 4) as lr_f, \
                h5_output(teacher_out, n * h * w * factor * factor * 4) as t_f:
            lr_d = lr_f.create_dataset(LR, shape=(n, h, w, 1), dtype="float32",
                                       chunks=(1, h, w, 1))
            t_d = t_f.create_dataset(HR, shape=(n, h * factor, w * factor, 1),
                                     dtype="float32", chunks=(1, h * factor, w * factor, 1),
                                     compression="gzip", compression_opts=4, shuffle=True)
            for f, a in ((lr_f, attrs), (t_f, {**attrs, "maps": "teacher SR maps, not "
                                                "ground truth"})):
                for key, value in a.items():
                    f.attrs[key] = value
            for start in range(0, n, CHUNK):
                k = np.arange(start, min(n, start + CHUNK))    # interleaved: k = map·J + source
                lr = np.empty((len(k), h, w, 3), np.float32)
                for j, maps in enumerate(sources):
                    mine = k % len(sources) == j
                    lr[mine] = maps.read(k[mine] // len(sources))
                sr = symmetric_mean(model, lr, None, hamiltonian)[0]
                lr_d[start:start + len(k)] = lr[..., SZ:SZ + 1]
                t_d[start:start + len(k)] = np.asarray(sr[..., SZ:SZ + 1], dtype=np.float32)
                if progress is not None:
                    progress(f"teacher {teacher}: {start + len(k)}/{n} maps")
    finally:
        for maps in sources:
            maps.close()
    return lr_out, teacher_out


__all__ = ["load_teacher", "student_files"]
