"""Experiment 3: validation uSDR against parameter count.

Drums models of a few sizes (N features per band, L band-sequence blocks)
with each band split (v7, universal, universal with 41 edges), the same
budget and seeds: the refined paper's open question "how big does the model
need to be, and does the generic band split change that?".

Examples::

    python -m experiments.model_size                      # cpu-small, seeds 0 1
    python -m experiments.model_size --scale paper --musdb-root ~/data/musdb18hq
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from experiments import common, driver, records
from experiments.common import BAND_SPLITS, Run

EXPERIMENT = "model_size"
SPLITS = ("v7", "universal", "universal41")
TARGET = "drums"


def setting(split: str, n: int, layers: int) -> str:
    return f"{TARGET}_{split}_N{n}_L{layers}"


def plan(base: dict) -> List[Run]:
    shared = common.common_flags(base)
    budget = common.budget_flags(base["epochs"], base["examples"])
    runs = []
    for n, layers in base["sizes"]:  # sizes outermost: a cut-short run misses whole sizes
        for seed in base["seeds"]:
            for split in SPLITS:
                # The size that matches band_split's drums runs reuses them.
                runs.append(Run(setting(split, n, layers), seed,
                                [*shared, "--targets", TARGET, *BAND_SPLITS[split],
                                 "--feature-dim", str(n), "--num-layers", str(layers), *budget],
                                group=split, meta={"band_split": split, "feature_dim": n,
                                                   "num_layers": layers}))
    return runs


def plot(results: dict, out: str) -> List[str]:
    plt = common.pyplot()
    groups = {}
    for r in results.values():
        groups.setdefault(r["band_split"], {}).setdefault(
            (r["feature_dim"], r["num_layers"]), []).append(r)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"v7": "tab:blue", "universal": "tab:orange", "universal41": "tab:green"}
    for split in SPLITS:
        sizes = groups.get(split, {})
        points = []
        for (n, layers), runs in sizes.items():
            s = records.stats(r["best_valid_usdr"][TARGET] for r in runs)
            points.append((runs[0]["parameters"], s, n, layers, runs))
        points.sort(key=lambda p: p[0])
        if not points:
            continue
        xs = [p[0] for p in points]
        means = [p[1]["mean"] for p in points]
        err = [[p[1]["mean"] - p[1]["min"] for p in points],
               [p[1]["max"] - p[1]["mean"] for p in points]]
        ax.errorbar(xs, means, yerr=err, marker="o", capsize=3, color=colors[split],
                    label=f"{split} ({points[0][4][0].get('num_bands')} bands)")
        for x, runs in ((p[0], p[4]) for p in points):
            ax.scatter([x] * len(runs), [r["best_valid_usdr"][TARGET] for r in runs],
                       s=10, color=colors[split], alpha=0.5)
        for x, m, (_, _, n, layers, _) in zip(xs, means, points):
            ax.annotate(f"N{n} L{layers}", (x, m), textcoords="offset points", xytext=(4, -10),
                        fontsize=7, color=colors[split])
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"best validation uSDR {TARGET} (dB)")
    ax.set_title("Model size: mean over seeds (bars min-max, dots single seeds)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return [common.save_figure(fig, os.path.join(out, "usdr_vs_parameters.png"))]


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(__doc__, EXPERIMENT)
    p.add_argument("--sizes", nargs="+", metavar="N:L",
                   help="model sizes (default per scale, e.g. 4:1 8:1 16:1 at cpu-small)")
    return p


def _sizes(base: dict, args) -> None:
    if args.sizes:
        try:
            base["sizes"] = [tuple(int(x) for x in s.split(":")) for s in args.sizes]
            assert all(len(s) == 2 for s in base["sizes"])
        except (ValueError, AssertionError):
            raise common.ExperimentError(f"--sizes: expected N:L pairs, got {args.sizes}")


def main(argv=None) -> int:
    return driver.run_experiment(
        EXPERIMENT, build_parser().parse_args(argv), plan, plot,
        lambda base: {"splits": list(SPLITS), "sizes": [list(s) for s in base["sizes"]]},
        adjust_base=_sizes)


if __name__ == "__main__":
    sys.exit(main())
