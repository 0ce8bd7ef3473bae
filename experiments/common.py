"""Shared machinery of the experiment drivers.

A driver describes its runs as :class:`Run` objects (a setting name, a seed,
the ``training/fit.py`` flags of that setting, optionally the run whose
backbone it starts from). :class:`Driver` then, for every run in order:

1. skips it when its result JSON exists (resumability: delete the JSON, or
   the whole output folder, to redo a run);
2. calls ``training/fit.py`` (a subprocess by default) with the run's flags
   plus ``--seed``, ``--run-dir``, ``--quiet`` and the dataset root;
3. optionally calls ``training/evaluate.py`` on the saved model (test subset);
4. writes one result JSON: the command, the config the run saved, wall time,
   parameter count, per-epoch validation uSDR per target (``history.json``),
   final and best uSDR, and test uSDR when evaluated.

Nothing here trains or scores anything itself: numbers come from the files
``fit.py`` and ``evaluate.py`` write (``history.json``, ``config.json``,
``evaluation/results.json``).

Layout under ``--out`` (default ``experiments/results/<experiment>/``)::

    <setting>-seed<k>.json     one result per run (kept in git)
    summary.json               mean / std / min / max over seeds per setting
    *.png                      figures
    runs/<setting>-seed<k>/    fit.py's run directory (checkpoints, model)
    runs/<setting>-seed<k>.log fit.py's (and evaluate.py's) output
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIT = os.path.join(ROOT, "training", "fit.py")
EVALUATE = os.path.join(ROOT, "training", "evaluate.py")
RESULTS = os.path.join(ROOT, "experiments", "results")
SUMMARY_FILE = "summary.json"
RESULT_VERSION = 1

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
             "transfer_examples": 4, "sizes": [(4, 1), (8, 1)], "evaluate": False},
    # tiny preset (n_fft 512, hop 128) with N = 8, L = 1; 1 s training chunks,
    # batch 4: 6 epochs x 48 examples = 72 optimizer steps per backbone.
    "cpu-small": {"preset": "tiny", "batch_size": 4, "valid_examples": 16, "seeds": [0, 1],
                  "flags": ["--segment-seconds", "1", "--patience", "0"],
                  "model": ["--feature-dim", "8", "--num-layers", "1"],
                  "epochs": 6, "examples": 48, "transfer_epochs": 4, "transfer_examples": 48,
                  "sizes": [(4, 1), (8, 1)], "evaluate": False},
    # The cpu preset's recipe (README, experiments/CPU_RECIPE.md): N = 32,
    # L = 3, n_fft 2048, 2 s chunks, batch 4, loss bsrnn+sdr; 12 epochs x 400
    # examples (about 25 min per multi-target run on a 2-core CPU).
    "cpu": {"preset": "cpu", "batch_size": 4, "valid_examples": 32, "seeds": [0],
            "flags": ["--segment-seconds", "2", "--patience", "0", "--loss", "bsrnn+sdr"],
            "model": [], "epochs": 12, "examples": 400, "transfer_epochs": 6,
            "transfer_examples": 400, "sizes": [(32, 3), (64, 3)], "evaluate": True},
    # The refined paper: about 4 M parameters (the small preset: N = 64, L = 3,
    # n_fft 2048), MUSDB18-HQ, ~150 epochs; early stopping off so that every
    # setting gets the same budget.
    "paper": {"preset": "small", "batch_size": 2, "valid_examples": 32, "seeds": [0, 1],
              "flags": ["--patience", "0"], "model": ["--feature-dim", "64", "--num-layers", "3"],
              "epochs": 150, "examples": 1000, "transfer_epochs": 50, "transfer_examples": 1000,
              "sizes": [(32, 3), (64, 3), (128, 6), (128, 12)], "evaluate": True},
}

BAND_SPLITS = {  # name -> fit.py flags
    "v7": ["--bands", "v7"],
    "universal": ["--bands", "universal"],
    "universal41": ["--bands", "universal", "--num-edges", "41"],
}

_PARAMS_RE = re.compile(r"(\d+) bands \((.*?)\), (\d+) parameters \((\d+) trainable\)")
_BUILTIN_RE = re.compile(r"using the built-in (\w+) dataset \(.*\) at (\S+)")


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
    evaluate: Optional[bool] = None  # None: the driver's default
    meta: dict = dataclasses.field(default_factory=dict)  # copied into the result

    @property
    def key(self) -> str:
        return f"{self.setting}-seed{self.seed}"


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
    p.add_argument("--scale", default="cpu-small", choices=SCALES + HIDDEN_SCALES,
                   metavar="{" + ",".join(SCALES) + "}",
                   help="cpu-small: a 2-core CPU, the built-in dataset, a tiny model "
                        "(about an hour for all experiments); cpu: the cpu preset's recipe "
                        "(about 25 min per run, held-out evaluation); paper: the refined paper's "
                        "settings for a GPU and MUSDB18-HQ (--musdb-root or MUSDB_PATH)")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="training seeds (default: 0 1)")
    p.add_argument("--out", default=os.path.join(RESULTS, experiment),
                   help=f"results folder (default experiments/results/{experiment})")
    p.add_argument("--musdb-root", help="MUSDB18-HQ root (default $MUSDB_PATH, else the built-in "
                                        "dataset; required at --scale paper)")
    p.add_argument("--only", nargs="+", metavar="SETTING",
                   help="run only these settings (and the runs they start from)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the commands, run nothing")
    ev = p.add_mutually_exclusive_group()
    ev.add_argument("--evaluate", dest="evaluate", action="store_true", default=None,
                    help="also score every run on the test subset with evaluate.py "
                         "(default at --scale paper)")
    ev.add_argument("--no-evaluate", dest="evaluate", action="store_false")
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


# ------------------------------------------------------------------- runner

class Driver:
    """Runs (or skips) :class:`Run` objects and collects their results."""

    def __init__(self, experiment: str, args, log=print):
        self.experiment = experiment
        self.args = args
        self.scale = args.scale
        self.out = os.path.abspath(args.out)
        self.log = log
        self.musdb_root = args.musdb_root or os.environ.get("MUSDB_PATH")
        if self.scale == "paper" and not self.musdb_root and not args.dry_run:
            raise ExperimentError("--scale paper trains on MUSDB18-HQ: give --musdb-root or set "
                                  "MUSDB_PATH (or use --dry-run to see the commands)")
        base = BASE[self.scale]
        self.evaluate = base["evaluate"] if args.evaluate is None else args.evaluate
        self.reuse = not getattr(args, "no_reuse", False)
        self.results: Dict[str, dict] = {}
        self.run_dirs: Dict[str, str] = {}  # key -> run dir of a reused run
        self.failures: List[dict] = []
        self.started = time.time()

    # -- paths --------------------------------------------------------------
    def run_dir(self, key: str) -> str:
        return self.run_dirs.get(key) or os.path.join(self.out, "runs", key)

    def result_path(self, key: str) -> str:
        return os.path.join(self.out, f"{key}.json")

    def log_path(self, key: str) -> str:
        return os.path.join(self.out, "runs", f"{key}.log")

    def fit_argv(self, run: Run) -> List[str]:
        argv = list(run.flags)
        if run.backbone:
            argv += ["--init-backbone", self.run_dir(run.backbone), "--freeze-backbone"]
        argv += ["--seed", str(run.seed), "--run-dir", self.run_dir(run.key), "--quiet"]
        if self.musdb_root:
            argv += ["--musdb-root", self.musdb_root]
        return argv

    def evaluate_argv(self, run: Run) -> List[str]:
        argv = ["-m", self.run_dir(run.key), "-o", os.path.join(self.run_dir(run.key),
                                                               "evaluation")]
        if self.musdb_root:
            argv += ["--musdb-root", self.musdb_root]
        return argv

    # -- running ------------------------------------------------------------
    def select(self, runs: List[Run]) -> List[Run]:
        """``--only``: those settings plus the runs they depend on."""
        only = getattr(self.args, "only", None)
        if not only:
            return runs
        unknown = set(only) - {r.setting for r in runs}
        if unknown:
            raise ExperimentError(f"--only: unknown setting(s) {sorted(unknown)}; settings: "
                                  f"{sorted({r.setting for r in runs})}")
        by_key = {r.key: r for r in runs}
        keep = {r.key for r in runs if r.setting in only}
        frontier = list(keep)
        while frontier:
            dep = by_key[frontier.pop()].backbone
            if dep and dep not in keep:
                keep.add(dep)
                frontier.append(dep)
        return [r for r in runs if r.key in keep]

    def execute(self, runs: List[Run]) -> Dict[str, dict]:
        """Runs each run in order (dependencies first); returns {key: result}."""
        runs = self.select(runs)
        keys = [r.key for r in runs]
        if len(set(keys)) != len(keys):
            raise ExperimentError(f"duplicate runs in {keys}")
        for i, run in enumerate(runs, 1):
            prefix = f"[{self.experiment} {i}/{len(runs)}] {run.key}"
            if self.args.dry_run:
                found = self._reusable(run)
                if found is not None:
                    self.log(f"{prefix}: would reuse {rel(found[0])} (same fit.py flags)")
                    self.run_dirs[run.key] = found[1]
                    continue
                self.log(f"{prefix}:\n  {display_command(FIT, self.fit_argv(run))}")
                if self._evaluates(run):
                    self.log(f"  {display_command(EVALUATE, self.evaluate_argv(run))}")
                continue
            existing = read_result(self.result_path(run.key))
            if existing is not None:
                self.log(f"{prefix}: finished earlier, skipped ({rel(self.result_path(run.key))})")
                if self._changed(run, existing):
                    self.log(f"  WARNING: {run.key} was run with other fit.py flags than this "
                             f"scale's ({existing.get('command')}); delete its JSON and run "
                             "folder to redo it")
                self.results[run.key] = existing
                if existing.get("reused_from"):
                    self.run_dirs[run.key] = absolute(existing["run_dir"])
                continue
            reused = self._reuse(run)
            if reused is not None:
                self.log(f"{prefix}: same fit.py flags as {reused['reused_from']}: reused")
                self.results[run.key] = reused
                continue
            if run.backbone and run.backbone not in self.results:
                self._fail(run, f"its backbone run {run.backbone} did not finish")
                self.log(f"{prefix}: SKIPPED, backbone run {run.backbone} did not finish")
                continue
            self.log(f"{prefix}: training ...")
            result = self._run_one(run)
            if result is not None:
                self.results[run.key] = result
                self.log(f"{prefix}: done in {result['wall_seconds']:.0f} s, best validation "
                         f"uSDR " + ", ".join(f"{t} {v:.2f}" for t, v in
                                               result["best_valid_usdr"].items()) + " dB")
        return self.results

    def _changed(self, run: Run, existing: dict) -> bool:
        key = self.fit_args_key(run)
        if key is not None and existing.get("fit_args_key"):
            return key != existing["fit_args_key"]
        if existing.get("reused_from"):
            return False
        return existing.get("argv") is not None and existing["argv"] != [
            rel(a) for a in self.fit_argv(run)]

    def fit_args_key(self, run: Run) -> Optional[str]:
        """The run's fit.py arguments, parsed, without where it writes: two
        runs with the same key train the same model on the same data. None
        for transfer runs (their backbone is another run)."""
        if run.backbone:
            return None
        fit = import_script(FIT)
        try:
            namespace = vars(fit.build_parser().parse_args(self.fit_argv(run)))
        except SystemExit:
            return None
        for name in ("run_dir", "quiet", "logdir", "name"):
            namespace.pop(name, None)
        return json.dumps(namespace, sort_keys=True)

    def _reusable(self, run: Run) -> Optional[tuple]:
        """``(result path, run dir, result)`` of a finished run of another
        experiment (a folder next to ``--out``) with the same fit.py flags."""
        key = self.fit_args_key(run) if self.reuse else None
        if key is None:
            return None
        parent = os.path.dirname(self.out)
        for folder in sorted(os.listdir(parent)) if os.path.isdir(parent) else []:
            path = os.path.join(parent, folder)
            if path == self.out or not os.path.isdir(path):
                continue
            for other in load_results(path):
                if (other.get("fit_args_key") != key or other.get("reused_from")
                        or other.get("scale") != self.scale):
                    continue
                run_dir = absolute(other["run_dir"])
                if os.path.exists(os.path.join(run_dir, "model.keras")):
                    return (os.path.join(path, f"{other['setting']}-seed{other['seed']}.json"),
                            run_dir, other)
        return None

    def _reuse(self, run: Run) -> Optional[dict]:
        """The :meth:`_reusable` run copied as this run's result (its
        ``reused_from`` names the source; its run dir is used as is)."""
        found = self._reusable(run)
        if found is None:
            return None
        source, run_dir, other = found
        result = dict(other)
        result.update({"experiment": self.experiment, "setting": run.setting,
                       "group": run.group, "stage": run.stage, "seed": run.seed,
                       "backbone_run": run.backbone, **dict(run.meta),
                       "reused_from": rel(source)})
        self.run_dirs[run.key] = run_dir
        write_json(self.result_path(run.key), result)
        return result

    def _evaluates(self, run: Run) -> bool:
        return self.evaluate if run.evaluate is None else run.evaluate

    def _fail(self, run: Run, why: str) -> None:
        self.failures.append({"run": run.key, "error": why})

    def _run_one(self, run: Run) -> Optional[dict]:
        os.makedirs(os.path.join(self.out, "runs"), exist_ok=True)
        log_path = self.log_path(run.key)
        resumed = os.path.isdir(os.path.join(self.run_dir(run.key), "checkpoints"))
        argv = self.fit_argv(run)
        start = time.time()
        code, output = call_script(FIT, argv, log_path, self.args.in_process, append=False)
        fit_seconds = time.time() - start
        if code != 0:
            tail = "\n    ".join(output.strip().splitlines()[-8:])
            self.log(f"  FAILED (exit {code}); see {rel(log_path)}:\n    {tail}")
            self._fail(run, f"fit.py exit status {code}; log {rel(log_path)}")
            return None
        try:
            result = self._collect(run, argv, output, fit_seconds, resumed)
        except (OSError, ValueError, KeyError) as e:
            self._fail(run, f"cannot read the run's files: {e}")
            self.log(f"  FAILED: cannot read the run's files: {e}")
            return None
        if self._evaluates(run):
            eargv = self.evaluate_argv(run)
            start = time.time()
            code, _ = call_script(EVALUATE, eargv, log_path, self.args.in_process, append=True)
            result["test_command"] = display_command(EVALUATE, eargv)
            result["test_wall_seconds"] = time.time() - start
            if code == 0:
                result.update(read_evaluation(os.path.join(self.run_dir(run.key), "evaluation",
                                                           "results.json")))
            else:
                self.log(f"  evaluate.py failed (exit {code}); see {rel(log_path)}")
                result["test_error"] = f"evaluate.py exit status {code}"
        result["wall_seconds"] = fit_seconds + result.get("test_wall_seconds", 0.0)
        write_json(self.result_path(run.key), result)
        return result

    def _collect(self, run: Run, argv: List[str], output: str, seconds: float,
                 resumed: bool) -> dict:
        run_dir = self.run_dir(run.key)
        with open(os.path.join(run_dir, "history.json")) as f:
            history = json.load(f)
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        if not history:
            raise ValueError("empty history.json")
        match = _PARAMS_RE.search(output)
        builtin = _BUILTIN_RE.search(output)
        targets = list(config["model"]["targets"])
        curves = history_curves(history, targets)
        return {
            "version": RESULT_VERSION,
            "experiment": self.experiment,
            "setting": run.setting,
            "group": run.group,
            "stage": run.stage,
            "seed": run.seed,
            "scale": self.scale,
            "backbone_run": run.backbone,
            "command": display_command(FIT, argv),
            "fit_args_key": self.fit_args_key(run),
            "argv": [rel(a) for a in argv],
            "run_dir": rel(run_dir),
            "config": config,
            "targets": targets,
            "num_bands": int(match.group(1)) if match else _num_bands(config),
            "parameters": int(match.group(3)) if match else None,
            "trainable_parameters": int(match.group(4)) if match else None,
            "dataset": (f"built-in {builtin.group(1)} dataset ({builtin.group(2)})" if builtin
                        else self.musdb_root),
            "builtin_dataset": builtin is not None,
            "resumed": resumed,
            "fit_wall_seconds": seconds,
            "train_seconds": float(sum(h.get("seconds", 0.0) for h in history)),
            **curves,
            **dict(run.meta),
            "machine": machine(),
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    # -- summary ------------------------------------------------------------
    def write_summary(self, runs: List[Run], extra: Optional[dict] = None) -> dict:
        runs = self.select(runs)
        order = []
        for r in runs:
            if r.setting not in order:
                order.append(r.setting)
        results = [self.results[r.key] for r in runs if r.key in self.results]
        summary = summarize(self.experiment, results, order)
        summary["scale"] = self.scale
        summary["failures"] = self.failures
        summary["missing_runs"] = [r.key for r in runs if r.key not in self.results]
        summary["driver_wall_seconds_last_invocation"] = time.time() - self.started
        if extra:
            summary.update(extra)
        write_json(os.path.join(self.out, SUMMARY_FILE), summary)
        return summary


def call_script(script: str, argv: List[str], log_path: str, in_process: bool,
                append: bool) -> tuple:
    """Runs ``script`` (fit.py or evaluate.py) with ``argv``; returns
    ``(exit code, its output)``; the output also goes to ``log_path``."""
    mode = "a" if append else "w"
    if not in_process:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                   PYTHONUNBUFFERED="1")
        with open(log_path, mode) as log:
            log.write(f"$ {display_command(script, argv)}\n")
            log.flush()
            start = log.tell()
            code = subprocess.call([sys.executable, script, *argv], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, env=env)
        with open(log_path) as log:
            log.seek(start)
            return code, log.read()
    module = import_script(script)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            code = module.main(list(argv))
        except SystemExit as e:  # argparse errors
            code = e.code if isinstance(e.code, int) else 1
        except Exception as e:  # noqa: BLE001  (recorded as a failed run)
            print(f"{type(e).__name__}: {e}")
            code = 1
    text = buffer.getvalue()
    with open(log_path, mode) as log:
        log.write(f"$ {display_command(script, argv)}\n{text}")
    return code or 0, text


def import_script(script: str):
    """training/fit.py or training/evaluate.py as a module (cheap: they import
    TensorFlow only inside main)."""
    import importlib
    training = os.path.dirname(script)
    if training not in sys.path:
        sys.path.insert(0, training)
    return importlib.import_module(os.path.splitext(os.path.basename(script))[0])


# ------------------------------------------------------------ result files

def history_curves(history: List[dict], targets: Sequence[str]) -> dict:
    """Per-epoch validation uSDR from ``history.json`` and the final / best
    values. The best epoch is the one fit.py keeps (highest mean over targets
    of the validation uSDR, the first one on ties)."""
    curves = {t: [float(h["valid_usdr"][t]) for h in history] for t in targets}
    means = [float(sum(curves[t][i] for t in targets) / len(targets))
             for i in range(len(history))]
    best = max(range(len(history)), key=lambda i: (means[i], -i))
    gains = {}
    if all("valid_gain" in h for h in history):  # runs since the gain was logged
        gain = {t: [float(h["valid_gain"][t]) for h in history] for t in targets}
        gains = {"valid_gain": gain, "final_valid_gain": {t: gain[t][-1] for t in targets},
                 "best_valid_gain": {t: gain[t][best] for t in targets}}
    return {**gains,
        "epochs": [int(h["epoch"]) for h in history],
        "valid_usdr": curves,
        "valid_usdr_mean": means,
        "train_loss": [float(h["train_loss"]) for h in history],
        "epoch_seconds": [float(h.get("seconds", 0.0)) for h in history],
        "final_valid_usdr": {t: curves[t][-1] for t in targets},
        "final_valid_usdr_mean": means[-1],
        "best_epoch": int(history[best]["epoch"]),
        "best_valid_usdr": {t: curves[t][best] for t in targets},
        "best_valid_usdr_mean": means[best],
    }


def _num_bands(config: dict) -> Optional[int]:
    """Bands of a run's saved config (for a run that fit.py found complete
    and so did not describe)."""
    from bsrnn_tf.config import model_config_from_dict
    from bsrnn_tf.bands import band_ranges
    try:
        m = model_config_from_dict(config["model"])
        return len(band_ranges(m.bands, m.stft.sample_rate, m.stft.n_fft, m.num_edges))
    except Exception:  # noqa: BLE001  (a description only)
        return None


def read_evaluation(path: str) -> dict:
    with open(path) as f:
        data = json.load(f)
    table = data["targets"]
    targets = [t for t in table if t != "mean"]
    optional = {f"test_{key}": {t: table[t][name] for t in targets}
                for key, name in (("gain", "gain"), ("scaled_mixture_usdr", "scaled_mixture_usdr"),
                                  ("oracle_irm_usdr", "oracle_irm_usdr"))
                if all(name in table[t] for t in targets)}
    return {"test_usdr": {t: table[t]["usdr"] for t in targets},
            "test_csdr": {t: table[t]["csdr"] for t in targets},
            "test_mixture_usdr": {t: table[t]["mixture_usdr"] for t in targets},
            **optional, "test_tracks": len(data.get("tracks", {}))}


def read_result(path: str) -> Optional[dict]:
    """A finished run's result, or None (missing, unreadable, incomplete)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "best_valid_usdr" not in data:
        return None
    return data


