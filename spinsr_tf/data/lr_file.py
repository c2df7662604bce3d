"""LR files from HR files: what unsupervised training sees, written once.

A file of dataset ``lr`` (N, L/F, L/F, C) float32, the degradation's settings and the source
path as attributes beside copies of the HR file's (the simulation parameters stay attached to
the LR data). Training reads it as it reads HR maps degraded on the fly, at 1/F² of the size: a
run's data that travels (``spinsr-tf downsample``, ``UniversalRecipe.lr_only``).
"""

from __future__ import annotations

from spinsr_tf.data.stream import LR

#: About this many HR values (float64 working memory: 8 bytes each) per chunk.
_CHUNK_VALUES = 1 << 22


def downsample_file(source, out, degradation):
    """Degrade dataset ``spins`` of ``source`` into dataset ``lr`` of a new file ``out``.

    ``degradation`` is a :class:`~spinsr_tf.data.degradation.Degradation` (or an integer
    factor with the paper's settings); its settings become the file's attributes
    (:meth:`~spinsr_tf.data.degradation.Degradation.to_attrs`), which training reads back.

    The input is validated as ``train`` validates it (4D floats, N >= 1, finite values) and the
    memory and disk the work needs are checked before it starts. The output is built in memory
    (or, when large, on disk after a space check) and renamed into place, so ``out`` is either
    complete or untouched. Returns the output path and the LR shape.
    """
    import h5py

    from spinsr_tf.base.errors import UserError
    from spinsr_tf.base.files import check_input_file, check_output_file
    from spinsr_tf.data.degradation import as_degradation
    from spinsr_tf.data.io import array_bytes, check_declared, damaged_file_errors, h5_output
    from spinsr_tf.data.stream import MapFile

    degradation = as_degradation(degradation)
    factor = degradation.factor
    source = check_input_file(source, "input file")
    out = check_output_file(out, "output", force=True, inputs={"file": source})
    spins = MapFile.open(source, "spins")    # the validation train applies: 4D, N >= 1, floats
    with h5py.File(source, "r") as f_in:
        attrs, dtype = dict(f_in.attrs), f_in["spins"].dtype
    n, h, w, c = spins.shape
    if h % factor or w % factor:
        raise UserError(f"lattice size {h}x{w} of {str(source)!r} is not divisible by "
                        f"--factor {factor}")
    shape = (n, h // factor, w // factor, c)
    chunk = max(1, _CHUNK_VALUES // max(1, h * w * c))
    # before any work: a chunk of HR maps (read, float64 filtering) in memory; h5_output checks
    # the disk for the LR file
    check_declared(source, (min(n, chunk), h, w, c), dtype, copies=3)
    try:
        with h5_output(out, array_bytes(shape)) as f_out, damaged_file_errors(source):
            for key, value in attrs.items():
                f_out.attrs[key] = value
            f_out.attrs.update({**degradation.to_attrs(), "source": str(source)})
            lr = f_out.create_dataset(LR, shape=shape, dtype="float32", chunks=(1, *shape[1:]),
                                      compression="gzip", compression_opts=4, shuffle=True)
            for start in range(0, n, chunk):
                block = spins.read(range(start, min(n, start + chunk)))
                try:
                    lr[start:start + len(block)] = degradation.apply(block)
                except UserError as exc:
                    raise UserError(f"'spins' samples {start}..{start + len(block) - 1} of "
                                    f"{str(source)!r}: {exc}") from None
    finally:
        spins.close()
    return out, shape


__all__ = ["LR", "downsample_file"]
