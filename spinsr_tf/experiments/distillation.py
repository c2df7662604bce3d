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


def _sources(lr_files) -> tuple[list[dict], dict, int]:
    """Per source: its name, map count and ``params_json``; the shared degradation attributes
    and the per-source map count. One line for sources that disagree."""
    import h5py

    from spinsr_tf.data.stream import DEGRADATION_ATTRS

    records, degradation, count = [], None, None
    for path in lr_files:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"LR file {str(path)!r} does not exist")
        with h5py.File(path, "r") as f:
            if "lr" not in f or f["lr"].ndim != 4 or f["lr"].shape[-1] != 3:
                raise UserError(f"{str(path)!r} holds no 3-component LR maps (dataset 'lr' "
                                "(N, h, w, 3)): a teacher needs the vector maps")
            shape = f["lr"].shape
            deg = {k: str(f.attrs[k]) for k in DEGRADATION_ATTRS if k in f.attrs}
            records.append({"name": path.name, "n": int(shape[0]),
                            "params_json": str(f.attrs.get("params_json", ""))})
        if degradation is None:
            degradation, count, first = deg, shape, path
        elif deg != degradation or shape != count:
            raise UserError(f"{str(path)!r} is not of the same degradation and shape as "
                            f"{str(first)!r}: one student learns one imaging model")
    if not records:
        raise UserError("no LR file to distil from")
    return records, degradation, int(count[0])


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
    from spinsr_tf.evaluation.scoring import degradation_of
    from spinsr_tf.inference.uncertainty import symmetric_mean, trained_hamiltonian

    lr_out, teacher_out = Path(lr_out), Path(teacher_out)
    records, degradation, per_source = _sources(lr_files)
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
                raise UserError(f"{str(path)!r} exists and is not this student's file (other "
                                "sources or another teacher); remove it to make it again")
            done.append(path)
    if len(done) == 2:
        return lr_out, teacher_out

    taught = {k: str(v) for k, v in degradation_of(model).items()}
    if any(taught.get(k) != v for k, v in degradation.items()):
        raise UserError(f"teacher {teacher!r} inverts {taught}, the LR files were made with "
                        f"{degradation}")
    hamiltonian = trained_hamiltonian(model_path)
    n = per_source * len(records)
    with h5py.File(lr_files[0], "r") as f:
        h, w = f["lr"].shape[1:3]
    factor = int(degradation["factor"])

    def order(block_start, block_stop):
        """The interleaved samples ``block_start .. block_stop - 1`` as (source, map) pairs."""
        k = np.arange(block_start, block_stop)
        return k % len(records), k // len(records)

    files = [h5py.File(p, "r") for p in lr_files]
    try:
        attrs = {**{k: v for k, v in files[0].attrs.items() if k in degradation},
                 "component": "z", "student_of": identity,
                 "sources": json.dumps([r["name"] for r in records]), "teacher": teacher}
        with h5_output(lr_out, n * h * w * 4) as lr_f, \
                h5_output(teacher_out, n * h * w * factor * factor * 4) as t_f:
            lr_d = lr_f.create_dataset("lr", shape=(n, h, w, 1), dtype="float32",
                                       chunks=(1, h, w, 1))
            t_d = t_f.create_dataset("spins", shape=(n, h * factor, w * factor, 1),
                                     dtype="float32", chunks=(1, h * factor, w * factor, 1),
                                     compression="gzip", compression_opts=4, shuffle=True)
            for f, a in ((lr_f, attrs), (t_f, {**attrs, "maps": "teacher SR maps, not "
                                                "ground truth"})):
                for key, value in a.items():
                    f.attrs[key] = value
            for start in range(0, n, CHUNK):
                stop = min(n, start + CHUNK)
                src, idx = order(start, stop)
                lr = np.stack([files[s]["lr"][int(i)] for s, i in zip(src, idx)])
                lr = lr.astype(np.float32)
                sr = symmetric_mean(model, lr, None, hamiltonian)[0]
                lr_d[start:stop] = lr[..., SZ:SZ + 1]
                t_d[start:stop] = np.asarray(sr[..., SZ:SZ + 1], dtype=np.float32)
                if progress is not None:
                    progress(f"teacher {teacher}: {stop}/{n} maps")
    finally:
        for f in files:
            f.close()
    return lr_out, teacher_out


__all__ = ["load_teacher", "student_files"]
