"""Do the shipped models beat interpolation on spin textures the package never made?

For each foreign texture family (:mod:`foreign_textures`: Spirit-relaxed Néel and Bloch
labyrinths over periods 11-52 sites, skyrmions in a field, dipolar domains, finite films with
edges), tune and held-out parts separately, the maps are degraded exactly as each model expects
(its ``lr`` layer: factor, Gaussian σ and window, pixel model, padding), super-resolved through
the code path of ``spinsr-tf upscale`` (its default: the mean over the symmetric copies,
:func:`spinsr_tf.inference.uncertainty.symmetric_mean`; ``--single-pass``: one pass of
:func:`spinsr_tf.nn.export.serving_model`), and scored
against aligned ``bicubic`` and ``bicubic_norm`` (the interpolation placed on the degradation's
sampling grid) with PSNR (MAX = 2) and Corr. Films with open edges are scored twice: degraded
with the model's periodic padding, and with reflect padding (what a film's LR image really is)
against reflect-padded interpolation. The reference row is the home distribution: lattices the
package anneals at each model's own parameters (another seed than its training data).

×16 models (``universal-x16``, ``type-II-x16``, where shipped) are scored on the same 128²
maps, LR maps of 8×8: at ×16 only periods of 32 sites or more are resolved (the longer
``neel_long`` periods, the domains); the other families show what a model does with an aliased
map.

Scalar models (one channel: ``universal-sz-x4``, ``universal-sz-x8``, for grey Kerr/MFM images)
get the Sz component of the same maps, tune and held-out parts alike, each LR map served as
``upscale`` serves a grey image (its range mapped onto [-1, 1] and back), and are scored against
aligned ``bicubic`` and ``bicubic_clip`` (clipped to [-1, 1]: a normalized scalar is its sign);
their tables and gains name ``bicubic_clip``.

    python benchmarks/generalization.py --quick               # 64², 2 maps per part, ~1 min
    python benchmarks/generalization.py --json generalization.json
    python benchmarks/generalization.py --fit-image            # + fit-image on a 256² film

``--fit-image`` also scores ``spinsr-tf fit-image`` at its defaults on a foreign film imaged by
a camera (PSF σ 2, 4×4 pixels, noise 0.05; ``--fit-noise 0 0.01 0.05``: one fit per level;
``--fit-map 1``: the held-out film in a field).
``--train 4 8`` also scores ``spinsr-tf train`` at its defaults, one run per factor trained on
the tune maps of every family (what a user with their own simulations would do), scored like a
shipped model on both parts (``--train-epochs``: fewer epochs than train's 400; ``--train-dir``:
keep the runs, and resume them). The held-out parts are reported, never used to choose anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import foreign_textures as ft  # noqa: E402

#: Models scored by default: the shipped ×4 and ×8 models of both types.
DEFAULT_MODELS = ("universal-x4", "universal-x8", "type-I-x4", "type-I-x8", "type-II-x4",
                  "type-II-x8")
#: ×16 models scored by default too, where shipped: at ×16 a texture needs periods of 32 sites
#: or more to be resolved at all, so most families test what a model does with an aliased map.
X16_MODELS = ("universal-x16", "type-II-x16")
#: Scalar (Sz) models scored by default too, where shipped.
SCALAR_MODELS = ("universal-sz-x4", "universal-sz-x8")


def default_models() -> list[str]:
    """:data:`DEFAULT_MODELS`, then the :data:`X16_MODELS` and :data:`SCALAR_MODELS` this
    installation ships."""
    from spinsr_tf.base.pretrained import known_models

    known = set(known_models())
    return [*DEFAULT_MODELS, *(m for m in (*X16_MODELS, *SCALAR_MODELS) if m in known)]
#: Seed of the home lattices: not the shipped models' training (0) or test data.
HOME_SEED = 24


def _git_version() -> str | None:
    """The repository's commit (with ``+dirty`` for local changes), or None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], check=True,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


