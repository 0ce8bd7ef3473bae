"""Experiment: what each lever of the produced dataset buys, one at a time,
against the current recipe (the plain sampled dataset).

Settings (``--only`` picks some): ``control`` (the built-in sampled
dataset, which the README command trained on before the produced one),
``production`` (80 % of the songs produced: effect chains on every part),
``recorded_kits`` (half of the songs' drums from recorded Hydrogen kits),
``sung_vocals`` (half of the songs' vocals sung with words),
``more_timbres`` (a soundfont per part among four GM fonts, any family in
any role), ``all`` (every lever, ``PRODUCED_RECIPE``) and ``more_songs``
(``all`` with three times the songs, compared with ``all`` too); and
``weighted``, the ``all`` songs with the loss of bass and other doubled,
and ``capacity``, the ``all`` songs with a model twice as deep for the
same CPU time (``FIT_LEVERS``: changes of the fit, not of the songs,
compared with ``all``). Each lever's 60 train songs (180 for
``more_songs``) are the control's compositions, instruments and mix,
rendered with that lever on
(:mod:`bsrnn_tf.datasets.produced`), made once under ``--data`` (default
``~/.cache/bsrnn_tf/levers``). Every run is the same multi-target fit
(``--mtl``, same seed and budget) and is scored twice by ``evaluate.py``:
on the built-in sampled test split and on the held-out produced split
(``--dataset produced-test``: a soundfont, drum kits and voices training
never uses, every song produced).

Examples::

    python -m experiments.recorded_music --scale cpu --dry-run
    python -m experiments.recorded_music --scale cpu --only production
    python -m experiments.recorded_music --scale cpu --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, NamedTuple, Optional, Tuple

from experiments import common, driver, records
from experiments.common import Run

EXPERIMENT = "recorded_music"
TARGETS = ("drums", "bass", "other", "vocals")
PRODUCED_EVALUATION = "evaluation-produced-test"


def lever_recipes() -> dict:
    """Setting -> (train recipe, train soundfonts); None for the control."""
    from bsrnn_tf.datasets.produced import MORE_TRAIN_SOUNDFONTS, PRODUCED_RECIPE, Recipe
    from bsrnn_tf.datasets.sampled import TRAIN_SOUNDFONTS
    recipes = {"control": None,
               "production": (Recipe(production=0.8), TRAIN_SOUNDFONTS),
               "recorded_kits": (Recipe(recorded_kits=0.5), TRAIN_SOUNDFONTS),
               "sung_vocals": (Recipe(sung_vocals=0.5), TRAIN_SOUNDFONTS),
               "more_timbres": (Recipe(more_timbres=True), MORE_TRAIN_SOUNDFONTS),
               "all": (PRODUCED_RECIPE, MORE_TRAIN_SOUNDFONTS)}
    for setting, (base, _) in MORE_SONGS.items():
        recipes[setting] = recipes[base]
    return recipes


# Lever datasets with more songs than ``--tracks``: setting -> (the lever whose
# recipe it renders, the factor). ``more_songs`` is ``all`` with three times the
# songs (its first ``--tracks`` are the songs of ``all``: each song is made from
# its own index).
MORE_SONGS = {"more_songs": ("all", 3)}


class FitLever(NamedTuple):
    """A setting that changes the fit, not the songs: the lever whose songs it
    trains on, its extra fit.py flags, and its training cost per example
    relative to the recipe's model (its epochs are the recipe's divided by
    it, so that it trains for the same CPU time)."""
    songs: str
    flags: Tuple[str, ...]
    cost: float = 1.0


# ``weighted`` doubles the loss of the two targets the README command leaves
# below +1 dB (bass, other); the weights are a choice, not tuned.
# ``capacity`` is the recipe's model twice as deep (L = 6 instead of 3, N = 32:
# 5.6 M parameters, 23 MB, within the shipped model's 30 MB) for the same
# CPU time: a training epoch, data and validation included, costs COST_L6
# times as much (measured on one thread: experiments/CPU_RECIPE.md section
# 6), so it gets that many fewer epochs.
COST_L6 = 1.24
FIT_LEVERS = {"weighted": FitLever("all", ("--target-weights", "bass=2", "other=2")),
              "capacity": FitLever("all", ("--num-layers", "6"), COST_L6)}


def settings() -> list:
    """Every setting, in the order of the tables."""
    return [*lever_recipes(), *FIT_LEVERS]


def songs_of(setting: str) -> str:
    """The setting whose training songs ``setting`` uses."""
    return FIT_LEVERS[setting].songs if setting in FIT_LEVERS else setting


def builds_on(setting: str) -> Optional[str]:
    """The setting that ``setting`` changes one thing of (besides the control):
    ``all`` for the fit levers and ``more_songs``; None for the others."""
    if setting in FIT_LEVERS:
        return FIT_LEVERS[setting].songs
    return MORE_SONGS[setting][0] if setting in MORE_SONGS else None


def data_root(data: str, setting: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(data)), f"{setting}-v1")


def make_lever_data(data: str, setting: str, tracks: int, seconds: float) -> str:
    """The train songs of a lever, made once (atomically) under ``data``."""
    from bsrnn_tf.datasets.cache import GenerationError, cached_dataset
    from bsrnn_tf.datasets.sampled import MARKER_FILE, make_sampled_dataset
    recipe, fonts = lever_recipes()[setting]
    root = data_root(data, setting)

    def make(out: str) -> None:
        make_sampled_dataset(out, tracks_train=tracks * MORE_SONGS.get(setting, (None, 1))[1],
                             tracks_test=0, seconds=seconds,
                             train_soundfonts=fonts, recipe=recipe,
                             workers=min(4, os.cpu_count() or 1))

    return cached_dataset(f"BSRNN_TF_LEVER_DATA_{setting.upper()}", root, MARKER_FILE, make,
                          f"{setting} training songs", GenerationError)


def plan_for(data: str):
    def plan(base: dict) -> List[Run]:
        shared = common.common_flags(base)
        runs = []
        for seed in base["seeds"]:
            for setting in settings():
                fit = FIT_LEVERS.get(setting, FitLever(setting, ()))
                epochs = max(1, round(base["epochs"] / fit.cost))
                flags = [*shared, "--mtl", *base["model"],
                         *common.budget_flags(epochs, base["examples"])]
                if setting != "control":
                    flags += ["--musdb-root", data_root(data, songs_of(setting))]
                flags += list(fit.flags)
                runs.append(Run(setting, seed, flags, group=setting, data="own",
                                meta={"lever": setting}))
        return runs
    return plan


def evaluate_produced(drv: driver.Driver, run: Run) -> None:
    """Scores a finished run on the held-out produced split; adds
    ``produced_gain`` etc. to its result file. Called after each run (its
    model is in its run folder only until the machine is gone)."""
    result = drv.results.get(run.key)
    if not drv.evaluate or result is None or "produced_gain" in result:
        return
    if not drv.has_model(run.key):
        drv.log(f"  {run.key}: not scored on the produced split: its model is gone (a run of "
                "another machine); delete its result JSON to train and score it again")
        return
    out = os.path.join(drv.run_dir(run.key), PRODUCED_EVALUATION)
    argv = ["-m", drv.run_dir(run.key), "-o", out, "--dataset", "produced-test"]
    code, _ = driver.call_script(common.EVALUATE, argv, drv.log_path(run.key),
                                 drv.args.in_process, append=True)
    if code != 0:
        drv.log(f"  {run.key}: evaluate.py --dataset produced-test failed (exit {code})")
        return
    scores = records.read_evaluation(os.path.join(out, "results.json"))
    result.update({k.replace("test_", "produced_", 1): v for k, v in scores.items()})
    result["produced_command"] = common.display_command(common.EVALUATE, argv)
    records.write_json(drv.result_path(run.key), result)


def table(results: dict) -> dict:
    """Per setting, the mean over seeds of the gain over the best-scaled
    mixture per target on both splits."""
    out = {}
    for setting, group in records.by_setting(results.values()).items():
        row = {}
        for split in ("test_gain", "produced_gain"):
            values = [r[split] for r in group if r.get(split)]
            if values:
                row[split] = {t: sum(v[t] for v in values) / len(values) for t in TARGETS}
                row[split]["mean"] = sum(row[split][t] for t in TARGETS) / len(TARGETS)
        out[setting] = {"seeds": [r["seed"] for r in group], **row}
    return out


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(__doc__, EXPERIMENT)
    p.add_argument("--data", default="~/.cache/bsrnn_tf/levers",
                   help="where the lever datasets are made (once)")
    p.add_argument("--tracks", type=int, default=60, help="train songs per lever dataset")
    p.add_argument("--song-seconds", type=float, default=30.0)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.scale == "paper":
        print(f"{EXPERIMENT}: error: the levers are built-in data; use --scale cpu",
              file=sys.stderr)
        return 2
    if args.musdb_root:
        print(f"{EXPERIMENT}: error: --musdb-root: each setting has its own dataset",
              file=sys.stderr)
        return 2
    base = common.scale_base(args)
    plan = plan_for(args.data)
    runs = plan(base)
    try:
        drv = driver.Driver(EXPERIMENT, args)
        selected = {songs_of(r.setting) for r in drv.select(runs)}
        if not args.dry_run:
            for setting in sorted(selected - {"control"}):
                make_lever_data(args.data, setting, args.tracks, args.song_seconds)
        drv.execute(runs, after_run=lambda run: evaluate_produced(drv, run))
    except (common.ExperimentError, RuntimeError) as e:
        print(f"{EXPERIMENT}: error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for setting in sorted(selected - {"control"}):
            print(f"(data) {setting}: {data_root(args.data, setting)}")
        return driver.finish(drv, {})
    summary = drv.write_summary(runs, {"levers": table(drv.results)})
    for setting, row in summary["levers"].items():
        cells = "  ".join(f"{split}: {row[split]['mean']:+.2f} dB" for split in
                          ("test_gain", "produced_gain") if split in row)
        print(f"{setting:14s} {cells}")
    return driver.finish(drv, summary)


if __name__ == "__main__":
    sys.exit(main())
