"""Offline image-classification tasks for the NEVIS-style stream: nothing is downloaded.

Every task is 16×16 grayscale in [0, 1], split into train/dev/test, with its own label space:

| task       | source                                                        | classes |
| ---------- | ------------------------------------------------------------- | ------- |
| `digits`   | scikit-learn's bundled 8×8 handwritten digits (1,797 images), | 10      |
|            | upsampled ×2                                                  |         |
| `glyphs`   | capital letters rendered from the TrueType fonts matplotlib   | 26      |
|            | ships (DejaVu, STIX, Computer Modern), random size, shift,    |         |
|            | rotation and noise                                            |         |
| `shapes`   | procedural disc, square, triangle, ring, cross, bar           | 6       |
| `textures` | procedural sinusoidal gratings at 8 orientations, random      | 8       |
|            | frequency and phase, plus noise                               |         |

Procedural tasks can be drawn at any size, so a stream can hold tasks orders of magnitude apart.
"""

import functools
import os
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

SIZE = 16  # Images are SIZE × SIZE.


class Split(NamedTuple):
  x: np.ndarray  # [N, SIZE, SIZE] float32 in [0, 1]
  y: np.ndarray  # [N] int32


class Task(NamedTuple):
  """One task of the stream, with its own label space."""
  name: str
  num_classes: int
  train: Split
  dev: Split
  test: Split


def _split(x: np.ndarray, y: np.ndarray, num_train: int, num_dev: int, num_test: int,
           rng: np.random.Generator) -> Tuple[Split, Split, Split]:
  if num_train + num_dev + num_test > len(x):
    raise ValueError(f"asked for {num_train}+{num_dev}+{num_test} examples, the source has {len(x)}")
  order = rng.permutation(len(x))
  x, y = x[order].astype(np.float32), y[order].astype(np.int32)
  a, b = num_train, num_train + num_dev
  return Split(x[:a], y[:a]), Split(x[a:b], y[a:b]), Split(x[b:b + num_test], y[b:b + num_test])


# ----------------------------------------------------------------------------------------------
# Sources.


def digits_images() -> Tuple[np.ndarray, np.ndarray]:
  """All 1,797 scikit-learn digits, 16×16 in [0, 1]."""
  from sklearn.datasets import load_digits  # Ships with scikit-learn (no download).
  data = load_digits()
  images = np.kron(data.images / 16.0, np.ones((2, 2)))
  return images.astype(np.float32), data.target.astype(np.int32)


@functools.lru_cache(maxsize=None)
def font_paths() -> Tuple[str, ...]:
  """TrueType fonts bundled with matplotlib that render Latin capitals."""
  import matplotlib
  folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
  names = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
           "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
           "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf"]
  return tuple(os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n)))


def glyph_images(n: int, seed: int, letters: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 ) -> Tuple[np.ndarray, np.ndarray]:
  """`n` rendered capitals: random font, size, offset, rotation, then pixel noise."""
  from PIL import Image, ImageDraw, ImageFont
  rng = np.random.default_rng(seed)
  paths = font_paths()
  if not paths:
    raise RuntimeError("no TrueType font found in matplotlib's mpl-data/fonts/ttf")
  fonts: Dict[Tuple[int, int], "ImageFont.FreeTypeFont"] = {}
  canvas = 2 * SIZE
  images = np.empty((n, SIZE, SIZE), np.float32)
  labels = rng.integers(0, len(letters), size=n).astype(np.int32)
  for i in range(n):
    f, pt = int(rng.integers(len(paths))), int(rng.integers(18, 27))
    if (f, pt) not in fonts:
      fonts[(f, pt)] = ImageFont.truetype(paths[f], pt)
    img = Image.new("L", (canvas, canvas), 0)
    dx, dy = rng.integers(-3, 4, size=2)
    ImageDraw.Draw(img).text((canvas // 2 + dx, canvas // 2 + dy), letters[labels[i]], fill=255,
                             font=fonts[(f, pt)], anchor="mm")
    img = img.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    images[i] = np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR), np.float32) / 255.0
  images += rng.normal(scale=0.05, size=images.shape).astype(np.float32)
  return np.clip(images, 0.0, 1.0), labels