class Model:
    """A shipped (or any) model, its degradation and the Hamiltonian it was trained with."""

    def __init__(self, spec: str, single_pass: bool = False):
        from spinsr_tf.base.pretrained import resolve_model
        from spinsr_tf.inference.uncertainty import trained_hamiltonian
        from spinsr_tf.evaluation.scoring import degradation_of
        from spinsr_tf.nn.export import serving_model
        from spinsr_tf.nn.network import load_sr_model
        from spinsr_tf.physics import hamiltonian_from_attrs

        self.name = spec.removeprefix("pretrained:")
        self.spec = spec if ":" in spec or spec.endswith(".keras") else f"pretrained:{spec}"
        model = load_sr_model(self.spec, compile=False)
        self.degradation = degradation_of(model)
        self.factor = self.degradation["factor"]
        self.channels = int(model.input_shape[-1])
        from spinsr_tf.evaluation.baselines import reference_baseline

        #: the baseline gains are quoted against: bicubic_norm (vectors), bicubic_clip (Sz)
        self.reference = reference_baseline(self.channels)
        self.model = model
        self.serving = serving_model(model)   # what `spinsr-tf upscale --single-pass` runs
        self.single_pass = bool(single_pass)
        self.hamiltonian_attrs = trained_hamiltonian(resolve_model(self.spec))
        attrs = self.hamiltonian_attrs
        self.hamiltonian = None if attrs is None else hamiltonian_from_attrs(attrs)

    def _run(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        if self.single_pass:
            return np.asarray(self.serving.predict(x, batch_size=batch_size, verbose=0))
        from spinsr_tf.inference.uncertainty import symmetric_mean

        return symmetric_mean(self.model, x, None, self.hamiltonian_attrs,
                              batch_size=batch_size)[0]

    def upscale(self, lr: np.ndarray, batch_size: int = 4) -> np.ndarray:
        """SR maps of ``lr`` as ``spinsr-tf upscale`` makes them (``single_pass``: as
        ``--single-pass`` does); a scalar model's maps, as grey images, one by one: the map's
        range onto [-1, 1] and back (:func:`spinsr_tf.inference.image_io.value_mapping`)."""
        if self.channels != 1:
            return np.asarray(self._run(lr, batch_size), dtype=np.float32)
        from spinsr_tf.inference.image_io import from_network, to_network, value_mapping

        out = []
        for x in lr:
            mapping = value_mapping(x)
            sr = self._run(to_network(x, mapping)[None], batch_size)
            out.append(from_network(sr[0], mapping))
        return np.asarray(out, dtype=np.float32)


def score(model: Model, hr: np.ndarray, padding: str | None = None, margin: int = 0) -> dict:
    """Degrade ``hr`` as ``model`` expects (its padding unless ``padding`` is given), run it,
    and score it with aligned bicubic and bicubic_norm on the same LR maps (a scalar model:
    the Sz component of ``hr``, and ``bicubic_clip`` in place of ``bicubic_norm``).

    Returns per-image and mean PSNR (dB) and Corr of ``model``, ``bicubic``, ``bicubic_norm``,
    the gain (model − bicubic_norm, dB) and the per-image wins over bicubic_norm; with
    ``margin`` > 0 the same under ``"interior"`` for the HR pixels at least ``margin`` pixels
    from every edge (a film's edges are where a periodic model and interpolation both guess).
    """
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.evaluation.baselines import baselines_for

    deg = dict(model.degradation)
    if padding is not None:
        deg["padding"] = padding
    if model.channels == 1:
        hr = hr[..., 2:3]
    lr = gaussian_downsample(hr, deg["factor"], kernel_size=deg["kernel_size"],
                             sigma=deg["sigma"], padding=deg["padding"], pixel=deg["pixel"])
    preds = {"model": model.upscale(lr)}
    table = baselines_for(model.channels)
    for name in ("bicubic", model.reference):
        preds[name] = table[name](lr, deg["factor"], padding=deg["padding"], pixel=deg["pixel"])
    out = _metrics(preds, hr, model.reference)
    out["degradation"] = deg
    if margin:
        m = int(margin)
        out["interior"] = {"margin": m, **_metrics({k: v[:, m:-m, m:-m] for k, v in preds.items()},
                                                   hr[:, m:-m, m:-m], model.reference)}
    return out


def _reference(r: dict) -> str:
    """The baseline a score's gain is against: ``bicubic_clip`` in a scalar model's scores."""
    return "bicubic_clip" if "bicubic_clip" in r else "bicubic_norm"


def _metrics(preds: dict, hr: np.ndarray, reference: str = "bicubic_norm") -> dict:
    from spinsr_tf.evaluation.metrics import corr, psnr

    out = {"n": int(len(hr))}
    for name, pred in preds.items():
        p, c = psnr(pred, hr), corr(pred, hr)
        out[name] = {"psnr": float(p.mean()), "corr": float(c.mean()),
                     "psnr_per_image": [float(v) for v in p],
                     "corr_per_image": [float(v) for v in c]}
    gain = np.subtract(out["model"]["psnr_per_image"], out[reference]["psnr_per_image"])
    out["gain"] = float(gain.mean())
    out["wins"] = int((gain > 0).sum())
    return out


def home_maps(hamiltonian, n: int, size: int, cache: Path, log) -> np.ndarray:
    """``n`` lattices annealed by the package itself at ``hamiltonian`` (seed :data:`HOME_SEED`),
    through :func:`spinsr_tf.data.generate.generate_dataset` (cached as HDF5)."""
    from spinsr_tf.data.generate import generate_dataset, read_spins

    attrs = hamiltonian.to_attrs()
    tag = "-".join(f"{k}{v}" for k, v in sorted(attrs.items()))
    path = cache / "home" / f"{tag}-n{n}-L{size}-seed{HOME_SEED}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        t0 = time.perf_counter()
        generate_dataset(path, hamiltonian, n, size=size, seed=HOME_SEED, progress=False)
        log(f"  annealed {n} home lattices of {size}x{size} ({attrs['type']}): "
            f"{(time.perf_counter() - t0) / n:.1f} s/map")
    return read_spins(path)


#: ``--fit-image``: a foreign film with edges imaged by a camera, as in issue 24's target.
FIT_IMAGE = {"family": "film", "part": "heldout", "size": 256, "factor": 4, "sigma": 2.0,
             "pixel": "integrate", "noise": 0.05, "noise_seed": 24, "index": 0}


def fit_image_score(cache: Path, log, work: Path, noise: float | None = None,
                    index: int = 0) -> dict:
    """``spinsr-tf fit-image IMAGE --scale 4`` with every other option at its default, on a
    foreign 256² film (held-out film material, open edges) imaged with a Gaussian PSF of σ = 2
    HR px, 4×4 camera pixels and Gaussian noise ``noise`` (default :data:`FIT_IMAGE`'s 0.05) per
    component (reflect borders, the same draw scaled); scored in
    network units (``sr_values.npy``) against aligned ``bicubic_norm`` of the same noisy image
    (camera-pixel grid, reflect padding), whole image and interior. Wall time included."""
    from spinsr_tf.cli import main as cli_main
    from spinsr_tf.data.degradation import gaussian_downsample, kernel_size_for
    from spinsr_tf.evaluation.baselines import BASELINES

    c = {**FIT_IMAGE, "index": int(index),
         **({} if noise is None else {"noise": float(noise)})}
    hr, record = ft.load_or_make(c["family"], c["part"], c["index"], c["size"], cache, log)
    hr = hr[None]
    f = c["factor"]
    lr = gaussian_downsample(hr, f, kernel_size=kernel_size_for(c["sigma"]), sigma=c["sigma"],
                             padding="reflect", pixel=c["pixel"])
    lr = lr + np.random.default_rng(c["noise_seed"]).normal(0.0, c["noise"], lr.shape)
    lr = lr.astype(np.float32)
    work.mkdir(parents=True, exist_ok=True)
    image = work / "film_lr.npy"
    np.save(image, lr[0])
    run_dir = work / "fit_image_run"
    argv = ["fit-image", str(image), "--scale", str(f), "--out", str(run_dir)]
    log(f"  spinsr-tf {' '.join(argv)}")
    t0 = time.perf_counter()
    rc = cli_main(argv)
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"fit-image exited with {rc}")
    preds = {"model": np.load(run_dir / "sr_values.npy")[None],
             "bicubic": BASELINES["bicubic"](lr, f, padding="reflect", pixel=c["pixel"]),
             "bicubic_norm": BASELINES["bicubic_norm"](lr, f, padding="reflect",
                                                       pixel=c["pixel"])}
    out = _metrics(preds, hr)
    m = 2 * f
    out["interior"] = {"margin": m, **_metrics({k: v[:, m:-m, m:-m] for k, v in preds.items()},
                                               hr[:, m:-m, m:-m])}
    out.update({"seconds": round(seconds, 1), "setting": dict(c), "record": record,
                "degradation_json": json.loads((run_dir / "degradation.json").read_text())})
    return out


