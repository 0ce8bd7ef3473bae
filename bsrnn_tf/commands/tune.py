"""Keras Tuner search over depth (L), width (N), band split, chunk length and learning rate.

Every trial trains with the same config, data pipeline, loss, validation and
trainer as ``fit.py`` (``bsrnn_tf.training.trainer``); the Keras Tuner
objective, which steers the search, is the best validation uSDR averaged
over the targets (maximised).

Every trial is validated on the same chunks: their length is
``--valid-segment-seconds`` if given, else the FIRST ``--segment-seconds``
value, whatever training chunk length the trial draws.

Examples::

    python training/tune.py --preset tiny --mtl --max-trials 4 --epochs 2
    python training/tune.py --targets drums --tuner bayesian --max-trials 20 \\
        --num-layers 2 4 8 --feature-dim 32 64 --bands v7 universal universal:41 my.json \\
        --segment-seconds 3 2 4
    python training/tune.py --preset cpu --mtl --tuner random --max-trials 6 --epochs 99 \\
        --max-minutes 30 --num-layers 3 6 --feature-dim 32 48 --segment-seconds 2 3

An interrupted search resumes (finished trials are not rerun; the trial that
was running resumes from its last checkpoint). At the end the project folder
holds ``results.md``, ``results.csv``, ``usdr_vs_params.png``,
``gain_vs_hours.png`` and ``best_config.json`` (for ``fit.py --config``).

Ranking (quality per CPU-hour): deeper, wider models and longer chunks cost
more time per epoch, so a ranking by score at equal epochs favours slow
trials. The report ranks the trials, and picks ``best_config.json``, by the
gain at equal time: the best mean validation gain over the best-scaled
mixture (dB) each trial had reached after T seconds of training, T being the
shortest total training time among the finished trials (a trial with no
validated epoch by T comes last). Times are the wall-clock seconds of the
trainer's epochs, so they are noisy on a shared machine. ``--max-minutes M``
gives every trial the same time budget instead of the same epochs (each
stops after the epoch that reaches M minutes; ``--epochs`` is then a cap):
no trial trains past what the comparison at T can use.

Several trials at once (Keras Tuner's distributed mode): start one chief
and one or more workers with the same arguments and the environment
variables ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT`` and
``KERASTUNER_TUNER_ID`` (``chief``; ``tuner0``, ``tuner1``, ...). The chief
hands out the trials (it loads no data and trains nothing) and writes the
report when the last trial has ended; each worker trains one trial at a
time into the shared project folder. On 2 CPU cores, two workers with
``--threads 1``::

    export KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8765
    KERASTUNER_TUNER_ID=chief python training/tune.py ARGS &
    KERASTUNER_TUNER_ID=tuner0 python training/tune.py ARGS --threads 1 &
    KERASTUNER_TUNER_ID=tuner1 python training/tune.py ARGS --threads 1 &

An interrupted distributed search resumes the same way (start the chief
again, then the workers): finished trials are kept, and a trial that was
running is run again, from its last checkpoint where its folder has one.

``bsrnn-tf tune`` is the same command as ``python training/tune.py``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from typing import Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bsrnn_tf.commands import fit  # noqa: E402
from bsrnn_tf.config import ConfigError, ExperimentConfig  # noqa: E402
from bsrnn_tf.console import quiet_tensorflow  # noqa: E402
from bsrnn_tf.fileio import atomic_save, atomic_write_text  # noqa: E402

DEFAULT_BANDS = ["v7", "universal", "universal:41", "bass", "drums"]
OBJECTIVE = "val_usdr"
SUMMARY_FILE = "trial_summary.json"
PROG = "tune.py"  # the name in messages (``bsrnn-tf tune`` passes its own)


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--tuner", choices=["hyperband", "bayesian", "random"], default="hyperband")
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--epochs", type=int, default=4,
                   help="epochs per trial (Hyperband: the most any trial gets)")
    p.add_argument("--num-layers", type=int, nargs="+", default=[1, 2, 4], metavar="L")
    p.add_argument("--feature-dim", type=int, nargs="+", default=[16, 32, 64], metavar="N")
    p.add_argument("--bands", nargs="+", default=DEFAULT_BANDS,
                   help="schemas to try: v7, bass, drums, universal, universal:EDGES, FILE.json")
    p.add_argument("--lr", type=float, nargs="+", default=[1e-3, 3e-3])
    p.add_argument("--segment-seconds", type=float, nargs="+", metavar="S",
                   help="training chunk lengths to try (default: the preset's)")
    p.add_argument("--valid-segment-seconds", type=float, metavar="S",
                   help="the validation chunk length of every trial (default: the first "
                        "--segment-seconds), so all trials are scored on the same chunks")
    p.add_argument("--name", default=None, help="project name (default from preset and targets)")
    p.add_argument("--directory", default=os.path.join("saved_models", "tuning"))
    p.add_argument("--overwrite", action="store_true", help="start the search afresh")
    # The rest of the experiment: fit.py's own options (type, default, help).
    fit_actions = fit.build_parser()._actions
    for flag in ("--config", "--preset", "--targets", "--batch-size", "--examples-per-epoch",
                 "--valid-examples", "--musdb-root", "--dataset", "--seed", "--mtl",
                 "--max-minutes",
                 "--mixed-precision", "--recompute-blocks", "--no-augment",
                 "--no-activity-detection", "--cpu-devices", "--threads", "--quiet"):
        p._add_action(next(a for a in fit_actions if flag in a.option_strings))
    return p


def parse_bands(value: str) -> tuple:
    """``'universal:41'`` -> ``('universal', 41)``; ``'v7'`` -> ``('v7', None)``."""
    name, _, edges = value.partition(":")
    if edges:
        try:
            return name, int(edges)
        except ValueError:
            raise ConfigError(f"--bands {value!r}: expected NAME:NUMBER_OF_EDGES") from None
    return name, None


def validate_space(args) -> None:
    """Rejects an invalid search space before any training starts."""
    from bsrnn_tf.bands import band_ranges
    for name, values in (("--num-layers", args.num_layers), ("--feature-dim", args.feature_dim)):
        if not values or any(v < 1 for v in values):
            raise ConfigError(f"{name} values must be positive integers, got {values}")
    if not args.lr or any(not 0 < v < 1 for v in args.lr):
        raise ConfigError(f"--lr values must lie in (0, 1), got {args.lr}")
    if args.segment_seconds is not None and any(not 0 < v < math.inf
                                                for v in args.segment_seconds):
        raise ConfigError(f"--segment-seconds values must be positive, got "
                          f"{args.segment_seconds}")
    if args.max_trials < 1 or args.epochs < 1:
        raise ConfigError("--max-trials and --epochs must be positive")
    if args.max_minutes and args.tuner == "hyperband":
        raise ConfigError("--max-minutes needs --tuner random or bayesian: Hyperband budgets "
                          "its trials in epochs and continues them from each other")
    for value in args.bands:
        name, edges = parse_bands(value)
        band_ranges(name, num_edges=edges)  # raises BandSchemaError with the reason


def search_space(args):
    """A ``kt.HyperParameters`` with one entry per searched setting (a single
    value becomes ``Fixed``)."""
    import keras_tuner as kt
    hp = kt.HyperParameters()
    for name, values in (("num_layers", args.num_layers), ("feature_dim", args.feature_dim),
                         ("bands", args.bands), ("segment_seconds", args.segment_seconds),
                         ("learning_rate", args.lr)):
        values = list(dict.fromkeys(values))
        if len(values) == 1:
            hp.Fixed(name, values[0])
        else:
            hp.Choice(name, values)
    return hp


def trial_config(base: ExperimentConfig, values: dict, epochs: int) -> ExperimentConfig:
    """The experiment config of one trial (the validation chunk length is
    ``base``'s, the same for every trial)."""
    config = ExperimentConfig.from_dict(base.to_dict())
    config.model.num_layers = int(values["num_layers"])
    config.model.feature_dim = int(values["feature_dim"])
    config.model.bands, config.model.num_edges = parse_bands(str(values["bands"]))
    config.data.segment_seconds = float(values.get("segment_seconds",
                                                   base.data.segment_seconds))
    config.train.learning_rate = float(values["learning_rate"])
    config.train.epochs = int(epochs)
    config.validate()
    return config


def make_tuner(args, base: ExperimentConfig, strategy, tracks, project: str):
    import keras_tuner as kt

    from bsrnn_tf.models import build_separator, count_parameters
    from bsrnn_tf.training.trainer_setup import make_trainer

    kinds = {"hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization,
             "random": kt.RandomSearch}

    class BsrnnTuner(kinds[args.tuner]):
        """Runs each trial with the project's own trainer."""

        def run_trial(self, trial, *unused_args, **unused_kwargs):
            values = trial.hyperparameters.values
            epochs = int(values.get("tuner/epochs", args.epochs))
            config = trial_config(base, values, epochs)
            run_dir = os.path.join(self.project_dir, f"trial_{trial.trial_id}")
            previous = values.get("tuner/trial_id")
            if previous and not os.path.isdir(os.path.join(run_dir, "checkpoints")):
                # Hyperband: continue the trial this one was promoted from.
                source = os.path.join(self.project_dir, f"trial_{previous}")
                shutil.copytree(os.path.join(source, "checkpoints"),
                                os.path.join(run_dir, "checkpoints"))
                shutil.copy(os.path.join(source, "history.json"), run_dir)
            os.makedirs(run_dir, exist_ok=True)
            config.to_json(os.path.join(run_dir, "config.json"))
            with strategy.scope():
                model = build_separator(config.model)
            trainer = make_trainer(model, config, run_dir, strategy, *tracks,
                                   logdir=os.path.join(self.project_dir, "logs",
                                                       f"trial_{trial.trial_id}"),
                                   verbose=0 if args.quiet else 1)
            started = time.time()
            trainer.restore()
            history = trainer.fit()
            score = float(trainer.best_usdr.numpy())
            timeline = epoch_timeline(history)
            summary = {"trial_id": trial.trial_id, "values": {
                k: v for k, v in values.items() if not k.startswith("tuner/")},
                "epochs": epochs, "parameters": count_parameters(model),
                "bands": model.backbone.num_bands, "val_usdr": score,
                "valid_usdr_per_target": history[-1]["valid_usdr"] if history else {},
                "segment_seconds": config.data.segment_seconds,
                "valid_segment_seconds": config.data.valid_segment_seconds,
                "valid_references": trainer.valid_references,
                "seconds": timeline[-1]["seconds"] if timeline else 0.0,
                "history": timeline, "this_run_seconds": time.time() - started}
            atomic_write_text(os.path.join(run_dir, SUMMARY_FILE),
                              json.dumps(summary, indent=2) + "\n")
            return {OBJECTIVE: score}

    objective = kt.Objective(OBJECTIVE, direction="max")
    common = dict(objective=objective, hyperparameters=search_space(args),
                  tune_new_entries=False, directory=args.directory, project_name=project,
                  overwrite=args.overwrite, seed=base.train.seed)
    if args.tuner == "hyperband":
        tuner = BsrnnTuner(max_epochs=args.epochs, factor=3, **common)
    else:
        tuner = BsrnnTuner(max_trials=args.max_trials, **common)
    tuner.oracle.max_trials = args.max_trials
    return tuner


def epoch_timeline(history: list) -> list:
    """A trainer history (:class:`~bsrnn_tf.training.trainer.EpochResult`
    dicts) as ``[{"epoch", "seconds", "valid_gain"}]``: the cumulative
    training seconds at the end of each epoch and that epoch's validation
    gain over the best-scaled mixture, mean over targets (dB; None without
    validation). A Hyperband trial continued from another one's checkpoint
    has that one's epochs in its history: they count in its time."""
    from bsrnn_tf.training.trainer import mean_over_targets
    timeline, total = [], 0.0
    for entry in history:
        total += float(entry["seconds"])
        gain = mean_over_targets(entry.get("valid_gain") or {})
        timeline.append({"epoch": int(entry["epoch"]), "seconds": total,
                         "valid_gain": gain if math.isfinite(gain) else None})
    return timeline


def gain_within(row: dict, seconds: float) -> float:
    """The best mean validation gain (dB) a trial had reached within
    ``seconds`` of training; NaN when no validated epoch ended by then."""
    gains = [h["valid_gain"] for h in row.get("history") or []
             if h["seconds"] <= seconds and h["valid_gain"] is not None]
    return max(gains) if gains else math.nan


def equal_time(rows: list) -> float:
    """T: the shortest total training time (s) among the trials (NaN when
    none has a history)."""
    totals = [r["history"][-1]["seconds"] for r in rows if r.get("history")]
    return min(totals) if totals else math.nan


def collect(project_dir: str) -> list:
    """Summaries of the finished trials, best first: by the gain at equal
    time (``gain_at_equal_time``, :func:`equal_time`), then by the tuner's
    objective; each gets ``gain_at_equal_time`` and ``best_gain`` (dB)."""
    rows = []
    for entry in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, entry, SUMMARY_FILE)
        if entry.startswith("trial_") and os.path.exists(path):
            with open(path) as f:
                rows.append(json.load(f))
    limit = equal_time(rows)
    for row in rows:
        row["gain_at_equal_time"] = gain_within(row, limit)
        row["best_gain"] = gain_within(row, math.inf)

    def key(row):
        gain = row["gain_at_equal_time"]
        return (not math.isnan(gain), gain if not math.isnan(gain) else 0.0, row["val_usdr"])

    return sorted(rows, key=key, reverse=True)


