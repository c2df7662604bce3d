"""Universal pretrained models: one network per factor for textures the type models never saw.

A type model (``type-I-x4``…) learnt one material's texture — its period, its wall profile — and
does harm on another's (docs/generalization.md). A universal model is the same default recipe
trained on a :class:`~spinsr_tf.data.mixture.Mixture` that spans what a user's sample may be:
Néel and Bloch labyrinths over a six-fold range of periods, skyrmions in a field, dipolar
domains, open films. Writes::

    OUT/data/train-x4.h5, test-x4.h5   the mixture's maps (resumable, like ``generate``)
    OUT/data/home-I.h5, home-II.h5     the type models' test lattices (another seed)
    OUT/runs/x4/                       the training run (resumable, like ``train``)
    OUT/universal-x4/                  model.keras, config.json, results.json, README.md

Copying the ``universal-*`` folders into ``spinsr_tf/pretrained/`` ships them.

Scalar models (``channels="z"``: ``universal-sz-x4``…) serve grey images of Sz contrast (Kerr,
MFM): the same mixtures, the same recipe, trained on the Sz component of the same maps, written
beside them (``OUT/data/train-z-x4.h5``, ``test-z-x4.h5``, ``home-I-z.h5``, ``home-II-z.h5``:
dataset ``spins`` (N, H, W, 1), the source's attributes and per-map records, and ``component``
= "z"), so a folder that holds both kinds anneals each mixture once; runs in ``OUT/runs/sz-x4/``.
A scalar model may instead be distilled from a vector model (``UniversalRecipe(teacher=...)``,
:mod:`spinsr_tf.experiments.distillation`): it then learns the Sz of the teacher's SR maps of
the 3-component LR maps (``OUT/data/student-z-x8-lr.h5``, ``student-z-x8-teacher.h5``), with
``aliased_dmi`` also from as many maps again of the DMI the factor aliases
(``train-aliased-x8.h5``, seed + 2): periods below 2f sites, whose Sz the LR grid cannot
resolve but whose three components the teacher still reads.

The mixture of factor ``f`` keeps the DMI where the LR grid still resolves the helix (period
2π/arctan(D/J) ≥ 2f HR px, two LR pixels per period): a texture finer than that is aliased in
every LR map, and training on it teaches nothing but noise (measured: a ×8 run on the full
range kept its SR error at that of interpolation for 16 epochs). The DMI is drawn uniformly, as
in the preset: a log-uniform draw (more long periods) scored lower on the tune part of every
foreign family at ×4 (docs/generalization.md).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path


from spinsr_tf._version import __version__
from spinsr_tf.base.checks import check_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import check_output_folder, write_json_atomic, write_text_atomic

#: The name of the shipped universal model of factor ``f`` (3-component spin maps).
NAME = "universal-x{factor}"
#: The name of the shipped scalar universal model of factor ``f`` (Sz: grey images).
SZ_NAME = "universal-sz-x{factor}"
#: ``channels`` of :func:`make_universal` → the spin components the model sees (indices
#: into the (Sx, Sy, Sz) maps of the mixtures).
CHANNELS = {"xyz": (0, 1, 2), "z": (2,)}
#: ``channels`` → the model name of each factor.
NAMES = {"xyz": NAME, "z": SZ_NAME}
#: What the mirrors of a universal model's symmetry term mean (its card, by ``channels``): the
#: mixture's DMI is positive, so a Bloch map's mirror image is a texture it does not hold; the
#: mirror image of its Sz is the Sz of one it does hold.
MIRRORS_NOTE = {
    "xyz": "a Bloch map's mirror image has the other chirality, which the mixture does not hold: "
           "`upscale` leaves the mirrors out of its mean",
    "z": "on Sz alone a map's mirror image is the Sz of another texture of the mixture (turned "
         "half round an in-plane axis, reversed), so the mirrors hold"}
#: The mixture preset every universal model starts from (docs/physics.md, "Mixtures").
BASE = "universal"
#: The factors ``make_universal`` (and ``make-pretrained --universal``) makes by default; a
#: model card's reproduce line names its own factor where it is not one of these.
FACTORS = (4, 8)
#: The widest DMI range of the mixtures (the ``universal`` preset's), |D|/J.
DMI_RANGE = (0.1, 0.73)
#: HR side of the maps (:meth:`UniversalRecipe.size_for`): at least ``MIN_SIZE`` sites and
#: ``MIN_LR_SIDE`` LR pixels a side.
MIN_SIZE, MIN_LR_SIDE = 128, 16


def resolved_dmi(factor: int) -> float:
    """The largest |D|/J whose helix (period 2π/arctan(D/J) sites) an LR grid of factor
    ``factor`` still resolves: two LR pixels per period, D = tan(π/f)."""
    return math.tan(math.pi / factor)


def mixture_spec(factor: int, base: str = BASE) -> str:
    """The training mixture of factor ``factor``: ``base`` (the ``universal`` preset, or a
    spec starting from it) with the DMI drawn from 0.1 up to the finest period the factor
    resolves."""
    hi = min(DMI_RANGE[1], resolved_dmi(factor))
    if not hi > DMI_RANGE[0]:
        raise UserError(f"x{factor} resolves no DMI texture of the universal range "
                        f"(periods >= {2 * factor} sites needed)")
    return f"{base},dmi={DMI_RANGE[0]!r}..{round(hi, 3)!r}"


@dataclasses.dataclass(frozen=True)
class UniversalRecipe:
    """Sizes of a universal model's data and training (the shipped models: the defaults, but
    ``epochs`` 320 and the widened mixture for ``universal-x8`` and the scalar ones; their cards
    say so).

    ``size``: the side of the HR maps; None (default) takes :meth:`size_for` the factor.
    ``mixture``: the mixture before each factor's DMI cap (:func:`mixture_spec`).
    ``lr_only``: train from an LR file made once from the HR maps (:func:`lr_training_file`),
    not from the HR maps degraded on the fly: the same loss, 1/f² of the data — a run that
    travels to another machine (an accelerator's) without its HR maps.
    ``teacher``: a scalar model only: distil it from this vector model (``pretrained:NAME`` or
    a ``.keras`` path, of the same factor and degradation) instead of the LR-only recipe.
    ``aliased_dmi``: with ``teacher``: also ``n_train`` maps of the mixture with the DMI the
    factor aliases (:func:`aliased_mixture_spec`), which the student sees through the
    teacher."""

    n_train: int = 512
    n_test: int = 32
    size: int | None = None
    epochs: int = 240
    batch_size: int = 16
    jit_compile: bool = True
    mixture: str = BASE
    lr_only: bool = False
    teacher: str | None = None
    aliased_dmi: bool = False

    def __post_init__(self):
        for name in ("n_train", "n_test", "epochs", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        if self.size is not None:
            check_int("size", self.size, minimum=1)
        if self.teacher is not None and not (isinstance(self.teacher, str) and self.teacher):
            raise UserError(f"teacher must be a model (pretrained:NAME or a .keras path), got "
                            f"{self.teacher!r}")
        if self.aliased_dmi and self.teacher is None:
            raise UserError("aliased_dmi needs a teacher: from LR maps alone an aliased texture "
                            "teaches nothing")

    def size_for(self, factor: int) -> int:
        """The HR side of factor ``factor``'s maps: ``size`` if given, else 128 or, beyond ×8,
        16 LR pixels a side (256 at ×16): an LR map of 8×8 holds one or two helix periods of
        the textures the factor resolves (periods ≥ 2f sites) and too few for the symmetry
        term's translations."""
        return self.size or max(MIN_SIZE, MIN_LR_SIDE * factor)


def component_file(source, target) -> Path:
    """Write the Sz maps of the spins file ``source`` into ``target`` (dataset ``spins``,
    (N, H, W, 1) float32; every other dataset, e.g. the per-map ``params``, and every attribute
    copied; ``component`` = "z" and ``component_of`` = the source's file name added), atomically.
    A ``target`` that already holds the Sz maps of the same parameters is kept; another one is
    refused (one line)."""
    import h5py

    from spinsr_tf.data.generate import SPINS
    from spinsr_tf.data.io import h5_output

    source, target = Path(source), Path(target)
    with h5py.File(source, "r") as src:
        attrs = dict(src.attrs)
        if target.exists():
            try:
                with h5py.File(target, "r") as f:
                    same = (f.attrs.get("component") == "z"
                            and f.attrs.get("params_json") == attrs.get("params_json"))
            except OSError:
                same = False
            if same:
                return target
            raise UserError(f"{str(target)!r} exists and is not the Sz component of "
                            f"{str(source)!r}; remove it to make it again")
        spins = src[SPINS]
        n, h, w, _ = spins.shape
        with h5_output(target, n * h * w * 4) as dst:
            data = dst.create_dataset(SPINS, shape=(n, h, w, 1), dtype="float32",
                                      chunks=(1, h, w, 1), compression="gzip",
                                      compression_opts=4, shuffle=True)
            for start in range(0, n, 64):
                data[start:start + 64] = spins[start:start + 64, ..., 2:3]
            for name in src:
                if name != SPINS:
                    src.copy(src[name], dst, name)
            for key, value in attrs.items():
                dst.attrs[key] = value
            dst.attrs["component"] = "z"
            dst.attrs["component_of"] = source.name
    return target


def _data(out: Path, recipe: UniversalRecipe, factor: int, seed: int, progress: bool,
          channels: str = "xyz") -> dict:
    from spinsr_tf.data.generate import generate_dataset
    from spinsr_tf.data.mixture import Mixture
    from spinsr_tf.physics import TypeI, TypeII

    mix = Mixture.parse(mixture_spec(factor, recipe.mixture))
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    size = recipe.size_for(factor)
    home = "" if size == MIN_SIZE else f"-{size}"      # the maps of one size, whatever factor
    paths = {"train": data / f"train-x{factor}.h5", "test": data / f"test-x{factor}.h5",
             "home Type I": data / f"home-I{home}.h5",
             "home Type II": data / f"home-II{home}.h5"}
    jobs = {"train": (mix, recipe.n_train, seed), "test": (mix, recipe.n_test, seed + 1),
            "home Type I": (TypeI(), recipe.n_test, seed + 1),
            "home Type II": (TypeII(), recipe.n_test, seed + 1)}
    for key, (ham, n, s) in jobs.items():
        generate_dataset(paths[key], ham, n, size, seed=s, progress=progress)
    if channels == "z":
        paths = {key: component_file(path, path.with_name(
            path.name.replace(f"-x{factor}.h5", f"-z-x{factor}.h5") if key in ("train", "test")
            else f"{path.stem}-z.h5")) for key, path in paths.items()}
    return paths


def aliased_mixture_spec(factor: int, base: str = BASE) -> str:
    """``base`` with the DMI that factor ``factor`` aliases: from :func:`resolved_dmi` (period
    2f sites) to the top of :data:`DMI_RANGE` (a distilled student's extra maps,
    ``UniversalRecipe.aliased_dmi``)."""
    lo = round(resolved_dmi(factor), 3)
    if not lo < DMI_RANGE[1]:
        raise UserError(f"x{factor} aliases no DMI texture of the universal range (periods "
                        f"below {2 * factor} sites start at D/J {lo:g} > {DMI_RANGE[1]!r})")
    return f"{base},dmi={lo!r}..{DMI_RANGE[1]!r}"


def _student_data(out: Path, recipe: UniversalRecipe, factor: int, seed: int,
                  progress: bool) -> tuple[Path, Path]:
    """A distilled scalar model's training files of factor ``factor``: the Sz of the LR maps of
    the factor's 3-component training maps (and, with ``aliased_dmi``, of as many maps of the
    DMI it aliases, seed + 2), and the Sz of the teacher's SR maps of them
    (:func:`~spinsr_tf.experiments.distillation.student_files`)."""
    from spinsr_tf.data.generate import generate_dataset
    from spinsr_tf.data.mixture import Mixture
    from spinsr_tf.experiments.distillation import student_files

    data = out / "data"
    sources = [data / f"train-x{factor}.h5"]
    if recipe.aliased_dmi:
        sources.append(data / f"train-aliased-x{factor}.h5")
        aliased = Mixture.parse(aliased_mixture_spec(factor, recipe.mixture))
        generate_dataset(sources[-1], aliased, recipe.n_train, recipe.size_for(factor),
                         seed=seed + 2, progress=progress)
    lr_files = [lr_training_file(path, factor) for path in sources]
    return student_files(lr_files, recipe.teacher, data / f"student-z-x{factor}-lr.h5",
                         data / f"student-z-x{factor}-teacher.h5",
                         progress=print if progress else None)


def lr_training_file(hr_path, factor: int) -> Path:
    """The LR maps of the HR training file ``hr_path`` under the recipe's degradation (the
    paper's: σ 1, 23 taps, point samples, periodic), written once beside it as
    ``<stem>-lr.h5`` (:func:`spinsr_tf.data.lr_file.downsample_file`); an existing one of the
    same maps and factor is kept, another refused (one line)."""
    import h5py

    from spinsr_tf.data.degradation import as_degradation
    from spinsr_tf.data.lr_file import downsample_file

    hr_path = Path(hr_path)
    target = hr_path.with_name(f"{hr_path.stem}-lr.h5")
    if target.exists():
        with h5py.File(hr_path, "r") as hr, h5py.File(target, "r") as lr:
            same = (lr.attrs.get("params_json") == hr.attrs.get("params_json")
                    and int(lr.attrs.get("factor", 0)) == factor)
        if same:
            return target
        raise UserError(f"{str(target)!r} exists and is not the x{factor} LR file of "
                        f"{str(hr_path)!r}; remove it to make it again")
    downsample_file(hr_path, target, as_degradation(factor))
    return target


def _scores(model, paths: dict) -> dict:
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.scoring import evaluate

    results = {}
    for key in ("test", "home Type I", "home Type II"):
        result = evaluate(read_spins(paths[key]), {"sr": model})
        result["methods"] = {m: {k: v for k, v in row.items() if k != "per_image"}
                             for m, row in result["methods"].items()}
        results["mixture (test seed)" if key == "test" else key] = result
    return results


def reproduce_command(recipe: UniversalRecipe, seed: int, channels: str = "xyz",
                      factors=FACTORS) -> str:
    """The command that makes the models of ``factors`` again: ``spinsr-tf make-pretrained
    --universal`` with every flag whose value is not the default (``--factors`` only where one
    is not made by default); a recipe that differs where the command line has no flag is given
    as the Python call instead."""
    default = UniversalRecipe()
    cli_fields = {"epochs", "teacher", "aliased_dmi"}
    factors = tuple(factors)
    other = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe)
             if f.name not in cli_fields and getattr(recipe, f.name) != getattr(default, f.name)}
    if other:
        return (f"make_universal(OUT, factors={factors!r}, recipe={recipe!r}, seed={seed}, "
                f"channels={channels!r})  # spinsr_tf.experiments.universal")
    flags = ["--universal"]
    if not set(factors) <= set(FACTORS):     # the default command makes those
        flags.append("--factors " + " ".join(str(f) for f in factors))
    if channels != "xyz":
        flags.append(f"--channels {channels}")
    if recipe.epochs != default.epochs:
        flags.append(f"--epochs {recipe.epochs}")
    if recipe.teacher is not None:
        flags.append(f"--teacher {recipe.teacher}")
    if recipe.aliased_dmi:
        flags.append("--aliased-dmi")
    return f"spinsr-tf make-pretrained {' '.join(flags)} --seed {seed} --out OUT"


