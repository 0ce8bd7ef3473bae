"""Runs an experiment: :class:`Driver` takes the :class:`~experiments.common.Run`
objects of a driver and, for every run in order:

1. skips it when its result JSON exists (resumability: delete the JSON, or
   the whole output folder, to redo a run);
2. calls ``training/fit.py`` (a subprocess by default) with the run's flags
   plus ``--seed``, ``--run-dir``, ``--quiet`` and the dataset root;
3. optionally calls ``training/evaluate.py`` on the saved model (test subset);
4. writes one result JSON (:mod:`experiments.records`).

Nothing here trains or scores anything itself: numbers come from the files
``fit.py`` and ``evaluate.py`` write (``history.json``, ``config.json``,
``evaluation/results.json``). :func:`run_experiment` is every driver's
``main``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

from experiments.common import (BASE, EVALUATE, FIT, ROOT, ExperimentError, Run, absolute,
                                display_command, machine, rel, result_key, scale_base)
from experiments.records import (RESULT_VERSION, SUMMARY_FILE, history_curves,
                                 load_results, read_evaluation, read_result, summarize,
                                 write_json)

_PARAMS_RE = re.compile(r"(\d+) bands \((.*?)\), (\d+) parameters \((\d+) trainable\)")
_BUILTIN_RE = re.compile(r"using the built-in (\w+) dataset \(.*\) at (\S+)")


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
        self.instrument_root = getattr(args, "instrument_root", None) or self.musdb_root
        self._holdout_data = base.get("data") == "holdout"  # made on first use (root())
        self.evaluate = base["evaluate"] if args.evaluate is None else args.evaluate
        self.reuse = not getattr(args, "no_reuse", False)
        self.results: Dict[str, dict] = {}
        self.run_dirs: Dict[str, str] = {}  # key -> run dir of a reused run
        self.failures: List[dict] = []
        self.to_train: List[str] = []  # --dry-run: the runs that would be trained
        self.started = time.time()

    # -- paths --------------------------------------------------------------
    def run_dir(self, key: str) -> str:
        return self.run_dirs.get(key) or os.path.join(self.out, "runs", key)

    def has_model(self, key: str) -> bool:
        """Whether the run's folder holds its trained ``model.keras``."""
        return os.path.exists(os.path.join(self.run_dir(key), "model.keras"))

    def evaluation_dir(self, key: str) -> str:
        """Where evaluate.py writes the run's test scores (``results.json``)."""
        return os.path.join(self.run_dir(key), "evaluation")

    def backbone_dir(self, key: str) -> str:
        """The run a transfer starts from: its run dir, or (run dirs are not
        kept in git) the headless copy :meth:`keep_backbone` wrote."""
        return model_dir(self.run_dir(key))

    def keep_backbone(self, run: Run) -> None:
        """Writes ``<out>/backbones/<key>/`` (``model.keras`` without heads,
        about 2 MB for the cpu preset, and config.json): what a later
        session needs to train heads on this run's backbone after the run
        dir (checkpoints, 60+ MB) is gone."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the driver's log stays readable
        from bsrnn_tf.models import load_separator, save_separator
        model = load_separator(self.run_dir(run.key))
        for target in model.targets:
            model.remove_head(target)
        save_separator(model, self.kept_backbone_dir(run.key))

    def kept_backbone_dir(self, key: str) -> str:
        """Where :meth:`keep_backbone` writes: :func:`kept_backbone_dir`."""
        return kept_backbone_dir(self.out, key)

    def result_path(self, key: str) -> str:
        return os.path.join(self.out, f"{key}.json")

    def log_path(self, key: str) -> str:
        return os.path.join(self.out, "runs", f"{key}.log")

    def root(self, run: Run) -> Optional[str]:
        """The dataset root of ``run`` (None: fit.py's built-in dataset, or the
        root the run's own flags name). ``no_vocals``: the run's default
        songs with the vocals stem silenced and taken out of the mixtures
        (derived once, experiments/holdout_data.py)."""
        if run.data == "own":
            return None
        from experiments import holdout_data
        make = not self.args.dry_run
        if self._holdout_data:
            if run.data == "instruments" and not self.instrument_root:
                self.instrument_root = holdout_data.full_root(make)
            if run.data != "instruments" and not self.musdb_root:
                self.musdb_root = holdout_data.holdout_root(make)
        if run.data == "instruments":
            return self.instrument_root
        if run.data == "no_vocals":
            if not self.musdb_root:
                raise ExperimentError(f"{run.key} trains on songs without vocals, derived "
                                      "from a dataset: give --musdb-root")
            try:
                return holdout_data.no_vocals_of(self.musdb_root, make)
            except FileNotFoundError as e:
                raise ExperimentError(str(e)) from None
        return self.musdb_root

    def fit_argv(self, run: Run) -> List[str]:
        argv = list(run.flags)
        if run.backbone:
            argv += ["--init-backbone", self.backbone_dir(run.backbone), "--freeze-backbone"]
        argv += ["--seed", str(run.seed), "--run-dir", self.run_dir(run.key), "--quiet"]
        if self.root(run):
            argv += ["--musdb-root", self.root(run)]
        if getattr(self.args, "threads", None):
            argv += ["--threads", str(self.args.threads)]
        return argv

    def evaluate_argv(self, run: Run) -> List[str]:
        argv = ["-m", self.run_dir(run.key), "-o", self.evaluation_dir(run.key)]
        if not BASE[self.scale].get("csdr", True):
            argv.append("--no-csdr")
        if self.root(run):
            argv += ["--musdb-root", self.root(run)]
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

    def execute(self, runs: List[Run],
                after_run: Optional[Callable[[Run], None]] = None) -> Dict[str, dict]:
        """Runs each run in order (dependencies first); returns {key: result}.
        ``after_run(run)`` is called after each run that has a result (run
        now, earlier, or reused from another experiment), before the next one
        starts: work that needs the run's model is done while it is on disk,
        not after a set that may be cut off."""
        runs = self.select(runs)
        keys = [r.key for r in runs]
        if len(set(keys)) != len(keys):
            raise ExperimentError(f"duplicate runs in {keys}")
        for i, run in enumerate(runs, 1):
            self._execute_one(run, f"[{self.experiment} {i}/{len(runs)}] {run.key}")
            if after_run is not None and run.key in self.results:
                after_run(run)
        return self.results

    def _execute_one(self, run: Run, prefix: str) -> None:
        """One run of :meth:`execute`: reused, skipped or trained (or, with
        ``--dry-run``, its commands printed)."""
        existing = read_result(self.result_path(run.key))
        if self.args.dry_run:
            if existing is not None:
                self.log(f"{prefix}: finished earlier, would be skipped "
                         f"({rel(self.result_path(run.key))})")
                return
            found = self._reusable(run)
            if found is not None:
                self.log(f"{prefix}: would reuse {rel(found[0])} (same fit.py flags)")
                self.run_dirs[run.key] = found[1]
                return
            self.to_train.append(run.key)
            self.log(f"{prefix}:\n  {display_command(FIT, self.fit_argv(run))}")
            if self._evaluates(run):
                self.log(f"  {display_command(EVALUATE, self.evaluate_argv(run))}")
            return
        if existing is not None:
            self.log(f"{prefix}: finished earlier, skipped ({rel(self.result_path(run.key))})")
            self._evaluate_again(run, existing)
            self._recollect_tracks(run, existing)
            if self._changed(run, existing):
                self.log(f"  WARNING: {run.key} was run with other fit.py flags than this "
                         f"scale's ({existing.get('command')}); delete its JSON and run "
                         "folder to redo it")
            self.results[run.key] = existing
            if existing.get("reused_from"):
                self.run_dirs[run.key] = absolute(existing["run_dir"])
            elif run.keep_backbone and self.has_model(run.key) and not os.path.exists(
                    os.path.join(self.kept_backbone_dir(run.key), "model.keras")):
                self.keep_backbone(run)  # a run finished before backbones were kept
            return
        reused = self._reuse(run)
        if reused is not None:
            self.log(f"{prefix}: same fit.py flags as {reused['reused_from']}: reused")
            self.results[run.key] = reused
            return
        if run.backbone and run.backbone not in self.results:
            self._fail(run, f"its backbone run {run.backbone} did not finish")
            self.log(f"{prefix}: SKIPPED, backbone run {run.backbone} did not finish")
            return
        self.log(f"{prefix}: training ...")
        result = self._run_one(run)
        if result is not None:
            self.results[run.key] = result
            self.log(f"{prefix}: done in {result['wall_seconds']:.0f} s, best validation "
                     f"uSDR " + ", ".join(f"{t} {v:.2f}" for t, v in
                                           result["best_valid_usdr"].items()) + " dB")

    def _recollect_tracks(self, run: Run, existing: dict) -> None:
        """A result written before results kept their per-track scores takes
        them from the run's evaluation, while that is still on disk."""
        path = os.path.join(self.evaluation_dir(run.key), "results.json")
        if ("test_gain" not in existing or "test_per_track" in existing
                or existing.get("reused_from") or not os.path.exists(path)):
            return
        try:
            evaluation = read_evaluation(path)
        except (OSError, ValueError, KeyError):
            return
        if evaluation.get("test_gain") != existing["test_gain"]:
            return  # another evaluation than the one the result holds
        existing.update(evaluation)
        write_json(self.result_path(run.key), existing)
        self.log(f"  per-track test scores added from {rel(path)}")

    def _changed(self, run: Run, existing: dict) -> bool:
        key = self.fit_args_key(run)
        if key is not None and existing.get("fit_args_key"):
            return not same_fit_args(key, existing["fit_args_key"])
        if existing.get("reused_from") or existing.get("argv") is None:
            return False
        # A transfer run: its flags, less the backbone's path (its run dir,
        # or its kept copy in a later session: the same weights).
        return not same_fit_args(fit_args_key(existing["argv"], "init_backbone"),
                                 fit_args_key(self.fit_argv(run), "init_backbone"))

    def fit_args_key(self, run: Run) -> Optional[str]:
        """The run's fit.py arguments, parsed, without where it writes: two
        runs with the same key train the same model on the same data. None
        for transfer runs (their backbone is another run)."""
        return None if run.backbone else fit_args_key(self.fit_argv(run))

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
                if (not same_fit_args(other.get("fit_args_key"), key) or other.get("reused_from")
                        or other.get("scale") != self.scale):
                    continue
                run_dir = absolute(other["run_dir"])
                if os.path.exists(os.path.join(model_dir(run_dir), "model.keras")):
                    return (os.path.join(path, f"{result_key(other)}.json"),
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
            self._evaluate(run, result, log_path)
        result["wall_seconds"] = fit_seconds + result.get("test_wall_seconds", 0.0)
        if run.keep_backbone:
            self.keep_backbone(run)
        write_json(self.result_path(run.key), result)
        return result

    def _evaluate(self, run: Run, result: dict, log_path: str) -> None:
        """Scores the run on the test songs with evaluate.py into ``result``
        (``test_*``; ``test_error`` when evaluate.py fails)."""
        eargv = self.evaluate_argv(run)
        start = time.time()
        code, _ = call_script(EVALUATE, eargv, log_path, self.args.in_process, append=True)
        result["test_command"] = display_command(EVALUATE, eargv)
        result["test_wall_seconds"] = time.time() - start
        if code == 0:
            result.pop("test_error", None)
            result.update(read_evaluation(os.path.join(self.evaluation_dir(run.key),
                                                       "results.json")))
        else:
            self.log(f"  evaluate.py failed (exit {code}); see {rel(log_path)}")
            result["test_error"] = f"evaluate.py exit status {code}"

    def _evaluate_again(self, run: Run, existing: dict) -> None:
        """A finished run whose evaluation failed is evaluated again while its
        model is still on disk (the training is kept)."""
        if ("test_error" not in existing or not self._evaluates(run)
                or existing.get("reused_from")
                or not self.has_model(run.key)):
            return
        self.log(f"  its evaluation had failed ({existing['test_error']}): evaluating again")
        self._evaluate(run, existing, self.log_path(run.key))
        existing["wall_seconds"] = (existing.get("fit_wall_seconds", 0.0)
                                    + existing.get("test_wall_seconds", 0.0))
        write_json(self.result_path(run.key), existing)

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
                        else self.root(run)),
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


def fit_args_key(argv: List[str], *ignored: str) -> Optional[str]:
    """fit.py's arguments ``argv``, parsed, as a JSON key without what does
    not change the model (where the run writes, its log, its name, its
    thread count) nor the options named in ``ignored``; None if fit.py
    refuses them."""
    try:
        namespace = vars(_fit_parser().parse_args(argv))
    except SystemExit:
        return None
    for name in ("run_dir", "quiet", "logdir", "name", "threads", *ignored):
        namespace.pop(name, None)
    return json.dumps(namespace, sort_keys=True)


def same_fit_args(a: Optional[str], b: Optional[str]) -> bool:
    """Whether two :meth:`Driver.fit_args_key` values train the same model.
    An option that one key lacks (fit.py gained it after that run) counts as
    its default: a new option left at its default does not make a finished
    run look different."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    parser = _fit_parser()
    first, second = json.loads(a), json.loads(b)
    return all(first.get(k, parser.get_default(k)) == second.get(k, parser.get_default(k))
               for k in set(first) | set(second))


@functools.lru_cache(maxsize=1)
def _fit_parser():
    """fit.py's parser (for its defaults), built once."""
    from bsrnn_tf.commands import fit
    return fit.build_parser()


def kept_backbone_dir(out: str, key: str) -> str:
    """``<out>/backbones/<key>``: the headless copy of run ``key`` of the
    experiment in ``out`` (whose run folders are ``<out>/runs/<key>``)."""
    return os.path.join(out, "backbones", key)


def model_dir(run_dir: str) -> str:
    """``run_dir`` if it holds ``model.keras``, else the run's headless copy
    in ``<experiment>/backbones/<key>`` when there is one."""
    if os.path.exists(os.path.join(run_dir, "model.keras")):
        return run_dir
    kept = kept_backbone_dir(os.path.dirname(os.path.dirname(run_dir)),
                             os.path.basename(run_dir))
    return kept if os.path.exists(os.path.join(kept, "model.keras")) else run_dir


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
    module = command_module(script)
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


def command_module(script: str):
    """The module behind training/fit.py or training/evaluate.py (cheap: they
    import TensorFlow only inside main)."""
    from bsrnn_tf.commands import evaluate, fit
    return {FIT: fit, EVALUATE: evaluate}[script]


def finish(driver: Driver, summary: dict) -> int:
    """Prints the outcome; exit status 1 if any run failed."""
    if driver.args.dry_run:
        driver.log(f"{driver.experiment}: {len(driver.to_train)} run(s) to train"
                   + (f": {' '.join(driver.to_train)}" if driver.to_train else ""))
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


def all_results(out: str, results: Dict[str, dict]) -> Dict[str, dict]:
    """Every finished run's result in ``out`` (by key), this invocation's
    ``results`` over them: the figures show the whole experiment, not only
    the runs an ``--only``/``--seeds`` subset selected."""
    found = {result_key(r): r for r in load_results(out)
             if "setting" in r and "seed" in r}
    return {**found, **results}


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
        return finish(driver, {})
    figures = [] if args.no_plots or not results else plot(all_results(driver.out, results),
                                                            driver.out)
    summary = driver.write_summary(runs, {"figures": [os.path.basename(f) for f in figures],
                                          **summary_extra(base)})
    return finish(driver, summary)
