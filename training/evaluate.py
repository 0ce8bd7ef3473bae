"""Evaluate a separator on MUSDB18 / MUSDB18-HQ: uSDR and museval cSDR per
target, against the unprocessed mixture as a baseline.

Examples::

    python training/evaluate.py -m saved_models/small-mtl-v7
    python training/evaluate.py -m saved_models/small-mtl-v7 --musdb-root ~/data/musdb18hq
    python training/evaluate.py -m model.keras --tracks "Al James - Schoolboy Facination"

Every track of the subset is separated through :func:`bsrnn_tf.separate.separate`
(the same path as ``bsrnn-tf separate``). Written under OUT (default
``<model dir>/evaluation``)::

    estimates/<subset>/<track>/<target>.wav   float32 estimates (museval's layout)
    scores/<subset>/<track>.json             museval's per-track JSON (BSSEval v4,
                                             1 s windows) plus a "bsrnn_tf" entry:
                                             uSDR, cSDR, and those of the mixture
    results.md, results.json                 the table below
    results.png                              bar chart: model vs mixture per target

Table: uSDR (mean over tracks), cSDR (median over tracks of the median over
1 s windows) per target, the same for the mixture used as the estimate of
every target, and the improvement (model - mixture). museval evaluates the
targets of a track jointly and needs at least two: a single-target model is
scored together with its complement ``no_<target>`` (mixture minus target).
museval leaves a window out (NaN) for every source when any source of the
call is silent in it, so a target's cSDR depends on the targets evaluated
with it: all of the model's are evaluated together (a four-stem model as in
SiSEC 2018).

Resumable: a track whose JSON exists is not separated again (unless
``--overwrite``). Without ``--musdb-root`` (or ``MUSDB_PATH``) the built-in
generated dataset's test subset is used, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from bsrnn_tf.config import atomic_save, atomic_write_text  # noqa: E402

EVAL_FILE = "evaluation.json"
SUMMARY_KEY = "bsrnn_tf"
WINDOW_SECONDS = 1.0


# ------------------------------------------------------------------- scoring

def score_track(name: str, references: Dict[str, np.ndarray], estimates: Dict[str, np.ndarray],
                mixture: np.ndarray, sample_rate: int) -> dict:
    """museval BSSEval v4 over 1 s windows plus uSDR, for one track.

    Args:
      references, estimates: ``{target: (samples, 2)}``, same targets.
      mixture: ``(samples, 2)``; gives the complement of a single target.
    Returns:
      ``{"museval": museval's TrackStore JSON as a dict, "usdr": {target: dB},
      "csdr": {target: median SDR over windows, dB}}``.
    """
    import museval

    from bsrnn_tf.metrics import usdr

    targets = list(references)
    names, refs, ests = list(targets), [references[t] for t in targets], \
        [estimates[t] for t in targets]
    if len(targets) == 1:  # museval needs two sources
        names.append(f"no_{targets[0]}")
        refs.append(mixture - refs[0])
        ests.append(mixture - ests[0])
    window = int(WINDOW_SECONDS * sample_rate)
    sdr, isr, sir, sar = museval.evaluate(np.stack([_dither_silence(x) for x in refs]),
                                          np.stack([_dither_silence(x) for x in ests]),
                                          win=window, hop=window)
    store = museval.TrackStore(name, win=WINDOW_SECONDS, hop=WINDOW_SECONDS)
    for i, target in enumerate(names):
        store.add_target(target, {"SDR": sdr[i].tolist(), "SIR": sir[i].tolist(),
                                  "ISR": isr[i].tolist(), "SAR": sar[i].tolist()})
    return {"museval": json.loads(store.json),
            "usdr": {t: usdr(references[t], estimates[t]) for t in targets},
            "csdr": {t: median_over_windows(sdr[i]) for i, t in enumerate(targets)}}


def _dither_silence(x: np.ndarray) -> np.ndarray:
    """museval refuses all-zero signals: a -160 dB dither keeps them defined
    (as :func:`bsrnn_tf.metrics.csdr` does)."""
    x = np.asarray(x, np.float64)
    if np.any(x):
        return x
    return np.random.default_rng(0).standard_normal(x.shape) * 1e-8


def median_over_windows(values) -> float:
    """Median of the per-window SDR, NaN windows (silent reference) ignored,
    as :func:`bsrnn_tf.metrics.csdr`; NaN if none is left."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else float("nan")


# ------------------------------------------------------------------ one track