def load_results(folder: str) -> List[dict]:
    """All run results (``*.json`` other than summary.json) in ``folder``."""
    out = []
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and name != SUMMARY_FILE:
            result = read_result(os.path.join(folder, name))
            if result is not None:
                out.append(result)
    return out


def write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, allow_nan=True)
        f.write("\n")
    os.replace(tmp, path)


# -------------------------------------------------------------- statistics

def stats(values: Iterable[float]) -> dict:
    """mean, sample standard deviation (ddof 1; 0 for one value), min, max."""
    values = [float(v) for v in values if v is not None and not _isnan(v)]
    n = len(values)
    if not n:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "values": []}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": std, "min": min(values), "max": max(values),
            "values": values}


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def metric_values(result: dict) -> Dict[str, float]:
    """Flat ``{metric name: value}`` of one result, the names used in
    summary.json and the report (e.g. ``best_valid_usdr.drums``)."""
    out = {}
    for key in ("best_valid_usdr", "final_valid_usdr", "test_usdr", "test_csdr",
                "best_valid_gain", "final_valid_gain", "test_gain"):
        for target, value in (result.get(key) or {}).items():
            out[f"{key}.{target}"] = value
    for key in ("best_valid_usdr_mean", "final_valid_usdr_mean", "wall_seconds",
                "best_epoch"):
        if result.get(key) is not None:
            out[key] = result[key]
    return out