COLUMNS = ["rank", "trial_id", "bands", "num_bands", "num_layers", "feature_dim",
           "segment_seconds", "learning_rate", "epochs", "parameters", "val_usdr",
           "best_gain_db", "gain_at_equal_time_db", "hours", "seconds"]


def _table_rows(rows: list) -> list:
    """One row per trial (NaN where a trial has no value). ``epochs``: the
    epochs it trained (fewer than ``--epochs`` under ``--max-minutes``)."""
    return [[i + 1, r["trial_id"], r["values"]["bands"], r["bands"], r["values"]["num_layers"],
             r["values"]["feature_dim"], r.get("segment_seconds", math.nan),
             r["values"]["learning_rate"], len(r.get("history") or []), r["parameters"],
             round(r["val_usdr"], 3), round(r["best_gain"], 3),
             round(r["gain_at_equal_time"], 3), round(r["seconds"] / 3600, 4),
             round(r["seconds"], 1)]
            for i, r in enumerate(rows)]


def write_report(project_dir: str, base: ExperimentConfig) -> Optional[str]:
    """results.md, results.csv, usdr_vs_params.png, gain_vs_hours.png and
    best_config.json (the first trial of :func:`collect`)."""
    from bsrnn_tf.data.pipeline import valid_segment_seconds
    rows = collect(project_dir)
    if not rows:
        return None
    limit = equal_time(rows)
    table = _table_rows(rows)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([COLUMNS, *table])
    atomic_write_text(os.path.join(project_dir, "results.csv"), buffer.getvalue())
    cell = lambda v: "-" if isinstance(v, float) and math.isnan(v) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table]
    targets = ", ".join(base.model.targets)
    text = (f"# Tuning results: {os.path.basename(project_dir)}\n\n"
            f"Ranked by the gain at equal time, gain_at_equal_time_db: the best validation "
            f"gain over the best-scaled mixture (dB, mean over targets {targets}) each trial "
            f"had reached after T = {limit:.1f} s ({limit / 3600:.4f} h) of training, the "
            f"shortest total training time among these trials (\"-\": no validated epoch "
            f"by then; such trials come last). best_config.json is the first row. Times are "
            f"the wall-clock seconds of the trainer's epochs (noisy on a shared machine). "
            f"best_gain_db: the best gain at any time; val_usdr: the best validation uSDR "
            f"(dB), the Keras Tuner objective that steered the search. Every trial is "
            f"validated on the same {valid_segment_seconds(base.data):g} s chunks.\n\n"
            + "\n".join(lines) + "\n")
    atomic_write_text(os.path.join(project_dir, "results.md"), text)
    _scatter(rows, os.path.join(project_dir, "usdr_vs_params.png"))
    _timelines(rows, limit, os.path.join(project_dir, "gain_vs_hours.png"))
    best = trial_config(base, rows[0]["values"], base.train.epochs)
    best.name = f"{base.name}-best"
    best.to_json(os.path.join(project_dir, "best_config.json"))
    return text