def evaluate_track(track, backend, targets: Sequence[str], out: str, subset: str,
                   overlap: float) -> dict:
    """Separates ``track``, writes its estimates and its JSON; returns the
    summary ``{"usdr", "csdr", "mixture": {"usdr", "csdr"}, "seconds", ...}``."""
    from bsrnn_tf.audio import save_audio
    from bsrnn_tf.separate import separate

    mixture = track.mixture
    start = time.perf_counter()
    estimates = separate(mixture, backend, targets=list(targets), sample_rate=track.sample_rate,
                         overlap=overlap)
    elapsed = time.perf_counter() - start
    for target, estimate in estimates.items():
        save_audio(estimate_path(out, subset, track.name, target), estimate, track.sample_rate,
                   subtype="float32", clip_mode="none", overwrite=True)
    references = {t: track.sources[t] for t in targets}
    model = score_track(track.name, references, estimates, mixture, track.sample_rate)
    baseline = score_track(track.name, references, {t: mixture for t in targets}, mixture,
                           track.sample_rate)
    summary = {"usdr": model["usdr"], "csdr": model["csdr"],
               "mixture": {"usdr": baseline["usdr"], "csdr": baseline["csdr"]},
               "audio_seconds": mixture.shape[0] / track.sample_rate,
               "separation_seconds": elapsed}
    document = {**model["museval"], SUMMARY_KEY: summary}
    atomic_write_text(track_json_path(out, subset, track.name),
                      json.dumps(document, indent=1, allow_nan=True) + "\n")
    track.unload()
    return summary


def estimate_path(out: str, subset: str, track: str, target: str) -> str:
    return os.path.join(out, "estimates", subset, track, f"{target}.wav")


def track_json_path(out: str, subset: str, track: str) -> str:
    return os.path.join(out, "scores", subset, f"{track}.json")


def read_summary(path: str) -> Optional[dict]:
    """The summary of a finished track, or None if its JSON is missing or
    unreadable (then the track is evaluated again)."""
    try:
        with open(path) as f:
            return json.load(f)[SUMMARY_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------ the table

def aggregate(per_track: Dict[str, dict], targets: Sequence[str]) -> dict:
    """``{target: {usdr, csdr, mixture_usdr, mixture_csdr, usdr_improvement,
    csdr_improvement}}`` plus ``"mean"`` (mean over targets of each column).
    uSDR: mean over tracks; cSDR: median over tracks."""
    from bsrnn_tf.metrics import aggregate_csdr, aggregate_usdr

    tracks = list(per_track.values())
    columns = {"usdr": aggregate_usdr([s["usdr"] for s in tracks]),
               "csdr": aggregate_csdr([s["csdr"] for s in tracks]),
               "mixture_usdr": aggregate_usdr([s["mixture"]["usdr"] for s in tracks]),
               "mixture_csdr": aggregate_csdr([s["mixture"]["csdr"] for s in tracks])}
    table = {t: {k: v.get(t, float("nan")) for k, v in columns.items()} for t in targets}
    for row in table.values():
        row["usdr_improvement"] = row["usdr"] - row["mixture_usdr"]
        row["csdr_improvement"] = row["csdr"] - row["mixture_csdr"]
    keys = list(next(iter(table.values())))
    table["mean"] = {k: float(np.mean([table[t][k] for t in targets])) for k in keys}
    return table


def markdown_table(table: dict, title: str) -> str:
    header = ("| target | uSDR | mixture uSDR | uSDR improvement | cSDR | mixture cSDR "
              "| cSDR improvement |\n|---|---:|---:|---:|---:|---:|---:|\n")
    keys = ["usdr", "mixture_usdr", "usdr_improvement", "csdr", "mixture_csdr",
            "csdr_improvement"]
    rows = "".join(f"| {t} | " + " | ".join(_db(row[k]) for k in keys) + " |\n"
                   for t, row in table.items())
    return f"{title}\n\n{header}{rows}\nAll figures in dB; uSDR: mean over tracks; cSDR: " \
           f"median over tracks of the median over 1 s windows (museval BSSEval v4).\n"


def _db(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:+.2f}" if value < 0 else f"{value:.2f}"


def plot_table(table: dict, path: str, title: str) -> None:
    """Grouped bars, model vs mixture, for uSDR and cSDR (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(names)), 4), sharey=True)
    for ax, metric in zip(axes, ("usdr", "csdr")):
        for offset, (key, label) in zip((-0.2, 0.2), ((metric, "model"),
                                                      (f"mixture_{metric}", "mixture"))):
            values = [table[n][key] for n in names]
            bars = ax.bar(x + offset, values, 0.4, label=label)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, names)
        ax.set_title(f"{'uSDR (mean)' if metric == 'usdr' else 'cSDR (median)'}")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("dB")
    axes[0].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)


# ------------------------------------------------------------------------ main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("-m", "--model", required=True,
                   help=".keras file, run directory, SavedModel directory or .tflite file")
    p.add_argument("--musdb-root", help="MUSDB18 / MUSDB18-HQ root (default $MUSDB_PATH or the "
                                        "built-in generated dataset)")
    p.add_argument("--subset", default="test", choices=["train", "test"])
    p.add_argument("--tracks", nargs="+", metavar="NAME", help="only these tracks")
    p.add_argument("--targets", nargs="+", help="only these targets (default: all of the "
                                                "model's that are MUSDB stems)")
    p.add_argument("-o", "--out", help="output folder (default <model dir>/evaluation)")
    p.add_argument("--segment", type=float, metavar="SECONDS", help="chunk length (default: "
                                                                    "the model's)")
    p.add_argument("--overlap", type=float, default=0.25, help="chunk overlap (default 0.25)")
    p.add_argument("--overwrite", action="store_true", help="evaluate finished tracks again")
    return p


def default_out(model_path: str) -> str:
    path = os.path.abspath(model_path.rstrip("/"))
    if os.path.isdir(path):
        return os.path.join(path, "evaluation")
    return os.path.splitext(path)[0] + "-evaluation"


def main(argv: Optional[Sequence[str]] = None) -> int:
    from bsrnn_tf.audio import AudioError
    from bsrnn_tf.data.musdb import DataError
    from bsrnn_tf.separate import SeparationError

    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (AudioError, DataError, SeparationError, ValueError) as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bsrnn_tf.data.musdb import SOURCES, load_tracks, resolve_root
    from bsrnn_tf.separate import open_model

    root, builtin = resolve_root(args.musdb_root)
    backend = open_model(args.model, args.segment)
    targets = choose_targets(backend.targets, args.targets, SOURCES)
    tracks = select_tracks(load_tracks(root, subset=args.subset, split=None), args.tracks)
    out = args.out or default_out(args.model)
    check_out(out, root, args.subset, args.overwrite)
    per_track = {}
    for track in tqdm(tracks, desc="tracks", unit="track"):
        summary = None if args.overwrite else read_summary(
            track_json_path(out, args.subset, track.name))
        if summary is None or not set(targets) <= set(summary["usdr"]):
            summary = evaluate_track(track, backend, targets, out, args.subset, args.overlap)
            tqdm.write(f"{track.name}: uSDR " + ", ".join(
                f"{t} {summary['usdr'][t]:.2f}" for t in targets) + " dB")
        else:
            tqdm.write(f"{track.name}: already evaluated (kept; --overwrite to redo)")
        per_track[track.name] = summary
    write_results(out, args, root, builtin, targets, per_track)
    return 0


def choose_targets(available: Sequence[str], wanted: Optional[Sequence[str]],
                   stems: Sequence[str]) -> List[str]:
    """The model's targets that have a reference in the dataset."""
    from bsrnn_tf.separate import SeparationError

    if wanted:
        missing = [t for t in wanted if t not in available or t not in stems]
        if missing:
            raise SeparationError(f"cannot evaluate {missing}: the model has {list(available)}, "
                                  f"the dataset has {list(stems)}")
        return [t for t in available if t in wanted]
    targets = [t for t in available if t in stems]
    if not targets:
        raise SeparationError(f"none of the model's targets {list(available)} is a dataset stem "
                              f"({list(stems)})")
    skipped = [t for t in available if t not in stems]
    if skipped:
        print(f"not evaluated (no reference stem): {', '.join(skipped)}")
    return targets


def select_tracks(tracks: list, names: Optional[Sequence[str]]) -> list:
    if not names:
        return tracks
    by_name = {t.name: t for t in tracks}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"no track named {unknown}; tracks: {sorted(by_name)[:10]}"
                         f"{' ...' if len(by_name) > 10 else ''}")
    return [by_name[n] for n in names]