def train_defaults(maps: dict, args, factor: int, log) -> tuple[Model, float]:
    """``spinsr-tf train --scale FACTOR`` at its defaults (``--epochs`` if ``args.train_epochs``)
    on the tune maps of ``args.families`` (one HDF5 file of HR maps, degraded on the fly as
    train does), in ``args.train_dir`` (resumed if there) or a temporary folder: the model and
    the training's wall time."""
    import h5py

    from spinsr_tf.cli import main as cli_main

    root = Path(args.train_dir) if args.train_dir else Path(args.train_tmp)
    root.mkdir(parents=True, exist_ok=True)
    data = root / f"tune-{'-'.join(args.families)}-L{next(iter(maps.values())).shape[1]}.h5"
    if not data.exists():
        spins = np.concatenate([maps[f, "tune"] for f in args.families]).astype(np.float32)
        tmp = data.with_suffix(".tmp")
        with h5py.File(tmp, "w") as f:
            f.create_dataset("spins", data=spins)
            f.attrs["families"] = json.dumps(list(args.families))
            f.attrs["part"] = "tune"
        tmp.replace(data)
    run_dir = root / f"train-x{factor}"
    argv = ["train", "--data", str(data), "--scale", str(factor), "--out", str(run_dir),
            "--quiet", *(["--epochs", str(args.train_epochs)] if args.train_epochs else [])]
    log(f"  spinsr-tf {' '.join(argv)}")
    t0 = time.perf_counter()
    if cli_main(argv) != 0:
        raise RuntimeError(f"spinsr-tf train exited non-zero for x{factor}")
    seconds = time.perf_counter() - t0
    model = Model(str(run_dir / "model.keras"), args.single_pass)
    model.name = f"train-defaults-x{factor}"
    log(f"  trained {model.name} on {args.families} tune maps in {seconds:.0f} s")
    return model, seconds