def by_setting(results: Iterable[dict]) -> Dict[str, List[dict]]:
    """Results grouped by their ``setting``, each group sorted by seed."""
    out: Dict[str, List[dict]] = {}
    for r in results:
        out.setdefault(r["setting"], []).append(r)
    for runs in out.values():
        runs.sort(key=lambda r: r["seed"])
    return out


def summarize(experiment: str, results: List[dict], order: Optional[List[str]] = None) -> dict:
    """Per setting: seeds, size, and :func:`stats` of every metric over seeds."""
    groups = by_setting(results)
    names = [s for s in (order or []) if s in groups] + sorted(
        s for s in groups if s not in (order or []))
    settings = {}
    for name in names:
        group = groups[name]
        first = group[0]
        metrics: Dict[str, list] = {}
        for r in group:
            for k, v in metric_values(r).items():
                metrics.setdefault(k, []).append(v)
        cfg = first.get("config", {})
        settings[name] = {
            "group": first.get("group", ""),
            "stage": first.get("stage", ""),
            "targets": first.get("targets"),
            "seeds": [r["seed"] for r in group],
            "parameters": first.get("parameters"),
            "trainable_parameters": first.get("trainable_parameters"),
            "num_bands": first.get("num_bands"),
            "feature_dim": cfg.get("model", {}).get("feature_dim"),
            "num_layers": cfg.get("model", {}).get("num_layers"),
            "epochs": cfg.get("train", {}).get("epochs"),
            "examples_per_epoch": cfg.get("data", {}).get("examples_per_epoch"),
            "batch_size": cfg.get("train", {}).get("batch_size"),
            "metrics": {k: stats(v) for k, v in metrics.items()},
        }
    own = [r for r in results if not r.get("reused_from")]
    return {"experiment": experiment, "settings": settings,
            # Runs reused from another experiment are counted there only.
            "wall_seconds_runs_total": float(sum(r.get("wall_seconds", 0.0) for r in own)),
            "runs": len(results), "reused_runs": len(results) - len(own),
            "generated_at": time.strftime("%Y-%m-%d %H:%M:%S")}


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


