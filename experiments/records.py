"""The experiments' result files and the statistics over them.

One result JSON per run (:func:`read_result`, :func:`write_json`): the
command, the config the run saved, wall time, parameter count, per-epoch
validation uSDR and gain over the best-scaled mixture per target
(:func:`history_curves` of ``history.json``), final and best values, and the
test scores when evaluated (:func:`read_evaluation` of ``evaluate.py``'s
``results.json``). :func:`summarize` gives mean / std / min / max over seeds
per setting (``summary.json``).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Dict, Iterable, List, Optional, Sequence

from bsrnn_tf.fileio import atomic_write_json

SUMMARY_FILE = "summary.json"
RESULT_VERSION = 1


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


def read_evaluation(path: str) -> dict:
    with open(path) as f:
        data = json.load(f)
    table = data["targets"]
    targets = [t for t in table if t != "mean"]
    optional = {f"test_{key}": {t: table[t][name] for t in targets}
                for key, name in (("gain", "gain"), ("scaled_mixture_usdr", "scaled_mixture_usdr"),
                                  ("oracle_irm_usdr", "oracle_irm_usdr"))
                if all(name in table[t] for t in targets)}
    tracks = data.get("tracks", {})
    return {"test_usdr": {t: table[t]["usdr"] for t in targets},
            "test_csdr": {t: table[t]["csdr"] for t in targets},
            "test_mixture_usdr": {t: table[t]["mixture_usdr"] for t in targets},
            **optional, "test_tracks": len(tracks),
            # Per track, so that a result can be aggregated again later.
            "test_per_track": {name: _track_scores(s) for name, s in tracks.items()},
            "test_silent_references": data.get("silent_references", {})}


# The per-track scores a result keeps (evaluate_scores.COLUMNS' keys).
TRACK_SCORES = ("gain", "usdr", "scaled_mixture_usdr", "oracle_irm_usdr")


def _track_scores(summary: dict) -> dict:
    """The uSDR-based scores of one track's evaluate.py summary (dB), found
    where evaluate_scores.COLUMNS says each one lives."""
    from bsrnn_tf.commands.evaluate_scores import COLUMNS
    scores = {}
    for key in TRACK_SCORES:
        value = summary
        for part in COLUMNS[key][1]:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            scores[key] = value
    scores["silent_references"] = summary.get("silent_references", [])
    return scores


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
    atomic_write_json(path, data)


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