def material_rows(result: dict, families, names) -> list[str]:
    """A Markdown table of the mean gain and wins per family part and parameter set (maps with
    the same material), one column per model: the family means hide that the gain changes
    sign with the period."""
    rows = ["| family | part | parameters | N | " + " | ".join(names) + " |",
            "|---|---|---|---|" + "---|" * len(names)]
    for fam in families:
        for part in ft.PARTS:
            entry = result["families"][fam]["parts"][part]
            labels = [ft.material_label(ft.Material(**r["material"])) for r in entry["records"]]
            for label in dict.fromkeys(labels):
                idx = [i for i, other in enumerate(labels) if other == label]
                cells = []
                for name in names:
                    r = entry["scores"][name]
                    gain = np.subtract(r["model"]["psnr_per_image"],
                                       r[_reference(r)]["psnr_per_image"])[idx]
                    cells.append(f"{gain.mean():+.2f} ({int((gain > 0).sum())}/{len(idx)})")
                rows.append(f"| {fam} | {part} | {label} | {len(idx)} | " + " | ".join(cells)
                            + " |")
    return rows


def home_label(ham) -> str:
    """``home (Type I, Néel D/J 0.3)``: the row label of a model's home lattices."""
    a = ham.to_attrs()
    if a["type"] == "I":
        kind = "Néel" if a["dmi_kind"] == "interfacial" else "Bloch"
        return f"home (Type I, {kind} D/J {a['dmi'] / a['J']:g})"
    return f"home (Type II, K {a['anisotropy']:g}, Ddip {a['dipolar']:g})"