def trained_with(config: dict) -> str:
    """Which software trained the run's epochs (``run.versions`` and ``run.resumed`` of its
    config), e.g. "trained with Keras 3.15.1 on TensorFlow (epochs 1-160), then on JAX"."""
    run = config.get("run", {})

    def words(v: dict) -> str:
        backend = str(v.get("backend"))
        return f"on {'TensorFlow' if backend == 'tensorflow' else backend.upper()}"

    first = run.get("versions") or {}
    segments = [(0, first)] + [(r["from_epoch"], r["versions"]) for r in run.get("resumed", [])]
    ends = [start for start, _ in segments[1:]] + [config["epochs"]]
    if len({words(v) for _, v in segments}) == 1:
        return f"trained with Keras {first.get('keras')} {words(first)}"
    parts = [f"{words(v)} (epochs {start + 1}-{end})" for (start, v), end in zip(segments, ends)]
    return f"trained with Keras {first.get('keras')} " + ", then ".join(parts)


def model_card(name: str, factor: int, config: dict, results: dict, recipe: UniversalRecipe,
               seed: int, channels: str = "xyz") -> str:
    """The README of a universal model: the ranges it was trained on, the degradation it
    inverts, its scores, what it is not; a scalar model (``channels="z"``) says it serves grey
    images of Sz contrast."""
    from spinsr_tf.data.mixture import Mixture
    from spinsr_tf.evaluation.scoring import format_table
    from spinsr_tf.experiments.make_pretrained import NETWORK, PIXEL_WORDS
    from spinsr_tf.experiments.presets import NETWORKS
    from spinsr_tf.nn.bioimageio_export import PAPER, PAPER_DOI

    mix = Mixture.parse(mixture_spec(factor, recipe.mixture))
    deg = next(iter(results.values()))["degradation"]
    terms = ", ".join(f"{t['term']} (weight {t['weight']:g})" for t in config["losses"])
    ranges = [f"- `{p}`: {d.text()}" for p, d in mix.dists]
    lo, hi = mix["dmi"].values()
    periods = [2 * math.pi / math.atan(d) for d in (hi, lo)]
    tables = []
    for key, result in results.items():
        tables += [f"### {key}", "", format_table(result), ""]
    scalar = channels == "z"
    teacher = recipe.teacher
    if teacher is not None:
        extra = []
        if recipe.aliased_dmi:
            spec = aliased_mixture_spec(factor, recipe.mixture)
            band = [2 * math.pi / math.atan(d) for d in reversed(Mixture.parse(spec)["dmi"]
                                                               .values())]
            extra = [f"With as many maps again (seed {seed + 2}) of the DMI ×{factor} "
                     f"aliases, `{spec}` (periods {band[0]:.1f}–{band[1]:.1f} sites): their "
                     "Sz is aliased in the LR maps, but the teacher still reads them from "
                     "three components.", ""]
        training = [
            f"Distilled from `{teacher}` (a 3-component model trained on LR maps alone): the "
            f"loss term {terms} is the mean squared difference between this model's SR map "
            "of a sample's LR Sz and the Sz of the SR map the teacher makes of the same "
            "sample's 3-component LR map (as `spinsr-tf upscale` makes it: the mean over its "
            "symmetric copies; `spinsr_tf.experiments.distillation`). No HR map entered "
            "either network's loss. No symmetry term: `upscale` averages over the copies "
            "under translations, quarter turns, mirrors and, where the image carries no net "
            "magnetisation, the global flip; "
            f"{config['epochs']} epochs, batch {config['batch_size']}, learning rate "
            f"{config['learning_rate']:g}, seed {config['seed']}; {trained_with(config)}.", ""]
    else:
        extra = []
        training = [
            f"Recipe `{NETWORKS[NETWORK]['recipe']}` ({NETWORKS[NETWORK]['label']}): loss "
            f"terms {terms}, the symmetry group of the mixture as a whole (translations, "
            f"quarter turns, mirrors, the global flip; {MIRRORS_NOTE[channels]}); "
            f"{config['epochs']} epochs, batch {config['batch_size']}, learning rate "
            f"{config['learning_rate']:g}, seed {config['seed']}; {trained_with(config)}.", ""]
    if scalar:
        intro = [
            f"Unsupervised super-resolution ×{factor} of grey images of Sz contrast (one "
            "channel: the out-of-plane spin component, as a Kerr (MOKE) or MFM image shows it, "
            f"after mapping onto [-1, 1]) of many materials, spinsr_tf {__version__}: the "
            f"scalar twin of `{NAME.format(factor=factor)}`, "
            + (f"distilled from `{teacher}` on the same maps" if teacher else
               "trained on the Sz component of the same maps")
            + " (docs/pretrained.md, \"Scalar universal models\"). For an image "
            "with its own optics, noise or uneven illumination, `spinsr-tf fit-image` trains "
            "on the image itself.", "",
            "## Use", "",
            f"    spinsr-tf upscale IMAGE.png --model pretrained:{name} --out SR.png", "",
            "A grey image (.png, .tif, .npy (H, W) or (H, W, 1), .h5) is mapped onto [-1, 1] "
            "by its own range (min..max, as fit-image does: 8/16-bit images first by their "
            "bit depth), super-resolved, and mapped back into the input's units; the mapping "
            "is recorded beside the result. The image's darkest and brightest pixels should "
            "be the two saturated domains (Sz = ∓1).", ""]
    else:
        intro = [
            f"Unsupervised super-resolution ×{factor} of 2D spin textures (3-component "
            f"unit-vector maps) of many materials, spinsr_tf {__version__}: the model to try "
            "on a texture the package did not make (docs/generalization.md). On the package's "
            "own Type I / Type II lattices the type models (`type-I-x*`, `type-II-x*`) score "
            "higher.", "",
            "## Use", "",
            f"    spinsr-tf upscale LR.npy --model pretrained:{name} --out SR.npy", ""]
    lines = [
        f"# Pretrained model `{name}`", "",
        *intro,
        "## Training data: the ranges it spans", "",
        f"{recipe.n_train} lattices of {recipe.size_for(factor)}×{recipe.size_for(factor)} "
        "annealed by Monte Carlo "
        f"(seed {seed}), each with its own Hamiltonian drawn from the mixture "
        f"`{mixture_spec(factor, recipe.mixture)}` (`spinsr-tf generate --mix`; units of J; "
        "docs/physics.md, \"Mixtures\"):", "",
        *ranges, "",
        f"Helix periods {periods[0]:.1f}–{periods[1]:.1f} sites (none finer than two LR "
        f"pixels per period, {2 * factor} sites at ×{factor}), Néel and Bloch walls, fields up "
        "to half the "
        "saturation field (skyrmions), a quarter Type II (anisotropy + dipolar domains), a "
        "quarter of the Type I maps on open films. Only the LR maps were used"
        + (": the model sees their Sz, its teacher all three components." if teacher
           else ", of their Sz component only." if scalar else "."), "",
        *extra,
        "## Degradation it inverts", "",
        f"Gaussian blur σ = {deg['sigma']:g} HR px ({deg['kernel_size']} taps), "
        f"{PIXEL_WORDS[deg['pixel']]}, every {factor} sites, {deg['padding']} boundaries "
        "(`spinsr_tf.data.degradation`).", "",
        "## Training", "",
        *training,
        "## Scores", "",
        f"Test maps of the same mixture (seed {seed + 1}) and the type models' home lattices "
        f"(seed {seed + 1}), {recipe.n_test} each, degraded as above"
        + (", their Sz component; the baselines are interpolation clipped to [-1, 1] "
           "(`_clip`: the scalar analogue of unit normalization)" if scalar else "")
        + ":", "", *tables,
        "On textures from an independent simulator: docs/generalization.md.", "",
        "## Limits", "",
        "- Textures outside the ranges above (periods beyond them, other lattices, thick "
        "films), other optics or noise: try `spinsr-tf fit-image` (docs/optics.md).",
        "- Another blur, pixel model or factor than the one above gives confident nonsense.",
        *(["- Grey levels that are not Sz (in-plane Kerr contrast, MFM phase of a "
           "thick-film stray field), or an image whose extremes are not the two domains "
           "(saturated pixels, an illumination gradient: `fit-image --background plane`)."]
          if scalar else []), "",
        "## Reproduce", "",
        f"    {reproduce_command(recipe, seed, channels, (factor,))}", "",
        "The maps come out the same on any machine (the run's data identity records their "
        "torque statistics); another machine or backend trains another model of the same "
        "recipe (float rounding grows over the epochs), not the same weights.", "",
        "## Citation", "", f"{PAPER}. https://doi.org/{PAPER_DOI}", ""]
    return "\n".join(lines)