def plot_mean_curve(ax, results: List[dict], target: str, label: str, color=None) -> None:
    """Mean over seeds of the per-epoch validation uSDR, min-max shaded."""
    curves = [r["valid_usdr"][target] for r in results if target in r["valid_usdr"]]
    if not curves:
        return
    length = max(len(c) for c in curves)
    epochs = list(range(1, length + 1))
    columns = [[c[i] for c in curves if i < len(c)] for i in range(length)]
    mean = [sum(col) / len(col) for col in columns]
    lo = [min(col) for col in columns]
    hi = [max(col) for col in columns]
    line, = ax.plot(epochs, mean, marker="o", markersize=3, label=f"{label} (n={len(curves)})",
                    color=color)
    if len(curves) > 1:
        ax.fill_between(epochs, lo, hi, alpha=0.2, color=line.get_color())
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


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
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def finish(driver: Driver, summary: dict) -> int:
    """Prints the outcome; exit status 1 if any run failed."""
    if driver.args.dry_run:
        return 0
    done = summary["runs"]
    driver.log(f"{driver.experiment}: {done} run(s) finished, "
               f"{summary['wall_seconds_runs_total']:.0f} s of run wall time in total; "
               f"results in {rel(driver.out)}")
    if driver.failures:
        for f in driver.failures:
            driver.log(f"  failed: {f['run']}: {f['error']}")
        return 1
    return 0


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def run_experiment(experiment: str, args, plan, plot, summary_extra,
                   adjust_base=None) -> int:
    """The ``main`` of every driver: plan the runs for the scale, run them
    (skipping finished ones), plot, write ``summary.json``.

    Args:
      plan: ``base -> runs``; plot: ``(results, out folder) -> [png paths]``.
      summary_extra: ``base -> dict`` merged into the summary.
      adjust_base: optional ``(base, args) -> None`` for driver-specific flags;
        may raise :class:`ExperimentError`.
    """
    try:
        base = scale_base(args)
        if adjust_base is not None:
            adjust_base(base, args)
        driver = Driver(experiment, args)
        runs = plan(base)
        results = driver.execute(runs)
    except ExperimentError as e:
        print(f"{experiment}: error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0
    figures = [] if args.no_plots or not results else plot(results, driver.out)
    summary = driver.write_summary(runs, {"figures": [os.path.basename(f) for f in figures],
                                          **summary_extra(base)})
    return finish(driver, summary)
