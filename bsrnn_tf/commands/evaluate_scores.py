"""The scores of ``bsrnn-tf evaluate`` (``training/evaluate.py``): one track
separated and scored (uSDR, museval cSDR, the references), its files, and
the table over tracks."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from bsrnn_tf.fileio import atomic_save, atomic_write_json

EVAL_FILE = "evaluation.json"
SUMMARY_KEY = "bsrnn_tf"
WINDOW_SECONDS = 1.0


# ------------------------------------------------------------------- scoring

def score_track(name: str, references: Dict[str, np.ndarray], estimates: Dict[str, np.ndarray],
                mixture: np.ndarray, sample_rate: int, csdr: bool = True) -> dict:
    """museval BSSEval v4 over 1 s windows plus uSDR, for one track.

    Args:
      references, estimates: ``{target: (samples, 2)}``, same targets.
      mixture: ``(samples, 2)``; gives the complement of a single target.
      csdr: False skips museval (most of the time of a track): cSDR is NaN
        (``null`` in the files).
    Returns:
      ``{"museval": museval's TrackStore JSON as a dict, "usdr": {target: dB},
      "csdr": {target: median SDR over windows, dB}}``.
    """
    import museval

    from bsrnn_tf.metrics import usdr

    targets = list(references)
    if not csdr:
        return {"museval": {}, "usdr": {t: usdr(references[t], estimates[t]) for t in targets},
                "csdr": {t: float("nan") for t in targets}}
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
    """museval refuses all-zero signals: a -160 dB dither keeps them defined."""
    x = np.asarray(x, np.float64)
    if np.any(x):
        return x
    return np.random.default_rng(0).standard_normal(x.shape) * 1e-8


def median_over_windows(values) -> float:
    """Median of the per-window SDR, NaN windows (silent reference) ignored;
    NaN if none is left."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else float("nan")


# ------------------------------------------------------------------ one track

def evaluate_track(track, backend, targets: Sequence[str], out: str, subset: str,
                   overlap: float, csdr: bool = True, made_by: Optional[dict] = None) -> dict:
    """Separates ``track``, writes its estimates and its JSON; returns the
    summary ``{"usdr", "csdr", "gain", "mixture": {"usdr", "csdr"},
    "scaled_mixture": {"usdr"}, "oracle_irm": {"usdr"}, "seconds", "made_by",
    ...}`` (``made_by``: the model's fingerprint and the chunking, so a
    later run reuses the score only for the same model; ``silent_references``:
    the targets whose reference is silent, scored but left out of the means).
    The references need every source of the track (the IRM's denominator)."""
    from bsrnn_tf.audio import save_audio
    from bsrnn_tf.inference.separate import separate
    from bsrnn_tf.metrics import reference_scores

    mixture = track.mixture
    start = time.perf_counter()
    estimates = separate(mixture, backend, targets=list(targets), sample_rate=track.sample_rate,
                         overlap=overlap)
    elapsed = time.perf_counter() - start
    for target, estimate in estimates.items():
        save_audio(estimate_path(out, subset, track.name, target), estimate, track.sample_rate,
                   subtype="float32", clip_mode="none", overwrite=True)
    references = {t: track.sources[t] for t in targets}
    model = score_track(track.name, references, estimates, mixture, track.sample_rate, csdr)
    baseline = score_track(track.name, references, {t: mixture for t in targets}, mixture,
                           track.sample_rate, csdr)
    info = backend.info
    refs = reference_scores(track.sources, targets, info.n_fft, info.hop_length)
    summary = {"usdr": model["usdr"], "csdr": model["csdr"],
               "mixture": {"usdr": baseline["usdr"], "csdr": baseline["csdr"]},
               "scaled_mixture": {"usdr": refs["scaled_mixture"]},
               "oracle_irm": {"usdr": refs["oracle_irm"]},
               "gain": {t: model["usdr"][t] - refs["scaled_mixture"][t] for t in targets},
               "audio_seconds": mixture.shape[0] / track.sample_rate,
               "separation_seconds": elapsed, "made_by": made_by,
               "silent_references": silent_targets(track, targets)}
    document = {**model["museval"], SUMMARY_KEY: summary}
    atomic_write_json(track_json_path(out, subset, track.name), document)
    track.unload()
    return summary


def silent_targets(track, targets: Sequence[str]) -> List[str]:
    """The ``targets`` whose reference is silent in ``track``
    (:func:`bsrnn_tf.metrics.silent_reference`)."""
    from bsrnn_tf.metrics import silent_reference
    return [t for t in targets if silent_reference(track.sources[t], track.mixture)]


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

