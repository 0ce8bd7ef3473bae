"""Experiment 1: band split schemas for drums, then drums -> bass transfer.

The refined paper's figure 8: a drums model with the v7 band split against
the same model with the universal 24-TET split (all its edges, and 41 of
them), with the same budget and seeds; then each frozen drums backbone gets
a new bass head (``--init-backbone <drums run> --freeze-backbone --targets
bass``), and, as the yardstick of the transfer, a bass model of the same
split is trained from scratch with the same budget as the head. Validation
gain over the best-scaled mixture per epoch of every stage is plotted; the
held-out gains are in the result files (at ``--scale cpu``).

Examples::

    python -m experiments.band_split --scale cpu          # 3 seeds, held-out evaluation
    python -m experiments.band_split --scale paper --musdb-root ~/data/musdb18hq
    python -m experiments.band_split --scale paper --dry-run   # the commands only
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from experiments import common, driver, records
from experiments.common import BAND_SPLITS, Run

EXPERIMENT = "band_split"
SPLITS = ("v7", "universal", "universal41")
SOURCE, TARGET = "drums", "bass"


def backbone_setting(split: str) -> str:
    return f"{SOURCE}_{split}"


def transfer_setting(split: str) -> str:
    return f"{TARGET}_from_{SOURCE}_{split}"


def scratch_setting(split: str) -> str:
    return f"{TARGET}_scratch_{split}"


def plan(base: dict) -> List[Run]:
    """Every run, seed by seed (so that a seed's backbones are used soon
    after they are trained): the drums models of the three splits, then for
    each one its frozen-backbone bass transfer, then the bass models from
    scratch with the transfer's budget."""
    shared = common.common_flags(base)
    transfer = common.budget_flags(base["transfer_epochs"], base["transfer_examples"])
    runs = []
    for seed in base["seeds"]:
        for split in SPLITS:
            runs.append(Run(backbone_setting(split), seed,
                            [*shared, "--targets", SOURCE, *BAND_SPLITS[split], *base["model"],
                             *common.budget_flags(base["epochs"], base["examples"])],
                            group=split, stage="train", keep_backbone=True,
                            meta={"band_split": split}))
        for split in SPLITS:
            runs.append(Run(transfer_setting(split), seed, [*shared, "--targets", TARGET,
                                                            *transfer],
                            group=split, stage="transfer",
                            backbone=common.run_key(backbone_setting(split), seed),
                            meta={"band_split": split}))
        for split in SPLITS:
            runs.append(Run(scratch_setting(split), seed,
                            [*shared, "--targets", TARGET, *BAND_SPLITS[split], *base["model"],
                             *transfer],
                            group=split, stage="train", meta={"band_split": split}))
    return runs


def plot(results: dict, out: str) -> List[str]:
    """Figure 8: validation gain per epoch, drums training, bass transfer and
    bass from scratch."""
    plt = common.pyplot()
    by_setting = records.by_setting(results.values())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"v7": "tab:blue", "universal": "tab:orange", "universal41": "tab:green"}
    for ax, curves, target, title in (
            (axes[0], ((backbone_setting, "", "-"),), SOURCE,
             f"{SOURCE}: training from scratch"),
            (axes[1], ((transfer_setting, "frozen drums backbone", "-"),
                       (scratch_setting, "from scratch", ":")), TARGET,
             f"{TARGET}: new head on the frozen {SOURCE} backbone vs from scratch")):
        for setting_of, what, style in curves:
            for split in SPLITS:
                runs = by_setting.get(setting_of(split), [])
                if runs:
                    bands = runs[0].get("num_bands")
                    label = f"{split} ({bands} bands)" + (f", {what}" if what else "")
                    common.plot_mean_curve(ax, runs, target, label, colors[split],
                                           metric="valid_gain", style=style)
        common.finish_axes(ax, title, "epoch", f"validation gain {target} (dB)")
    fig.suptitle("Band split schemas: gain over the best-scaled mixture, mean over seeds, "
                 "shaded min-max", fontsize=10)
    return [common.save_figure(fig, os.path.join(out, "gain_per_epoch.png"))]


def build_parser() -> argparse.ArgumentParser:
    return common.build_parser(__doc__, EXPERIMENT)


def main(argv=None) -> int:
    return driver.run_experiment(EXPERIMENT, build_parser().parse_args(argv), plan, plot,
                                 lambda base: {"splits": list(SPLITS)})


if __name__ == "__main__":
    sys.exit(main())