def _timelines(rows: list, limit: float, path: str) -> None:
    """Each trial's mean validation gain against its cumulative training
    hours, a vertical line at T."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(rows):
        points = [(h["seconds"] / 3600, h["valid_gain"]) for h in r.get("history") or []
                  if h["valid_gain"] is not None]
        if points:
            v = r["values"]
            label = (f"{r['trial_id']}: L{v['num_layers']} N{v['feature_dim']} {v['bands']} "
                     f"{r.get('segment_seconds', '?')} s")
            ax.plot(*zip(*points), marker="o", ms=3, label=label, color=plt.cm.tab10(i % 10))
    if math.isfinite(limit):
        ax.axvline(limit / 3600, color="0.4", ls="--", lw=1, label="T (equal time)")
    ax.set_xlabel("training hours (wall clock)")
    ax.set_ylabel("validation gain over the scaled mixture (dB)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


def _scatter(rows: list, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    schemas = sorted({str(r["values"]["bands"]) for r in rows})
    for i, schema in enumerate(schemas):
        pts = [r for r in rows if str(r["values"]["bands"]) == schema]
        ax.scatter([r["parameters"] for r in pts], [r["val_usdr"] for r in pts],
                   label=schema, color=plt.cm.tab10(i % 10), s=40)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation uSDR (dB)")
    ax.legend(title="band split", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


def distributed_role() -> Optional[str]:
    """"chief" or "worker" in Keras Tuner's distributed mode (the
    environment variable ``KERASTUNER_ORACLE_IP`` set), else None."""
    if not os.environ.get("KERASTUNER_ORACLE_IP"):
        return None
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Exit status; ``prog`` names the command in usage and messages."""
    args = build_parser(prog).parse_args(argv)
    prog = prog or PROG
    quiet_tensorflow()
    try:
        with fit.keeping_dtype_policy():
            return _run(args, prog)
    except (ConfigError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


def _run(args, prog: str = PROG) -> int:
    validate_space(args)
    from bsrnn_tf.training.distribute import make_strategy, set_threads
    set_threads(args.threads)
    strategy = make_strategy(args.cpu_devices)
    import keras

    from bsrnn_tf.commands.fit_checks import check_segment_fits, check_segment_length
    from bsrnn_tf.datasets.synth import GenerationError
    from bsrnn_tf.data.musdb import DataError
    from bsrnn_tf.data.pipeline import valid_segment_seconds
    from bsrnn_tf.training.trainer_setup import load_tracks_for

    fit_args = fit.build_parser().parse_args([])
    for key, value in vars(args).items():
        if hasattr(fit_args, key) and key not in ("bands", "num_layers", "feature_dim", "lr",
                                                    "epochs", "name", "segment_seconds"):
            setattr(fit_args, key, value)
    if args.segment_seconds:
        fit_args.segment_seconds = args.segment_seconds[0]
    base = fit.config_from_args(fit_args)
    base.train.epochs = args.epochs
    # One validation length for every trial: --valid-segment-seconds (or the
    # --config's), else the first --segment-seconds.
    base.data.valid_segment_seconds = valid_segment_seconds(base.data)
    args.segment_seconds = args.segment_seconds or [base.data.segment_seconds]
    lengths = [dataclasses.replace(base, data=dataclasses.replace(base.data, segment_seconds=s))
               for s in args.segment_seconds]  # the configs' chunk lengths, to check
    for config in lengths:
        check_segment_length(config)
    project = args.name or f"{base.preset}-{'mtl' if args.mtl else '-'.join(base.model.targets)}"
    base.name = project
    keras.utils.set_random_seed(base.train.seed)
    fit.set_run_dtype_policy(base)  # before the trials build their models
    role = distributed_role()
    tracks = None  # a chief only hands out trials: it trains none
    if role != "chief":
        try:
            tracks = load_tracks_for(base)
            for config in lengths:
                check_segment_fits(config, *tracks)
        except (DataError, GenerationError) as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
    tuner = make_tuner(args, base, strategy, tracks, project)
    base.to_json(os.path.join(tuner.project_dir, "base_config.json"))
    tuner.search()
    if role == "worker":
        print(f"{prog}: {os.environ['KERASTUNER_TUNER_ID']}: no trial left for this worker; "
              f"the chief writes the report to {tuner.project_dir} when the last one ends")
        return 0
    report = write_report(tuner.project_dir, base)
    if report is None:
        print(f"{prog}: error: no trial finished; see the trial messages above", file=sys.stderr)
        return 1
    print(report)
    print(f"best config: {os.path.join(tuner.project_dir, 'best_config.json')} "
          f"(python training/fit.py --config ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
