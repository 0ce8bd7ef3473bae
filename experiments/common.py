"""Shared pieces of the experiment drivers: the scales (:data:`BASE`), the
band splits' flags, :class:`Run` (one ``training/fit.py`` invocation of a
setting and seed), the options every driver takes, figures and paths.

Running the runs is :mod:`experiments.driver`; the result files and the
statistics over them are :mod:`experiments.records`.

Layout under ``--out`` (default ``experiments/results/<experiment>/``)::

    <setting>-seed<k>.json     one result per run (kept in git)
    summary.json               mean / std / min / max over seeds per setting
    *.png                      figures
    runs/<setting>-seed<k>/    fit.py's run directory (checkpoints, model)
    runs/<setting>-seed<k>.log fit.py's (and evaluate.py's) output
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
from typing import List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIT = os.path.join(ROOT, "training", "fit.py")
EVALUATE = os.path.join(ROOT, "training", "evaluate.py")
RESULTS = os.path.join(ROOT, "experiments", "results")

# Scales. ``test`` is hidden (tests only): one seed, one epoch, seconds per run.
# ``cpu-small`` is sized so that the three experiments take about an hour on
# a 2-core CPU machine with the built-in dataset (see README.md).
# ``paper`` is the refined paper's setting (about 4 M parameters, MUSDB18-HQ,
# ~150 epochs) for a GPU; its runs are long.
SCALES = ("cpu-small", "cpu", "paper")
HIDDEN_SCALES = ("test",)

BASE = {
    "test": {"preset": "tiny", "batch_size": 2, "valid_examples": 4, "seeds": [0],
             "flags": ["--segment-seconds", "0.5", "--no-activity-detection", "--patience", "0"],
             "model": ["--feature-dim", "8", "--num-layers", "1"], "epochs": 1, "examples": 8, "transfer_epochs": 1,
             "transfer_examples": 4, "sizes": [(4, 1), (8, 1)], "evaluate": False,
             "small_feature_dim": 6},
    # tiny preset (n_fft 512, hop 128) with N = 8, L = 1; 1 s training chunks,
    # batch 4: 6 epochs x 48 examples = 72 optimizer steps per backbone.
    "cpu-small": {"preset": "tiny", "batch_size": 4, "valid_examples": 16, "seeds": [0, 1],
                  "flags": ["--segment-seconds", "1", "--patience", "0"],
                  "model": ["--feature-dim", "8", "--num-layers", "1"],
                  "epochs": 6, "examples": 48, "transfer_epochs": 4, "transfer_examples": 48,
                  "sizes": [(4, 1), (8, 1)], "evaluate": False},
    # The cpu preset's recipe (README, experiments/CPU_RECIPE.md): N = 32,
    # L = 3, n_fft 2048, 2 s chunks, batch 4, loss bsrnn+sdr; 12 epochs x 400
    # examples per model trained from scratch (about 25 min for a
    # multi-target run alone on 2 CPU cores), 6 x 400 per head on a frozen
    # backbone; three seeds. Data: experiments/holdout_data.py (songs without
    # piano and guitar for every backbone; the songs with them for the
    # new-instrument heads), unless --musdb-root is given. Held-out scores
    # without museval's cSDR (the gain is from uSDR; cSDR took most of each
    # evaluation's time).
    "cpu": {"preset": "cpu", "batch_size": 4, "valid_examples": 32, "seeds": [0, 1, 2],
            "flags": ["--segment-seconds", "2", "--patience", "0", "--loss", "bsrnn+sdr"],
            "model": [], "epochs": 12, "examples": 400, "transfer_epochs": 6,
            "transfer_examples": 400, "sizes": [(32, 3), (64, 3)], "evaluate": True,
            "data": "holdout", "small_feature_dim": 25, "csdr": False},
    # The refined paper: about 4 M parameters (the small preset: N = 64, L = 3,
    # n_fft 2048), MUSDB18-HQ, ~150 epochs; early stopping off so that every
    # setting gets the same budget; three seeds per arm, as at cpu.
    "paper": {"preset": "small", "batch_size": 2, "valid_examples": 32, "seeds": [0, 1, 2],
              "flags": ["--patience", "0"], "model": ["--feature-dim", "64", "--num-layers", "3"],
              "epochs": 150, "examples": 1000, "transfer_epochs": 50, "transfer_examples": 1000,
              "sizes": [(32, 3), (64, 3), (128, 6), (128, 12)], "evaluate": True},
}

BAND_SPLITS = {  # name -> fit.py flags
    "v7": ["--bands", "v7"],
    # All 120 edges: a preset's own edge count (the cpu preset's 41) would
    # otherwise stay with --bands universal.
    "universal": ["--bands", "universal", "--num-edges", "120"],
    "universal41": ["--bands", "universal", "--num-edges", "41"],
}



class ExperimentError(RuntimeError):
    pass


@dataclasses.dataclass
class Run:
    """One ``fit.py`` invocation of an experiment."""

    setting: str                   # e.g. "drums_v7"; file names and table rows
    seed: int
    flags: List[str]               # fit.py flags of the setting (no seed/run dir)
    group: str = ""                # what a figure colours by (band split, model)
    stage: str = "train"           # "train" (from scratch) or "transfer"
    backbone: Optional[str] = None  # key of the run whose frozen backbone is used
    data: str = "default"          # "default", "instruments" (songs with the new
                                   # instruments' stems), "no_vocals" (the default
                                   # songs without vocals) or "own" (the run's flags
                                   # name its data; see Driver.root)
    evaluate: Optional[bool] = None  # None: the driver's default
    keep_backbone: bool = False    # other runs start from it: keep a headless copy
    meta: dict = dataclasses.field(default_factory=dict)  # copied into the result

    @property
    def key(self) -> str:
        return run_key(self.setting, self.seed)


def run_key(setting: str, seed) -> str:
    """The one name of a run of ``setting`` with ``seed``: its result file's
    stem, its run dir's name and what ``Run.backbone`` refers to."""
    return f"{setting}-seed{seed}"


