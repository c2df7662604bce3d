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

#: The name of the shipped universal model of factor ``f``.
NAME = "universal-x{factor}"
#: The mixture preset every universal model starts from (docs/physics.md, "Mixtures").
BASE = "universal"
#: The widest DMI range of the mixtures (the ``universal`` preset's), |D|/J.
DMI_RANGE = (0.1, 0.73)


def resolved_dmi(factor: int) -> float:
    """The largest |D|/J whose helix (period 2π/arctan(D/J) sites) an LR grid of factor
    ``factor`` still resolves: two LR pixels per period, D = tan(π/f)."""
    return math.tan(math.pi / factor)


def mixture_spec(factor: int) -> str:
    """The training mixture of factor ``factor``: the ``universal`` preset with the DMI drawn
    from 0.1 up to the finest period the factor resolves."""
    hi = min(DMI_RANGE[1], resolved_dmi(factor))
    if not hi > DMI_RANGE[0]:
        raise UserError(f"x{factor} resolves no DMI texture of the universal range "
                        f"(periods >= {2 * factor} sites needed)")
    return f"{BASE},dmi={DMI_RANGE[0]!r}..{round(hi, 3)!r}"


@dataclasses.dataclass(frozen=True)
class UniversalRecipe:
    """Sizes of a universal model's data and training (the shipped ones: the defaults)."""

    n_train: int = 512
    n_test: int = 32
    size: int = 128
    epochs: int = 80
    batch_size: int = 16
    jit_compile: bool = True

    def __post_init__(self):
        for name in ("n_train", "n_test", "size", "epochs", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)


def _data(out: Path, recipe: UniversalRecipe, factor: int, seed: int, progress: bool) -> dict:
    from spinsr_tf.data.generate import generate_dataset
    from spinsr_tf.data.mixture import Mixture
    from spinsr_tf.physics import TypeI, TypeII

    mix = Mixture.parse(mixture_spec(factor))
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    paths = {"train": data / f"train-x{factor}.h5", "test": data / f"test-x{factor}.h5",
             "home Type I": data / "home-I.h5", "home Type II": data / "home-II.h5"}
    jobs = {"train": (mix, recipe.n_train, seed), "test": (mix, recipe.n_test, seed + 1),
            "home Type I": (TypeI(), recipe.n_test, seed + 1),
            "home Type II": (TypeII(), recipe.n_test, seed + 1)}
    for key, (ham, n, s) in jobs.items():
        generate_dataset(paths[key], ham, n, recipe.size, seed=s, progress=progress)
    return paths


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


