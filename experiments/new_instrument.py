"""Experiment 3: a new instrument added to a trained model by one head.

The refined paper's promise: a backbone trained with multi-task learning on
drums, bass, other and vocals, then frozen, separates an instrument it never
heard once a head for it is trained. Per band split (``universal41``, the
refined paper's, and ``v7``) and seed:

1. ``mtl4_<split>``: the backbone, ``--mtl`` on songs with NO piano and NO
   guitar anywhere in their mixtures (experiments/holdout_data.py). For
   ``universal41`` these are experiment 2's ``mtl4`` runs (same flags:
   reused).
2. For each new instrument (piano, guitar), on the songs that have it
   (``<track>/piano.wav``; the mixture holds it, ``other`` is the rest):

   * ``<inst>_head_<split>``: a new head on the frozen backbone
     (``--init-backbone <mtl4 run> --freeze-backbone --targets piano``),
     T epochs x X examples;
   * ``<inst>_scratch_<split>``: a whole model for the instrument from
     scratch with the SAME BUDGET (T x X);
   * ``<inst>_small_<split>``: a model from scratch with about as many
     trainable parameters as the head (N = 25 instead of 32: 1.23 M against
     the head's 1.21 M with universal41, 1.25 M against 1.23 M with v7),
     same budget.

Every model is scored on the held-out test songs that have the instrument
(gain over the best-scaled mixture, oracle IRM beside it); the figures put
the validation gain against minutes of training: "a new instrument in N
minutes on a CPU".

Examples::

    python -m experiments.new_instrument --scale cpu
    python -m experiments.new_instrument --scale cpu --only piano_head_universal41
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from experiments import common, driver, records
from experiments.common import BAND_SPLITS, Run
from experiments.multitask import TARGETS

EXPERIMENT = "new_instrument"
INSTRUMENTS = ("piano", "guitar")
SPLITS = ("universal41", "v7")
ARMS = ("head", "scratch", "small")
ARM_LABELS = {"head": "new head on the frozen MTL backbone",
              "scratch": "whole model from scratch, same budget",
              "small": "from scratch, as many parameters as a head"}


def backbone_setting(split: str) -> str:
    return "mtl4" if split == "universal41" else f"mtl4_{split}"


def setting(instrument: str, arm: str, split: str) -> str:
    return f"{instrument}_{arm}_{split}"


def plan(base: dict) -> List[Run]:
    """Per seed and split: the backbone, then for each instrument its head,
    its model from scratch and its small model from scratch."""
    shared = common.common_flags(base)
    transfer = common.budget_flags(base["transfer_epochs"], base["transfer_examples"])
    small = base.get("small_feature_dim")  # N of the "as many parameters as a head" models
    runs = []
    for seed in base["seeds"]:
        for split in SPLITS:
            bands = BAND_SPLITS[split]
            runs.append(Run(backbone_setting(split), seed,
                            [*shared, *bands, *base["model"], "--mtl", "--targets", *TARGETS,
                             *common.budget_flags(base["epochs"], base["examples"])],
                            group=split, keep_backbone=True,
                            meta={"band_split": split, "arm": "backbone"}))
            for instrument in INSTRUMENTS:
                meta = {"band_split": split, "instrument": instrument}
                runs.append(Run(setting(instrument, "head", split), seed,
                                [*shared, "--targets", instrument, *transfer], group=split,
                                stage="transfer", backbone=f"{backbone_setting(split)}-seed{seed}",
                                data="instruments", meta={**meta, "arm": "head"}))
                runs.append(Run(setting(instrument, "scratch", split), seed,
                                [*shared, *bands, *base["model"], "--targets", instrument,
                                 *transfer], group=split, data="instruments",
                                meta={**meta, "arm": "scratch"}))
                if small:
                    runs.append(Run(setting(instrument, "small", split), seed,
                                    [*shared, *bands, "--feature-dim", str(small),
                                     "--targets", instrument, *transfer], group=split,
                                    data="instruments", meta={**meta, "arm": "small"}))
    return runs


def plot(results: dict, out: str) -> List[str]:
    """Held-out gain per instrument and arm (bars, per split), and the
    validation gain against minutes of training (curves)."""
    plt = common.pyplot()
    by_setting = records.by_setting(results.values())
    paths = []
    fig, axes = plt.subplots(1, len(SPLITS), figsize=(6 * len(SPLITS), 4), squeeze=False)
    for ax, split in zip(axes[0], SPLITS):
        groups = [(ARM_LABELS[arm], [r for i in INSTRUMENTS
                                     for r in by_setting.get(setting(i, arm, split), [])])
                  for arm in ARMS]
        common.plot_bars(ax, groups, INSTRUMENTS, common.test_gain)
        ax.set_title(f"{split}: held-out gain (mean, bars min-max over seeds)", fontsize=9)
        ax.set_ylabel("gain over the best-scaled mixture (dB)")
    paths.append(common.save_figure(fig, os.path.join(out, "new_instrument_gain.png")))

    fig, axes = plt.subplots(len(INSTRUMENTS), len(SPLITS),
                             figsize=(6 * len(SPLITS), 3.6 * len(INSTRUMENTS)), squeeze=False)
    styles = {"head": "-", "scratch": "--", "small": ":"}
    for row, instrument in enumerate(INSTRUMENTS):
        for col, split in enumerate(SPLITS):
            ax = axes[row][col]
            for arm in ARMS:
                common.plot_mean_curve(ax, by_setting.get(setting(instrument, arm, split), []),
                                       instrument, ARM_LABELS[arm], metric="valid_gain",
                                       x="minutes", style=styles[arm])
            common.finish_axes(ax, f"{instrument}, {split}",
                               "minutes of training (2 CPU cores, mean over seeds)",
                               "validation gain (dB)")
    fig.suptitle("A new instrument: validation gain over the best-scaled mixture against "
                 "training time", fontsize=10)
    paths.append(common.save_figure(fig, os.path.join(out, "gain_vs_minutes.png")))
    return paths

BUDGET = ("backbones: E epochs x X examples (MTL, songs without piano and guitar); every "
          "new-instrument model (head, from scratch, small from scratch): T x X on the songs "
          "with the instrument")


def build_parser() -> argparse.ArgumentParser:
    return common.build_parser(__doc__, EXPERIMENT)


def main(argv=None) -> int:
    return driver.run_experiment(EXPERIMENT, build_parser().parse_args(argv), plan, plot,
                                 lambda base: {"splits": list(SPLITS),
                                               "instruments": list(INSTRUMENTS),
                                               "budget": BUDGET})


if __name__ == "__main__":
    sys.exit(main())
