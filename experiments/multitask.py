"""Experiment 2: multi-task learning (MTL) against single-target models.

One backbone with four heads (``--mtl``: drums, bass, other, vocals) against
single-target models, all with the universal band split with 41 edges (the
refined paper's configuration), on the same data and seeds:

* ``single_<t>_quarter``: the SAME TOTAL BUDGET. The MTL run draws E epochs
  x X examples (every example carries all four stems, one optimizer step per
  batch); each single-target model draws E x X/4, so the four together make
  exactly as many optimizer steps on as many examples (and the same
  learning-rate schedule per epoch) as the MTL run.
* ``single_<t>_full``: each single-target model gets the MTL run's FULL
  budget (E x X), four times the total.

At ``--scale cpu`` the songs have no piano and no guitar
(experiments/holdout_data.py), so that the MTL models are also experiment
3's frozen backbones (``new_instrument.py`` reuses them), and
``single_drums_full`` is experiment 1's ``drums_universal41`` (reused).

Examples::

    python -m experiments.multitask --scale cpu          # 3 seeds, held-out evaluation
    python -m experiments.multitask --scale paper --musdb-root ~/data/musdb18hq
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from experiments import common, driver, records
from experiments.common import BAND_SPLITS, Run

EXPERIMENT = "multitask"
TARGETS = ("drums", "bass", "other", "vocals")
SPLIT = "universal41"
MTL = "mtl4"
ARMS = ("quarter", "full")


def single_setting(target: str, arm: str = "quarter") -> str:
    return f"single_{target}_{arm}"


def plan(base: dict) -> List[Run]:
    shared = [*common.common_flags(base), *BAND_SPLITS[SPLIT], *base["model"]]
    epochs, examples = base["epochs"], base["examples"]
    quarter = examples // len(TARGETS)
    if quarter < 1 or quarter * len(TARGETS) != examples:
        raise common.ExperimentError(f"examples per epoch ({examples}) must be a multiple of "
                                     f"{len(TARGETS)}")
    runs = []
    for seed in base["seeds"]:
        runs.append(Run(MTL, seed, [*shared, "--mtl", "--targets", *TARGETS,
                                    *common.budget_flags(epochs, examples)],
                        group="mtl", keep_backbone=True,  # new_instrument's backbones
                        meta={"budget_examples": epochs * examples}))
    for arm, per_epoch in (("quarter", quarter), ("full", examples)):
        for seed in base["seeds"]:
            for target in TARGETS:
                # single_drums_full has the flags of band_split's drums_universal41.
                runs.append(Run(single_setting(target, arm), seed,
                                [*shared, "--targets", target,
                                 *common.budget_flags(epochs, per_epoch)],
                                group=f"single_{arm}",
                                meta={"budget_examples": epochs * per_epoch}))
    return runs


def plot(results: dict, out: str) -> List[str]:
    """Held-out gain per target of the three arms (bars), and the validation
    gain per epoch of each target (curves)."""
    plt = common.pyplot()
    by_setting = records.by_setting(results.values())
    arms = [("MTL, one backbone (E x X)", by_setting.get(MTL, []))]
    for arm, label in (("quarter", "single-target, each E x X/4 (same total)"),
                       ("full", "single-target, each E x X (4x the total)")):
        arms.append((label, [r for t in TARGETS
                             for r in by_setting.get(single_setting(t, arm), [])]))
    fig, ax = plt.subplots(figsize=(8, 4))
    common.plot_bars(ax, arms, TARGETS, common.test_gain)
    ax.set_ylabel("held-out gain over the best-scaled mixture (dB)")
    ax.set_title("MTL vs single-target (mean over seeds, bars min-max)", fontsize=9)
    paths = [common.save_figure(fig, os.path.join(out, "mtl_vs_single.png"))]

    fig, axes = plt.subplots(1, len(TARGETS), figsize=(4 * len(TARGETS), 3.5))
    for ax, target in zip(axes, TARGETS):
        for setting, label, style in ((MTL, "MTL", "-"),
                                      (single_setting(target, "quarter"), "single, E x X/4", ":"),
                                      (single_setting(target, "full"), "single, E x X", "--")):
            common.plot_mean_curve(ax, by_setting.get(setting, []), target, label,
                                   metric="valid_gain", style=style)
        common.finish_axes(ax, target, "epoch", "validation gain (dB)")
    fig.suptitle("Validation gain over the best-scaled mixture per epoch (mean, shaded "
                 "min-max over seeds)", fontsize=10)
    paths.append(common.save_figure(fig, os.path.join(out, "gain_per_epoch.png")))
    return paths

BUDGET = ("MTL: E epochs x X examples; single-target: E x X/4 each (the four together "
          "equal the MTL run's optimizer steps x examples) and E x X each (the MTL run's "
          "full budget each)")


def build_parser() -> argparse.ArgumentParser:
    return common.build_parser(__doc__, EXPERIMENT)


def main(argv=None) -> int:
    return driver.run_experiment(EXPERIMENT, build_parser().parse_args(argv), plan, plot,
                                 lambda base: {"band_split": SPLIT, "budget": BUDGET})


if __name__ == "__main__":
    sys.exit(main())