COLUMNS = {  # key: (table heading, per-track entry)
    "gain": ("gain over best-scaled mixture", ("gain",)),
    "usdr": ("uSDR", ("usdr",)),
    "scaled_mixture_usdr": ("best-scaled mixture uSDR", ("scaled_mixture", "usdr")),
    "oracle_irm_usdr": ("oracle IRM uSDR", ("oracle_irm", "usdr")),
    "mixture_usdr": ("raw mixture uSDR", ("mixture", "usdr")),
    "csdr": ("cSDR", ("csdr",)),
    "mixture_csdr": ("raw mixture cSDR", ("mixture", "csdr")),
}
TABLE_COLUMNS = ["gain", "usdr", "scaled_mixture_usdr", "oracle_irm_usdr", "csdr",
                 "mixture_csdr"]


def _entry(summary: dict, path: tuple) -> dict:
    for key in path:
        summary = summary[key]
    return summary


def aggregate(per_track: Dict[str, dict], targets: Sequence[str]) -> dict:
    """``{target: {column: dB}}`` for every key of :data:`COLUMNS`, plus
    ``"mean"`` (mean over targets of each column). cSDR columns: median over
    tracks; the others: mean over tracks (so ``gain`` is ``usdr -
    scaled_mixture_usdr``). A track's targets listed in its
    ``silent_references`` are left out (:func:`silent_pairs`)."""
    from bsrnn_tf.metrics import aggregate_csdr, aggregate_usdr

    def scored(summary: dict, path: tuple) -> dict:
        silent = set(summary.get("silent_references") or ())
        return {t: v for t, v in _entry(summary, path).items() if t not in silent}

    tracks = list(per_track.values())
    columns = {key: (aggregate_csdr if "csdr" in key else aggregate_usdr)(
        [scored(s, path) for s in tracks]) for key, (_, path) in COLUMNS.items()}
    table = {t: {k: v.get(t, float("nan")) for k, v in columns.items()} for t in targets}
    keys = list(next(iter(table.values())))
    table["mean"] = {k: float(np.mean([table[t][k] for t in targets])) for k in keys}
    return table


def silent_pairs(per_track: Dict[str, dict]) -> Dict[str, List[str]]:
    """``{target: [tracks]}`` whose reference is silent (not scored)."""
    pairs: Dict[str, List[str]] = {}
    for name, summary in per_track.items():
        for target in summary.get("silent_references") or ():
            pairs.setdefault(target, []).append(name)
    return pairs


def silent_note(per_track: Dict[str, dict]) -> str:
    """One sentence per target with silent references, or ''."""
    from bsrnn_tf.metrics import SILENT_REFERENCE_DB
    pairs = silent_pairs(per_track)
    if not pairs:
        return ""
    listing = "; ".join(f"{t}: {len(names)} of {len(per_track)} ({', '.join(names)})"
                        for t, names in pairs.items())
    return (f"Not scored, the reference being silent (at least {-SILENT_REFERENCE_DB:.0f} dB "
            f"below the mixture: its uSDR would measure only the estimate's leakage): "
            f"{listing}.\n")


def markdown_table(table: dict, title: str, csdr: bool = True) -> str:
    """The table of :func:`aggregate` in Markdown. ``csdr`` False (``--no-csdr``)
    leaves the cSDR columns out and says so; an undefined value (no track
    with a defined score) is written "–"."""
    columns = [k for k in TABLE_COLUMNS if csdr or "csdr" not in k]
    header = ("| target | " + " | ".join(COLUMNS[k][0] for k in columns) + " |\n"
              + "|---|" + "---:|" * len(columns) + "\n")
    rows = "".join(f"| {t} | " + " | ".join(_db(row[k]) for k in columns) + " |\n"
                   for t, row in table.items())
    csdr_note = ("cSDR: median over tracks of the median over 1 s windows (museval BSSEval "
                 "v4)" if csdr else "cSDR: not computed (--no-csdr)")
    return (f"{title}\n\n{header}{rows}\nAll figures in dB. Gain over the best-scaled "
            "mixture: the model's uSDR minus that of the mixture times the least-squares gain "
            "<s, m> / <m, m> (per track and target; 0 dB = no separation). Oracle IRM: the "
            "ideal ratio mask |S_target| / sum |S_k| on the model's STFT (the ceiling of a "
            f"mask model). uSDR: mean over tracks; {csdr_note}.\n")


def _db(value: Optional[float]) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+.2f}" if value < 0 else f"{value:.2f}"


def plot_table(table: dict, path: str, title: str) -> None:
    """Grouped bars per target: the model's, the best-scaled mixture's and
    the oracle IRM's uSDR, with the gain written over the model's bar (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(names)), 4))
    series = (("scaled_mixture_usdr", "best-scaled mixture"), ("usdr", "model"),
              ("oracle_irm_usdr", "oracle IRM (ceiling)"))
    for offset, (key, label) in zip((-0.27, 0.0, 0.27), series):
        bars = ax.bar(x + offset, [table[n][key] for n in names], 0.27, label=label)
        if key == "usdr":
            ax.bar_label(bars, labels=[f"{table[n]['gain']:+.2f}" for n in names], fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel("uSDR (dB, mean over tracks)")
    ax.set_title("uSDR; over the model's bars: gain over the best-scaled mixture (dB)",
                 fontsize=9)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
