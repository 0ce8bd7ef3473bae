"""Experiment 2: multi-task learning (MTL) against single-target models, and
transfer of an MTL backbone to an instrument it never saw.

A. One backbone with four heads (``--mtl``: drums, bass, other, vocals)
   against four single-target models with the SAME TOTAL BUDGET: the MTL run
   draws E epochs x X examples (every example carries all four stems, one
   optimizer step per batch); each single-target model draws E epochs x X/4
   examples, so the four together make exactly as many optimizer steps on as
   many examples (and the same learning-rate schedule per epoch) as the MTL
   run. All use the universal band split with 41 edges (the refined paper's
   configuration; also the cheapest of the three splits on a CPU).

B. Hold-out transfer to vocals: an MTL backbone trained WITHOUT vocals
   (``--mtl --targets drums bass other``, E x X) against a single-target drums
   backbone with the same budget (E x X); each frozen backbone gets a new
   vocals head trained with the same transfer budget.

Examples::

    python experiments/multitask.py                      # cpu-small, seeds 0 1
    python experiments/multitask.py --scale paper --musdb-root ~/data/musdb18hq
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import common, driver, records  # noqa: E402
from experiments.common import BAND_SPLITS, Run  # noqa: E402

EXPERIMENT = "multitask"
TARGETS = ("drums", "bass", "other", "vocals")
HOLDOUT = "vocals"
SPLIT = "universal41"
MTL = "mtl4"
MTL_HOLDOUT = "mtl3_no_vocals"
DRUMS = "drums_single_full"


def single_setting(target: str) -> str:
    return f"single_{target}_quarter"


def transfer_setting(source: str) -> str:
    return f"{HOLDOUT}_from_{source}"


def plan(base: dict) -> List[Run]:
    shared = [*common.common_flags(base), *BAND_SPLITS[SPLIT], *base["model"]]
    epochs, examples = base["epochs"], base["examples"]
    quarter = examples // len(TARGETS)
    if quarter < 1 or quarter * len(TARGETS) != examples:
        raise common.ExperimentError(f"examples per epoch ({examples}) must be a multiple of "
                                     f"{len(TARGETS)}")
    full = common.budget_flags(epochs, examples)
    transfer = common.budget_flags(base["transfer_epochs"], base["transfer_examples"])
    holdout_targets = [t for t in TARGETS if t != HOLDOUT]
    runs = []
    for seed in base["seeds"]:
        runs.append(Run(MTL, seed, [*shared, "--mtl", "--targets", *TARGETS, *full],
                        group="mtl", meta={"part": "A", "budget_examples": epochs * examples}))
        for target in TARGETS:
            runs.append(Run(single_setting(target), seed,
                            [*shared, "--targets", target,
                             *common.budget_flags(epochs, quarter)],
                            group="single", meta={"part": "A",
                                                  "budget_examples": epochs * quarter}))
    for seed in base["seeds"]:
        runs.append(Run(MTL_HOLDOUT, seed, [*shared, "--mtl", "--targets", *holdout_targets,
                                            *full],
                        group="mtl", meta={"part": "B", "budget_examples": epochs * examples}))
        # The same flags as band_split's drums_universal41: reused when it exists.
        runs.append(Run(DRUMS, seed, [*shared, "--targets", "drums", *full],
                        group="single", meta={"part": "B", "budget_examples": epochs * examples}))
    for seed in base["seeds"]:
        for source in (MTL_HOLDOUT, DRUMS):
            runs.append(Run(transfer_setting(source), seed,
                            [*common.common_flags(base), "--targets", HOLDOUT, *transfer],
                            group=source, stage="transfer", backbone=f"{source}-seed{seed}",
                            meta={"part": "B"}))
    return runs


def plot(results: dict, out: str) -> List[str]:
    plt = common.pyplot()
    by_setting = records.by_setting(results.values())
    paths = []

    # A: best validation uSDR per target, MTL vs single (same total budget).
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for offset, label, pick in ((-width / 2, "MTL, one backbone (E x X)",
                                 lambda t: by_setting.get(MTL, [])),
                                (width / 2, "single-target, each E x X/4",
                                 lambda t: by_setting.get(single_setting(t), []))):
        means, lows, highs, xs = [], [], [], []
        for i, target in enumerate(TARGETS):
            values = [r["best_valid_usdr"][target] for r in pick(target)
                      if target in r.get("best_valid_usdr", {})]
            if not values:
                continue
            s = records.stats(values)
            xs.append(i + offset)
            means.append(s["mean"])
            lows.append(s["mean"] - s["min"])
            highs.append(s["max"] - s["mean"])
        if xs:
            bars = ax.bar(xs, means, width, yerr=[lows, highs], capsize=3, label=label)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(TARGETS)), TARGETS)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("best validation uSDR (dB)")
    ax.set_title("MTL vs single-target, same total budget (mean, bars min-max over seeds)",
                 fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    paths.append(common.save_figure(fig, os.path.join(out, "mtl_vs_single.png")))

    # B: vocals transfer curves.
    fig, ax = plt.subplots(figsize=(6, 4))
    for source, label in ((MTL_HOLDOUT, "frozen MTL backbone (drums, bass, other)"),
                          (DRUMS, "frozen drums backbone")):
        runs = by_setting.get(transfer_setting(source), [])
        if runs:
            common.plot_mean_curve(ax, runs, HOLDOUT, label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation uSDR {HOLDOUT} (dB)")
    ax.set_title(f"Transfer to the held-out {HOLDOUT} (mean, shaded min-max)", fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    paths.append(common.save_figure(fig, os.path.join(out, "holdout_transfer.png")))
    return paths


BUDGET = ("MTL: E epochs x X examples; each of the 4 single-target models: E x X/4 "
          "(equal total optimizer steps x examples); hold-out backbones: E x X each")


def build_parser() -> argparse.ArgumentParser:
    return common.build_parser(__doc__, EXPERIMENT)


def main(argv=None) -> int:
    return driver.run_experiment(EXPERIMENT, build_parser().parse_args(argv), plan, plot,
                                 lambda base: {"band_split": SPLIT, "budget": BUDGET})


if __name__ == "__main__":
    sys.exit(main())