def result_key(result: dict) -> str:
    """:func:`run_key` of a finished run's result."""
    return run_key(result["setting"], result["seed"])


# --------------------------------------------------------------------- args

def build_parser(doc: str, experiment: str) -> argparse.ArgumentParser:
    """A driver's parser: first paragraph of its docstring as description,
    the rest as epilog, and the options every driver shares."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc.split("\n\n", 1)[1])
    add_common_args(p, experiment)
    return p


def add_common_args(p: argparse.ArgumentParser, experiment: str) -> None:
    p.add_argument("--scale", default="cpu", choices=SCALES + HIDDEN_SCALES,
                   metavar="{" + ",".join(SCALES) + "}",
                   help="cpu (default): the cpu preset's recipe on the experiments' songs "
                        "(experiments/holdout_data.py), 3 seeds, held-out evaluation (25-60 min "
                        "per run on 2 cores); cpu-small: a tiny model on the built-in synthesized "
                        "songs (minutes per run; no instrument stems: not for new_instrument); "
                        "paper: the refined paper's settings for a GPU and MUSDB18-HQ "
                        "(--musdb-root or MUSDB_PATH)")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="training seeds (default: the scale's, 0 1 2 at cpu)")
    p.add_argument("--out", default=os.path.join(RESULTS, experiment),
                   help=f"results folder (default experiments/results/{experiment})")
    p.add_argument("--musdb-root", help="MUSDB18-HQ root (default $MUSDB_PATH, else the built-in "
                                        "dataset, at --scale cpu the experiments' songs without "
                                        "piano and guitar; required at --scale paper)")
    p.add_argument("--instrument-root",
                   help="dataset with the new instruments' stems (piano.wav, guitar.wav per "
                        "track) for the new-instrument runs (default: --musdb-root, at --scale "
                        "cpu the experiments' songs with them: experiments/holdout_data.py)")
    p.add_argument("--only", nargs="+", metavar="SETTING",
                   help="run only these settings (and the runs they start from)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the commands, run nothing")
    ev = p.add_mutually_exclusive_group()
    ev.add_argument("--evaluate", dest="evaluate", action="store_true", default=None,
                    help="also score every run on the test subset with evaluate.py "
                         "(default at --scale paper)")
    ev.add_argument("--no-evaluate", dest="evaluate", action="store_false")
    p.add_argument("--threads", type=int,
                   help="fit.py --threads for every run (1 when two experiments share a "
                        "2-core machine: 1.19x the steps in all, benchmarks/parallel_runs.py); "
                        "not part of a run's identity: finished runs are kept and reused")
    p.add_argument("--no-plots", action="store_true", help="no figures")
    p.add_argument("--no-reuse", action="store_true",
                   help="do not reuse a finished run of another experiment (in the folder "
                        "next to --out) that has exactly the same fit.py flags")
    # Tests: call fit.main()/evaluate.main() in this process (no TensorFlow
    # start-up per run). Output and resumability are the same.
    p.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)


def scale_base(args) -> dict:
    base = dict(BASE[args.scale])
    if args.seeds:
        base["seeds"] = list(args.seeds)
    return base


def common_flags(base: dict) -> List[str]:
    """fit.py flags every run of a scale shares."""
    return ["--preset", base["preset"], "--batch-size", str(base["batch_size"]),
            "--valid-examples", str(base["valid_examples"]), *base["flags"]]


def budget_flags(epochs: int, examples: int) -> List[str]:
    return ["--epochs", str(epochs), "--examples-per-epoch", str(examples)]


# ----------------------------------------------------------------- figures

def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str) -> str:
    """Writes ``fig`` atomically to ``path``, closes it, returns ``path``."""
    from bsrnn_tf.fileio import atomic_save

    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
    pyplot().close(fig)
    return path


def plot_mean_curve(ax, results: List[dict], target: str, label: str, color=None,
                    metric: str = "valid_usdr", x: str = "epoch", style: str = "-") -> None:
    """Mean over seeds of a per-epoch validation curve (``valid_usdr`` or
    ``valid_gain``), min-max shaded; ``x="minutes"`` puts the mean cumulative
    epoch time on the x axis instead of the epoch."""
    curves = [r[metric][target] for r in results if target in r.get(metric, {})]
    if not curves:
        return
    length = max(len(c) for c in curves)
    epochs = list(range(1, length + 1))
    if x == "minutes":
        times = [r.get("epoch_seconds", []) for r in results if target in r.get(metric, {})]
        epochs = [sum(sum(t[:i + 1]) for t in times if len(t) > i) / 60.0 /
                  max(1, sum(1 for t in times if len(t) > i)) for i in range(length)]
    columns = [[c[i] for c in curves if i < len(c)] for i in range(length)]
    mean = [sum(col) / len(col) for col in columns]
    lo = [min(col) for col in columns]
    hi = [max(col) for col in columns]
    line, = ax.plot(epochs, mean, style, marker="o", markersize=3,
                    label=f"{label} (n={len(curves)})", color=color)
    if len(curves) > 1:
        ax.fill_between(epochs, lo, hi, alpha=0.2, color=line.get_color())
    if x == "epoch":
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def finish_axes(ax, title: str, xlabel: str, ylabel: str) -> None:
    """Title, axis labels, grid and (if anything is labelled) a legend."""
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot_bars(ax, groups: List[tuple], categories: Sequence[str], value) -> None:
    """Grouped bars: ``groups`` is ``[(label, [result, ...]), ...]``; per
    category the mean over results of ``value(result, category)`` (None:
    missing), min-max as error bars, labelled with the mean."""
    from experiments.records import stats
    width = 0.8 / max(1, len(groups))
    for g, (label, results) in enumerate(groups):
        xs, means, lows, highs = [], [], [], []
        for i, category in enumerate(categories):
            values = [v for v in (value(r, category) for r in results) if v is not None]
            if not values:
                continue
            s = stats(values)
            xs.append(i + (g - (len(groups) - 1) / 2) * width)
            means.append(s["mean"])
            lows.append(s["mean"] - s["min"])
            highs.append(s["max"] - s["mean"])
        if xs:
            bars = ax.bar(xs, means, width, yerr=[lows, highs], capsize=3,
                          label=f"{label} (n={len(results)})")
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(categories)), categories)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def test_gain(result: dict, target: str):
    """A run's held-out gain over the best-scaled mixture for ``target``, or None."""
    return result.get("test_gain", {}).get(target)


# -------------------------------------------------------------------- misc

def display_command(script: str, argv: Sequence[str]) -> str:
    return shlex.join(["python", rel(script), *[rel(a) for a in argv]])


def rel(path: str) -> str:
    """``path`` relative to the repository root when it lies inside it."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return path
    try:
        relative = os.path.relpath(path, ROOT)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def absolute(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def machine() -> dict:
    """What a run's times depend on: machines of one platform string differ in
    CPU model and speed, so the model name is kept too."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "cpu_model": cpu_model()}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


