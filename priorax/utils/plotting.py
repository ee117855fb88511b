"""The learning-curve plot of a run: evaluation return against environment steps."""

import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def plot_learning_curve(evaluator_csv: str, png_path: str, title: str, *,
                        x_key: str = "actor_steps", x_label: str = "environment steps") -> bool:
  """Plots `episode_return` (mean ± std over evaluation episodes) against the column `x_key`.

  Returns False (and writes nothing) while the CSV has no rows.
  """
  if not os.path.exists(evaluator_csv):
    return False
  with open(evaluator_csv, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    return False
  steps = [float(r[x_key]) for r in rows]
  mean = [float(r["episode_return"]) for r in rows]
  std = [float(r.get("episode_return_std") or 0.0) for r in rows]
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(steps, mean, marker="o")
  ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                  alpha=0.2)
  ax.set_xlabel(x_label)
  ax.set_ylabel("evaluation return")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
  return True
