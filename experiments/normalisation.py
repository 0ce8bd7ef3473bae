"""Experiment 4: normalisation statistics over the chunk (the BSRNN authors')
against per-frame layer norms, for the v7 and the universal-41 band split.

Four multi-target runs (``--mtl``) with the same seed and budget, one per
(``--norm chunk|frame``, band split), each scored on the held-out songs by
``evaluate.py``: the gain over the best-scaled mixture per target is the
figure to compare (validation per epoch and test). With per-frame
statistics a band's level is normalised away in every frame; one-bin bands
(9 of the 36 with 41 universal edges) keep almost nothing of it.

Examples::

    python -m experiments.normalisation --scale cpu       # cpu preset, seed 0, ~100 min
    python -m experiments.normalisation --scale paper --musdb-root ~/data/musdb18hq
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from experiments import common, driver
from experiments.common import BAND_SPLITS, Run

EXPERIMENT = "normalisation"
NORMS = ("chunk", "frame")
SPLITS = ("universal41", "v7")
TARGETS = ("drums", "bass", "other", "vocals")


def setting(norm: str, split: str) -> str:
    return f"{norm}_{split}"


def plan(base: dict) -> List[Run]:
    shared = common.common_flags(base)
    return [Run(setting(norm, split), seed,
                [*shared, "--mtl", "--norm", norm, *BAND_SPLITS[split], *base["model"],
                 *common.budget_flags(base["epochs"], base["examples"])],
                group=split, meta={"norm": norm, "band_split": split})
            for seed in base["seeds"] for split in SPLITS for norm in NORMS]


def plot(results: dict, out: str) -> List[str]:
    """Validation gain over the best-scaled mixture per epoch, one panel per
    target: chunk solid, frame dashed, one colour per band split."""
    plt = common.pyplot()
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(4 * len(TARGETS), 3.6), sharey=True)
    colors = {"universal41": "tab:green", "v7": "tab:blue"}
    for ax, target in zip(axes, TARGETS):
        for r in sorted(results.values(), key=lambda r: (r["band_split"], r["norm"])):
            if "valid_gain" not in r:
                continue
            ax.plot(r["epochs"], r["valid_gain"][target], color=colors[r["band_split"]],
                    linestyle="-" if r["norm"] == "chunk" else "--",
                    label=f"{r['norm']}, {r['band_split']} (seed {r['seed']})")
        ax.axhline(0.0, color="gray", linewidth=0.8)
        ax.set_title(target, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation gain over the best-scaled mixture (dB)")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    fig.suptitle("Normalisation statistics: over the chunk (solid) or per frame (dashed)",
                 fontsize=10)
    return [common.save_figure(fig, os.path.join(out, "gain_per_epoch.png"))]


def build_parser() -> argparse.ArgumentParser:
    return common.build_parser(__doc__, EXPERIMENT)


def main(argv=None) -> int:
    return driver.run_experiment(EXPERIMENT, build_parser().parse_args(argv), plan, plot,
                                 lambda base: {"norms": list(NORMS), "splits": list(SPLITS)})


if __name__ == "__main__":
    sys.exit(main())