def make_universal(out_dir, factors=FACTORS, recipe: UniversalRecipe | None = None,
                   seed: int = 0, progress: bool = True, channels: str = "xyz") -> list[Path]:
    """Generate the mixtures, train (or resume) one universal model per factor, score it and
    write its folder into ``out_dir``; return the folders.

    ``channels``: the spin components the models see (:data:`CHANNELS`): ``"xyz"``, the
    3-component unit-vector maps (``universal-x{f}``), or ``"z"``, their Sz component alone
    (``universal-sz-x{f}``: grey images of Kerr or MFM contrast mapped onto [-1, 1])."""
    from spinsr_tf.base.checks import check_choice
    from spinsr_tf.data.mixture import Mixture
    from spinsr_tf.evaluation.baselines import reference_baseline
    from spinsr_tf.experiments.make_pretrained import ship_run
    from spinsr_tf.nn.config import RECIPES
    from spinsr_tf.nn.config import recipe as train_recipe
    from spinsr_tf.nn.losses import Distillation
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.nn.training import CONFIG, MODEL
    from spinsr_tf.nn.training import train as train_network

    recipe = recipe or UniversalRecipe()
    check_choice("channels", channels, tuple(CHANNELS))
    if recipe.teacher is not None and channels != "z":
        raise UserError("a teacher distils scalar models (channels='z'), not "
                        f"channels={channels!r}")
    seed = check_int("seed", seed, minimum=0)
    factors = tuple(check_int("factor", f, minimum=2) for f in factors)
    for f in factors:
        Mixture.parse(mixture_spec(f, recipe.mixture))   # refuse a bad mixture before any work
        if recipe.teacher is not None:
            from spinsr_tf.experiments.distillation import load_teacher

            load_teacher(recipe.teacher, f)
        if recipe.aliased_dmi:
            Mixture.parse(aliased_mixture_spec(f, recipe.mixture))
    out = check_output_folder(out_dir, ("data", "runs"), "universal models")
    network = "equivariant"
    folders = []
    for f in factors:
        paths = _data(out, recipe, f, seed, progress, channels)
        run_dir = out / "runs" / (f"x{f}" if channels == "xyz" else f"s{channels}-x{f}")
        if recipe.teacher is not None:
            train_data, teacher_data = _student_data(out, recipe, f, seed, progress)
            losses = (Distillation(),)
        else:
            train_data = (lr_training_file(paths["train"], f) if recipe.lr_only
                          else paths["train"])
            teacher_data, losses = None, RECIPES[network]["losses"]
        config = train_recipe(network, train_data, f, epochs=recipe.epochs,
                              batch_size=recipe.batch_size, seed=seed,
                              jit_compile=recipe.jit_compile, losses=losses,
                              teacher_data=teacher_data)
        train_network(config, run_dir, resume=(run_dir / CONFIG).exists(), progress=progress)
        model = load_sr_model(run_dir / MODEL, compile=False)
        results = _scores(model, paths)
        name = NAMES[channels].format(factor=f)
        target = out / name
        run_config = ship_run(run_dir, target, out)
        write_json_atomic(target / "results.json",
                          {"name": name, "mixture": mixture_spec(f, recipe.mixture),
                           "channels": channels,
                           "recipe": {**dataclasses.asdict(recipe), "size": recipe.size_for(f)},
                           "seed": seed,
                           "spinsr_tf_version": __version__, "sets": results},
                          sort_keys=False)
        write_text_atomic(target / "README.md",
                          model_card(name, f, run_config, results, recipe, seed, channels))
        folders.append(target)
        if progress:
            sr = results["mixture (test seed)"]["methods"]
            ref = reference_baseline(len(CHANNELS[channels]))
            print(f"wrote {target}: mixture test {sr['sr']['psnr']:.2f} dB, aligned "
                  f"{ref} {sr[ref]['psnr']:.2f} dB", flush=True)
    return folders


__all__ = ["CHANNELS", "FACTORS", "NAME", "NAMES", "SZ_NAME", "UniversalRecipe",
           "aliased_mixture_spec", "component_file", "lr_training_file", "make_universal",
           "mixture_spec", "model_card", "reproduce_command", "resolved_dmi", "trained_with"]
