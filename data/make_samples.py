"""Make the small sample inputs of ``data/samples/`` again (seeded; about 5 s on 2 cores).

    python data/make_samples.py [--out data/samples]

- ``type-I-lr16.npy``: one 64×64 Type I lattice (``spinsr-tf generate
  --type I --n 1 --size 64 --seed 0``) degraded ×4 as ``pretrained:type-I-x4`` assumes
  (Gaussian σ = 1 HR px, 23-px window, periodic, point samples): an LR map ``(16, 16, 3)``.
- ``kerr-standin-64.png``: a micrograph-like stand-in, 16-bit grey: ``S_z`` of a 128×128 Type I
  lattice (seed 1) blurred (σ = 1.5 HR px, mirror borders), averaged over 2×2 camera pixels,
  mapped to 6,000–26,000 counts under a 5 % left-to-right illumination slope, with Poisson
  shot noise (gain 1 count per electron) and Gaussian read noise (std 40 counts), seed 2.
  It is not a measurement.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    from PIL import Image

    from spinsr_tf.cli import main as cli
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.io import read_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "samples"))
    out = Path(p.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size, seed in ((64, 0), (128, 1)):
            code = cli(["generate", "--type", "I", "--n", "1", "--size", str(size), "--seed",
                        str(seed), "--workers", "1", "--quiet", "--out", f"{tmp}/t{size}.h5"])
            assert code == 0
        hr64 = read_image(f"{tmp}/t64.h5")
        hr128 = read_image(f"{tmp}/t128.h5")
    lr = gaussian_downsample(hr64, 4, 23, 1.0, "periodic", pixel="sample")[0]
    np.save(out / "type-I-lr16.npy", lr.astype(np.float32))

    sz = hr128[..., 2:3]
    lr_sz = gaussian_downsample(sz, 2, 23, 1.5, "reflect", pixel="integrate")[0, ..., 0]
    h, w = lr_sz.shape
    light = 1.0 + 0.05 * (np.arange(w) / (w - 1) - 0.5)
    expected = (6000.0 + 10000.0 * (lr_sz + 1.0)) * light[None, :]
    rng = np.random.default_rng(2)
    counts = rng.poisson(expected) + rng.normal(0.0, 40.0, size=expected.shape)
    image = np.clip(np.rint(counts), 0, 65535).astype(np.uint16)
    Image.fromarray(image).save(out / "kerr-standin-64.png")
    print(f"wrote {out}/type-I-lr16.npy {lr.shape} and {out}/kerr-standin-64.png {image.shape}")


if __name__ == "__main__":
    main()