def _fmt_row(label: str, part: str, r: dict) -> str:
    ref = _reference(r)
    return (f"| {label} | {part} | {r['n']} | {r['model']['psnr']:.2f} | "
            f"{r['bicubic']['psnr']:.2f} | {r[ref]['psnr']:.2f} | "
            f"{r['gain']:+.2f} | {r['wins']}/{r['n']} | {r['model']['corr']:.4f} | "
            f"{r[ref]['corr']:.4f} |")


HEADER = ("| texture | part | N | model (dB) | bicubic (dB) | bicubic_norm (dB) | gain (dB) | "
          "wins | model Corr | bicubic_norm Corr |\n|---|---|---|---|---|---|---|---|---|---|")
#: The table head of a scalar model (Sz maps; gains over bicubic clipped to [-1, 1]).
SCALAR_HEADER = HEADER.replace("bicubic_norm", "bicubic_clip")


def run(args, log=print) -> dict:
    size = args.size or (64 if args.quick else 128)
    n = args.n or (2 if args.quick else 4)
    n_home = args.home_n or (2 if args.quick else 4)
    cache = Path(args.cache)
    from spinsr_tf import __version__
    from spinsr_tf.base.errors import UserError

    t_start = time.perf_counter()
    result = {"spinsr_tf_version": __version__, "code_version": _git_version(),
              "spirit_version": ft.spirit_version(), "size": size, "maps_per_part": n,
              "home_maps": n_home, "home_seed": HOME_SEED, "models": {}, "families": {},
              "upscale": "single pass" if args.single_pass else "mean of the symmetric copies",
              "home": {},
              "command": " ".join(["python benchmarks/generalization.py", *args.argv])}

    models = [Model(spec, args.single_pass) for spec in args.models]   # a bad name fails first
    for model in models:
        if size % model.factor:
            raise UserError(f"--size {size} is not divisible by {model.name}'s factor "
                            f"{model.factor}")
    for factor in args.train:
        if size % factor or size // factor < 2:
            raise UserError(f"--size {size} does not make LR maps of 2x2 or more at --train "
                            f"factor {factor}")
    log(f"foreign maps: {len(args.families)} families x 2 parts x {n} maps of {size}x{size} "
        f"(cache {cache})")
    maps, gen_seconds = {}, []
    for fam in args.families:
        for part in ft.PARTS:
            hr, records = ft.family_maps(fam, part, n, size, cache, log=log)
            maps[fam, part] = hr
            gen_seconds += [r.get("seconds", float("nan")) for r in records]
            result["families"].setdefault(fam, {"description": ft.FAMILIES[fam].description,
                                                "parts": {}})
            result["families"][fam]["parts"][part] = {"records": records, "scores": {}}
    result["relaxation_seconds_per_map"] = float(np.nanmean(gen_seconds))

    for factor in args.train:
        model, seconds = train_defaults(maps, args, factor, log)
        models.append(model)
        result.setdefault("train", {})[model.name] = {
            "seconds": round(seconds, 1), "epochs": args.train_epochs,
            "maps": int(sum(len(maps[f, "tune"]) for f in args.families))}
    for model in models:
        result["models"][model.name] = {"degradation": model.degradation,
                                        "hamiltonian": None if model.hamiltonian is None
                                        else model.hamiltonian.to_attrs()}
    tables = {}
    for model in models:
        t0 = time.perf_counter()
        rows = []
        if model.hamiltonian is not None and args.home_n != 0:
            hr = home_maps(model.hamiltonian, n_home, size, cache, log)
            r = score(model, hr)
            result["home"][model.name] = r
            rows.append(_fmt_row(home_label(model.hamiltonian), "test", r))
        for fam in args.families:
            periodic = ft.FAMILIES[fam].periodic
            for part in ft.PARTS:
                hr = maps[fam, part]
                entry = result["families"][fam]["parts"][part]["scores"]
                margin = 0 if periodic else 2 * model.factor
                r = score(model, hr, margin=margin)
                entry[model.name] = r
                if periodic:
                    rows.append(_fmt_row(fam, part, r))
                    continue
                rows.append(_fmt_row(fam + " (periodic degradation)", part, r))
                rows.append(_fmt_row(f"{fam} (periodic degradation, interior)", part,
                                     r["interior"]))
                r = score(model, hr, padding="reflect", margin=margin)
                entry[model.name + "/reflect"] = r
                rows.append(_fmt_row(fam + " (reflect degradation)", part, r))
                rows.append(_fmt_row(f"{fam} (reflect degradation, interior)", part,
                                     r["interior"]))
        tables[model.name] = rows
        d = model.degradation
        log(f"\n### {model.name}: x{model.factor}, σ {d['sigma']:g} HR px, {d['kernel_size']} "
            f"taps, pixel {d['pixel']}, padding {d['padding']} "
            f"({time.perf_counter() - t0:.0f} s)\n")
        log(HEADER if model.reference == "bicubic_norm" else SCALAR_HEADER)
        for row in rows:
            log(row)
        held = [result["families"][f]["parts"]["heldout"]["scores"].get(model.name)
                for f in args.families]
        held = [(f, h["gain"]) for f, h in zip(args.families, held) if h is not None]
        if held:
            worst = min(held, key=lambda t: t[1])
            log(f"\nheld-out gain over {model.reference}: mean "
                f"{np.mean([g for _, g in held]):+.2f} dB, worst {worst[1]:+.2f} dB ({worst[0]})")
            result["models"][model.name]["heldout_gain_mean"] = float(np.mean([g for _, g in held]))
            result["models"][model.name]["heldout_gain_worst"] = float(worst[1])
            result["models"][model.name]["heldout_worst_family"] = worst[0]
    if models:
        refs = {m.reference for m in models}
        against = ("bicubic_norm (vector models) / bicubic_clip (scalar models)"
                   if len(refs) > 1 else refs.pop())
        log(f"\n### gain per parameter set: model − {against} (dB), wins, model's own "
            "degradation\n")
        for row in material_rows(result, args.families, [m.name for m in models]):
            log(row)
    for k, noise in enumerate(args.fit_noise if args.fit_image else ()):
        import tempfile

        c = {**FIT_IMAGE, "noise": noise}
        log(f"\n### fit-image defaults: {c['size']}² foreign film ({c['family']}/{c['part']}"
            + (f"[{args.fit_map}]" if args.fit_map else "") + "), "
            f"PSF σ {c['sigma']:g} HR px, {c['factor']}x{c['factor']} camera pixels, noise "
            f"{c['noise']:g}\n")
        with tempfile.TemporaryDirectory(prefix="spinsr_fit_") as tmp:
            r = fit_image_score(cache, log, Path(tmp), noise, args.fit_map)
        result.setdefault("fit_image_by_noise", {})[repr(noise)] = r
        if k == 0:
            result["fit_image"] = r
        log("\n" + HEADER)
        log(_fmt_row("film, fit-image defaults", c["part"], r))
        log(_fmt_row("film, fit-image defaults, interior", c["part"], r["interior"]))
        log(f"\nfit-image: {r['seconds']:.0f} s wall time")
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    log(f"\n{result['seconds']:.0f} s in all; Spirit {result['spirit_version']}, "
        f"relaxation {result['relaxation_seconds_per_map']:.1f} s per map when made")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="64x64 maps, 2 per family part, 2 home lattices (a few minutes)")
    p.add_argument("--families", nargs="+", default=list(ft.FAMILIES), choices=list(ft.FAMILIES),
                   metavar="FAMILY", help=f"families (default all: {', '.join(ft.FAMILIES)})")
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="pretrained names or .keras files (default: "
                   f"{' '.join(DEFAULT_MODELS)}, and {' '.join((*X16_MODELS, *SCALAR_MODELS))} "
                   "where shipped; "
                   "a one-channel model is scored on the maps' Sz against bicubic_clip)")
    p.add_argument("--size", type=int, default=None, help="lattice side (default 128; quick 64)")
    p.add_argument("--n", type=int, default=None, help="maps per family part (default 4; quick 2)")
    p.add_argument("--home-n", type=int, default=None,
                   help="home lattices per model type (default 4; quick 2; 0: none)")
    p.add_argument("--cache", default=str(ft.default_cache()),
                   help="folder of the generated maps (default %(default)s)")
    p.add_argument("--fit-image", action="store_true",
                   help="also score `spinsr-tf fit-image --scale 4` defaults on a 256² foreign "
                   "film (PSF σ 2, 4x4 camera pixels, noise 0.05): minutes")
    p.add_argument("--fit-map", type=int, default=FIT_IMAGE["index"], metavar="K",
                   help="with --fit-image: which held-out film (default %(default)s: no field; "
                   "1: the film in a field, h 0.02)")
    p.add_argument("--fit-noise", type=float, nargs="+", default=[FIT_IMAGE["noise"]],
                   metavar="STD", help="with --fit-image: the noise levels (std per component, "
                   "units of Ms) to image the film with, one fit each (default %(default)s)")
    p.add_argument("--train", type=int, nargs="+", default=[], metavar="F",
                   help="also score `spinsr-tf train --scale F` defaults trained on the tune maps "
                   "of the families, one run per factor (minutes to tens of minutes each)")
    p.add_argument("--train-epochs", type=int, default=None, metavar="N",
                   help="with --train: epochs (default: train's own, 400)")
    p.add_argument("--train-dir", default=None, metavar="DIR",
                   help="with --train: keep the data file and runs here (re-running resumes "
                   "them; default a temporary folder)")
    p.add_argument("--single-pass", action="store_true",
                   help="score one pass of each network (upscale --single-pass) instead of "
                   "upscale's default, the mean over the symmetric copies")
    p.add_argument("--json", default=None, metavar="OUT",
                   help="also write the results (per-image scores, parameters, versions) here")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.models is None:
        args.models = default_models()
    for name, value in (("--size", args.size), ("--n", args.n)):
        if value is not None and value < (8 if name == "--size" else 1):
            p.error(f"{name} is too small: {value}")
    if args.size is not None and args.size % 16:
        p.error(f"--size must be a multiple of 16 (the x4, x8 and x16 models), got {args.size}")
    if args.json and (Path(args.json).is_dir() or not Path(args.json).parent.is_dir()):
        p.error(f"--json {args.json!r} is a directory or its folder does not exist")
    if Path(args.cache).exists() and not Path(args.cache).is_dir():
        p.error(f"--cache {args.cache!r} is not a folder")
    if args.fit_map < 0:
        p.error(f"--fit-map must be >= 0, got {args.fit_map}")
    if not all(math.isfinite(n) and n >= 0 for n in args.fit_noise):
        p.error(f"--fit-noise must be finite and >= 0, got {args.fit_noise}")
    if any(f < 2 or f & (f - 1) for f in args.train):
        p.error(f"--train factors must be powers of two >= 2, got {args.train}")
    if args.train_epochs is not None and args.train_epochs < 1:
        p.error(f"--train-epochs must be >= 1, got {args.train_epochs}")
    if args.train_dir and Path(args.train_dir).exists() and not Path(args.train_dir).is_dir():
        p.error(f"--train-dir {args.train_dir!r} is not a folder")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    from spinsr_tf.base.errors import UserError

    try:
        with tempfile.TemporaryDirectory(prefix="spinsr_train_") as tmp:
            args.train_tmp = tmp
            result = run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        from spinsr_tf.base.files import write_text_atomic

        write_text_atomic(args.json, json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