SHAPES = ("disc", "square", "triangle", "ring", "cross", "bar")


def shape_images(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """`n` procedural shapes (classes: SHAPES) with random centre, size and intensity, plus noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
  labels = rng.integers(0, len(SHAPES), size=n).astype(np.int32)
  images = np.empty((n, SIZE, SIZE), np.float32)
  for i, label in enumerate(labels):
    r = rng.uniform(3.0, 6.0)
    cx, cy = rng.uniform(r + 1, SIZE - r - 1, size=2)
    dx, dy = xx - cx, yy - cy
    shape = SHAPES[label]
    if shape == "disc":
      mask = dx**2 + dy**2 <= r**2
    elif shape == "square":
      mask = (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    elif shape == "triangle":
      mask = (dy <= 0.8 * r) & (dy >= -r + 2.0 * np.abs(dx))
    elif shape == "ring":
      mask = np.abs(np.sqrt(dx**2 + dy**2) - 0.8 * r) <= 1.0
    elif shape == "cross":
      mask = ((np.abs(dx) <= 1.0) & (np.abs(dy) <= r)) | ((np.abs(dy) <= 1.0) & (np.abs(dx) <= r))
    else:  # bar
      mask = (np.abs(dy) <= 1.0) & (np.abs(dx) <= r)
    images[i] = rng.uniform(0.6, 1.0) * mask
  images += rng.normal(scale=0.1, size=images.shape).astype(np.float32)
  return np.clip(images, 0.0, 1.0), labels


def texture_images(n: int, seed: int, num_orientations: int = 8) -> Tuple[np.ndarray, np.ndarray]:
  """`n` sinusoidal gratings; the class is the orientation (num_orientations bins over 180°)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
  labels = rng.integers(0, num_orientations, size=n).astype(np.int32)
  theta = (labels + rng.uniform(-0.2, 0.2, size=n)) * np.pi / num_orientations
  freq = rng.uniform(0.5, 1.2, size=n)
  phase = rng.uniform(0, 2 * np.pi, size=n)
  proj = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy
  images = 0.5 + 0.4 * np.sin(freq[:, None, None] * proj + phase[:, None, None])
  images += rng.normal(scale=0.15, size=images.shape)
  return np.clip(images, 0.0, 1.0).astype(np.float32), labels


# ----------------------------------------------------------------------------------------------
# Tasks and streams.


def make_task(name: str, num_train: int, seed: int, num_dev: int = 200, num_test: int = 500) -> Task:
  """A task from one source; `name` is one of TASK_SOURCES."""
  rng = np.random.default_rng(seed)
  total = num_train + num_dev + num_test
  if name == "digits":
    x, y = digits_images()
    classes = 10
  elif name == "glyphs":
    x, y = glyph_images(total, seed)
    classes = 26
  elif name == "shapes":
    x, y = shape_images(total, seed)
    classes = len(SHAPES)
  elif name == "textures":
    x, y = texture_images(total, seed)
    classes = 8
  else:
    raise ValueError(f"unknown task source {name!r}; expected one of {TASK_SOURCES}")
  train, dev, test = _split(x, y, num_train, num_dev, num_test, rng)
  return Task(f"{name}_{num_train}", classes, train, dev, test)


TASK_SOURCES = ("digits", "glyphs", "shapes", "textures")

# name -> chronological list of (source, number of training examples).
STREAMS: Dict[str, List[Tuple[str, int]]] = {
    # Sizes 100 to 10,000 (two orders of magnitude), label spaces of 6, 8, 10 and 26 classes.
    "offline_small": [("glyphs", 10_000), ("shapes", 1_000), ("digits", 1_000), ("textures", 100),
                      ("glyphs", 300), ("shapes", 100)],
    # A quick stream for tests and smoke runs.
    "tiny": [("shapes", 300), ("textures", 100), ("digits", 200)],
}


def make_stream(name: str, seed: int = 0) -> List[Task]:
  """The tasks of a named stream (STREAMS), in chronological order."""
  if name not in STREAMS:
    raise ValueError(f"unknown stream {name!r}; expected one of {sorted(STREAMS)}")
  return [make_task(source, n, seed * 1000 + i) for i, (source, n) in enumerate(STREAMS[name])]