def check_out(out: str, root: str, subset: str, overwrite: bool) -> None:
    """Refuses to mix the scores of two datasets in one folder."""
    path = os.path.join(out, EVAL_FILE)
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            previous = json.load(f)
        if previous.get("dataset") != root:
            raise ValueError(f"{out} holds an evaluation on {previous.get('dataset')}, not {root}: "
                             f"use another -o or --overwrite")
    atomic_write_text(path, json.dumps({"dataset": root, "subset": subset}, indent=1) + "\n")


def write_results(out: str, args, root: str, builtin: bool, targets: Sequence[str],
                  per_track: Dict[str, dict]) -> dict:
    table = aggregate(per_track, targets)
    dataset = ("the built-in generated dataset (not MUSDB18: figures are not comparable to "
               "published ones)" if builtin else "MUSDB18")
    title = (f"{os.path.basename(os.path.abspath(args.model.rstrip('/')))} on {dataset}, "
             f"{args.subset} subset, {len(per_track)} tracks ({root})")
    text = markdown_table(table, title)
    print(text)
    atomic_write_text(os.path.join(out, "results.md"), text)
    results = {"model": os.path.abspath(args.model), "dataset": root, "builtin_dataset": builtin,
               "subset": args.subset, "segment": args.segment, "overlap": args.overlap,
               "targets": table, "tracks": per_track}
    atomic_write_text(os.path.join(out, "results.json"),
                      json.dumps(results, indent=1, allow_nan=True) + "\n")
    short = (f"{os.path.basename(os.path.abspath(args.model.rstrip('/')))}: "
             f"{'built-in generated dataset' if builtin else 'MUSDB18'}, {args.subset}, "
             f"{len(per_track)} tracks")
    plot_table(table, os.path.join(out, "results.png"), short)
    print(f"wrote {out}/results.md, results.json, results.png; per-track scores in "
          f"{out}/scores/{args.subset}/")
    return results


if __name__ == "__main__":
    sys.exit(main())