def model_card(name: str, factor: int, config: dict, results: dict, recipe: UniversalRecipe,
               seed: int) -> str:
    """The README of a universal model: the ranges it was trained on, the degradation it
    inverts, its scores, what it is not."""
    from spinsr_tf.data.mixture import Mixture
    from spinsr_tf.evaluation.scoring import format_table
    from spinsr_tf.experiments.make_pretrained import NETWORK, PIXEL_WORDS
    from spinsr_tf.experiments.presets import NETWORKS
    from spinsr_tf.nn.bioimageio_export import PAPER, PAPER_DOI

    mix = Mixture.parse(mixture_spec(factor))
    deg = next(iter(results.values()))["degradation"]
    terms = ", ".join(f"{t['term']} (weight {t['weight']:g})" for t in config["losses"])
    ranges = [f"- `{p}`: {d.text()}" for p, d in mix.dists]
    lo, hi = mix["dmi"].values()
    periods = [2 * math.pi / math.atan(d) for d in (hi, lo)]
    tables = []
    for key, result in results.items():
        tables += [f"### {key}", "", format_table(result), ""]
    lines = [
        f"# Pretrained model `{name}`", "",
        f"Unsupervised super-resolution ×{factor} of 2D spin textures (3-component unit-vector "
        f"maps) of many materials, spinsr_tf {__version__}: the model to try on a texture the "
        "package did not make (docs/generalization.md). On the package's own Type I / Type II "
        "lattices the type models (`type-I-x*`, `type-II-x*`) score higher.", "",
        "## Use", "",
        f"    spinsr-tf upscale LR.npy --model pretrained:{name} --out SR.npy", "",
        "## Training data: the ranges it spans", "",
        f"{recipe.n_train} lattices of {recipe.size}×{recipe.size} annealed by Monte Carlo "
        f"(seed {seed}), each with its own Hamiltonian drawn from the mixture "
        f"`{mixture_spec(factor)}` (`spinsr-tf generate --mix`; units of J; docs/physics.md, "
        "\"Mixtures\"):", "",
        *ranges, "",
        f"Helix periods {periods[0]:.1f}–{periods[1]:.1f} sites (none finer than two LR "
        f"pixels per period, {2 * factor} sites at ×{factor}), Néel and Bloch walls, fields up "
        "to half the "
        "saturation field (skyrmions), a quarter Type II (anisotropy + dipolar domains), a "
        "quarter of the Type I maps on open films. Only the LR maps were used.", "",
        "## Degradation it inverts", "",
        f"Gaussian blur σ = {deg['sigma']:g} HR px ({deg['kernel_size']} taps), "
        f"{PIXEL_WORDS[deg['pixel']]}, every {factor} sites, {deg['padding']} boundaries "
        "(`spinsr_tf.data.degradation`).", "",
        "## Training", "",
        f"Recipe `{NETWORKS[NETWORK]['recipe']}` ({NETWORKS[NETWORK]['label']}): loss terms "
        f"{terms}, the symmetry group of every map (translations, quarter turns, mirrors, the "
        f"global flip: the mixture holds both chiralities' images of each other); "
        f"{config['epochs']} epochs, batch {config['batch_size']}, learning rate "
        f"{config['learning_rate']:g}, seed {config['seed']}.", "",
        "## Scores", "",
        f"Test maps of the same mixture (seed {seed + 1}) and the type models' home lattices "
        f"(seed {seed + 1}), {recipe.n_test} each, degraded as above:", "", *tables,
        "On textures from an independent simulator: docs/generalization.md.", "",
        "## Limits", "",
        "- Textures outside the ranges above (periods beyond them, other lattices, thick "
        "films), other optics or noise: try `spinsr-tf fit-image` (docs/optics.md).",
        "- Another blur, pixel model or factor than the one above gives confident nonsense.", "",
        "## Reproduce", "",
        f"    spinsr-tf make-pretrained --universal --seed {seed} --out OUT", "",
        "## Citation", "", f"{PAPER}. https://doi.org/{PAPER_DOI}", ""]
    return "\n".join(lines)


def make_universal(out_dir, factors=(4, 8), recipe: UniversalRecipe | None = None,
                   seed: int = 0, progress: bool = True) -> list[Path]:
    """Generate the mixtures, train (or resume) one universal model per factor, score it and
    write its folder into ``out_dir``; return the folders."""
    from spinsr_tf.experiments.make_pretrained import ship_run
    from spinsr_tf.nn.config import RECIPES
    from spinsr_tf.nn.config import recipe as train_recipe
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.nn.training import CONFIG, MODEL
    from spinsr_tf.nn.training import train as train_network

    recipe = recipe or UniversalRecipe()
    seed = check_int("seed", seed, minimum=0)
    factors = tuple(check_int("factor", f, minimum=2) for f in factors)
    for f in factors:
        mixture_spec(f)                      # refuse a factor with no texture before any work
    out = check_output_folder(out_dir, ("data", "runs"), "universal models")
    network = "equivariant"
    folders = []
    for f in factors:
        paths = _data(out, recipe, f, seed, progress)
        run_dir = out / "runs" / f"x{f}"
        config = train_recipe(network, paths["train"], f, epochs=recipe.epochs,
                              batch_size=recipe.batch_size, seed=seed,
                              jit_compile=recipe.jit_compile,
                              losses=RECIPES[network]["losses"])
        train_network(config, run_dir, resume=(run_dir / CONFIG).exists(), progress=progress)
        model = load_sr_model(run_dir / MODEL, compile=False)
        results = _scores(model, paths)
        name = NAME.format(factor=f)
        target = out / name
        run_config = ship_run(run_dir, target, out)
        write_json_atomic(target / "results.json",
                          {"name": name, "mixture": mixture_spec(f),
                           "recipe": dataclasses.asdict(recipe), "seed": seed,
                           "spinsr_tf_version": __version__, "sets": results},
                          sort_keys=False)
        write_text_atomic(target / "README.md",
                          model_card(name, f, run_config, results, recipe, seed))
        folders.append(target)
        if progress:
            sr = results["mixture (test seed)"]["methods"]
            print(f"wrote {target}: mixture test {sr['sr']['psnr']:.2f} dB, aligned "
                  f"bicubic_norm {sr['bicubic_norm']['psnr']:.2f} dB", flush=True)
    return folders


__all__ = ["NAME", "UniversalRecipe", "make_universal", "mixture_spec", "model_card",
           "resolved_dmi"]
