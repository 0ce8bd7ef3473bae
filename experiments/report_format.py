"""The report's statistics and wording (experiments/report.py): values per
seed of a setting's runs, table cells, paired differences, the comparison
sentences, the regression of experiment 1's confound, and the minutes a
validation curve takes to reach a level.

Runs of one setting are paired with another setting's by their seed (the
drivers give every arm the same seeds and the same data order). Missing
values are left out and shown as "–", never as zeros.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

from experiments import records
from experiments.records import stats

SeedValues = Dict[int, float]  # seed -> value (dB, seconds ...)


# ----------------------------------------------------------------- values

def seed_values(runs: Sequence[dict], key: str, target: Optional[str] = None) -> SeedValues:
    """``{seed: result[key][target]}`` (or ``result[key]`` without a
    target) of the runs that have a finite value."""
    out = {}
    for r in runs:
        v = r.get(key)
        if target is not None:
            v = (v or {}).get(target)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            out[int(r["seed"])] = float(v)
    return out


def paired(a: SeedValues, b: SeedValues) -> SeedValues:
    """``a - b`` for the seeds both have."""
    return {s: a[s] - b[s] for s in sorted(a) if s in b}


def ratio(a: SeedValues, b: SeedValues) -> SeedValues:
    """``a / b`` for the seeds both have (b non-zero)."""
    return {s: a[s] / b[s] for s in sorted(a) if b.get(s)}


def seed_mean(per_target: Sequence[SeedValues]) -> SeedValues:
    """Per seed, the mean over targets (only seeds that have every target)."""
    if not per_target:
        return {}
    seeds = set.intersection(*(set(v) for v in per_target))
    return {s: sum(v[s] for v in per_target) / len(per_target) for s in sorted(seeds)}


def mean(values) -> Optional[float]:
    values = list(values.values() if isinstance(values, dict) else values)
    return sum(values) / len(values) if values else None


# ----------------------------------------------------------------- cells

def cell(values) -> str:
    """``mean ± std [min, max] (n=k)`` of a :data:`SeedValues` (or a list);
    ``x (n=1)`` for one value, "–" for none. 2 decimals."""
    s = stats(values.values() if isinstance(values, dict) else values)
    if not s["n"]:
        return "–"
    if s["n"] == 1:
        return f"{s['mean']:.2f} (n=1)"
    return f"{s['mean']:.2f} ± {s['std']:.2f} [{s['min']:.2f}, {s['max']:.2f}] (n={s['n']})"


def signed_cell(values) -> str:
    """``+mean ± std (n=k)`` of a :data:`SeedValues` (or a list), for a
    difference in a table with many cells; "–" for none."""
    s = stats(values.values() if isinstance(values, dict) else values)
    if not s["n"]:
        return "–"
    spread = f" ± {s['std']:.2f}" if s["n"] > 1 else ""
    return f"{s['mean']:+.2f}{spread} (n={s['n']})"


def number(value: Optional[float], digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def reference(runs: Sequence[dict], key: str, target: str) -> str:
    """A property of the test songs (best-scaled mixture or oracle IRM uSDR):
    the mean over the runs that report it (every run scores the same songs;
    ``runs`` may hold several settings, so not keyed by seed)."""
    return number(reference_value(runs, key, target))


def reference_value(runs: Sequence[dict], key: str, target: str) -> Optional[float]:
    """The number :func:`reference` writes (None if no run reports it)."""
    return mean([v for r in runs for v in seed_values([r], key, target).values()])


def fmt_int(v) -> str:
    return "–" if v is None else f"{int(v):,}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def budget(runs: Sequence[dict]) -> str:
    """``E epochs x X examples`` (per epoch) of the first run's config, or "–"."""
    if not runs or not runs[0].get("config"):
        return "–"
    cfg = runs[0]["config"]
    return f"{cfg['train']['epochs']} epochs x {cfg['data']['examples_per_epoch']} examples"


def first(runs: Sequence[dict], key: str):
    """``key`` of the first run that has it (a property shared by the seeds)."""
    return next((r[key] for r in runs if r.get(key) is not None), None)


def seed_table(rows: Sequence[Tuple[str, SeedValues]], seeds: Sequence[int]) -> List[str]:
    """A markdown table: one row per ``(label, values)``, one column per seed."""
    lines = ["| run | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---:|" * len(seeds)]
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(number(values.get(s)) for s in seeds) + " |")
    return lines


# ------------------------------------------------------------- comparisons

VERDICT_RULE = ("Comparisons are paired by seed (same seed, same data order). \"Larger than "
                "the spread\": every seed's difference has the same sign and their mean is "
                "larger than their standard deviation; otherwise \"within the spread\". With "
                "three seeds this is a description of the runs, not a significance test.")


def compare(a: SeedValues, b: SeedValues, name_a: str, name_b: str, what: str) -> str:
    """One sentence: the mean paired difference ``a - b`` and whether it
    stands out of the spread of the differences (:data:`VERDICT_RULE`)."""
    diff = paired(a, b)
    if not diff:
        return f"- {what}: not measured (missing runs or test scores)."
    s = stats(diff.values())
    d = s["mean"]
    lead = (f"{name_a} is ahead by {d:.2f} dB" if d >= 0 else
            f"{name_b} is ahead by {-d:.2f} dB")
    means = (f"{name_a} {mean(a[k] for k in diff):.2f} vs {name_b} "
             f"{mean(b[k] for k in diff):.2f} dB")
    unpaired = sorted((set(a) | set(b)) - set(diff))
    left_out = f"; seeds without a pair left out: {unpaired}" if unpaired else ""
    if s["n"] == 1:
        return f"- {what}: {lead} ({means}; one seed: a direction, not a result{left_out})."
    same_sign = all(v > 0 for v in diff.values()) or all(v < 0 for v in diff.values())
    verdict = ("larger than the spread" if same_sign and abs(d) > s["std"]
               else "within the spread")
    per_seed = ", ".join(f"{v:+.2f}" for v in diff.values())
    return (f"- {what}: {lead} ({means}; paired, {s['n']} seeds; std of the differences "
            f"{s['std']:.2f} dB; per seed {per_seed}{left_out}): {verdict}.")


# ----------------------------------------------------------- regression

def slope(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Least-squares slope of ``ys`` on ``xs`` (None: fewer than two
    distinct xs)."""
    if len(xs) < 2:
        return None
    mx, my = mean(xs), mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return None if sxx == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def within_slope(groups: Dict[str, Tuple[List[float], List[float]]]) -> Optional[float]:
    """The common slope of ``y`` on ``x`` within groups (each group its own
    intercept: an analysis of covariance), or None."""
    sxy = sxx = 0.0
    for xs, ys in groups.values():
        if len(xs) < 2:
            continue
        mx, my = mean(xs), mean(ys)
        sxx += sum((x - mx) ** 2 for x in xs)
        sxy += sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / sxx if sxx > 0 else None


def common_range(groups: Dict[str, Tuple[List[float], List[float]]]) -> Optional[tuple]:
    """``(lo, hi)``: the x range every group covers, or None when they do
    not overlap (or a group is empty)."""
    if not groups or any(not xs for xs, _ in groups.values()):
        return None
    lo = max(min(xs) for xs, _ in groups.values())
    hi = min(max(xs) for xs, _ in groups.values())
    return (lo, hi) if lo <= hi else None


# ------------------------------------------------------------ curves, time

def mean_curve(runs: Sequence[dict], target: str, metric: str = "valid_gain") -> List[float]:
    """Per epoch, the mean over the runs that reached it of their curve."""
    curves = [r[metric][target] for r in runs if target in (r.get(metric) or {})]
    length = max((len(c) for c in curves), default=0)
    return [mean([c[i] for c in curves if i < len(c)]) for i in range(length)]


def cumulative_minutes(runs: Sequence[dict]) -> List[float]:
    """Per epoch, the mean over the runs that reached it of the training
    time up to the end of that epoch (``epoch_seconds``), in minutes."""
    times = [r.get("epoch_seconds") or [] for r in runs]
    length = max((len(t) for t in times), default=0)
    return [mean([sum(t[:i + 1]) / 60.0 for t in times if len(t) > i]) for i in range(length)]


def time_to_reach(runs: Sequence[dict], target: str, level: Optional[float]) -> str:
    """``epoch e, m.m min``: the first epoch at which the mean validation
    gain curve of ``runs`` reaches ``level``, and the mean training minutes
    up to it; "not reached (best x.xx)" otherwise; "–" without runs."""
    curve = mean_curve(runs, target)
    if not curve or level is None:
        return "–"
    clock = cumulative_minutes(runs)
    for i, value in enumerate(curve):
        if value >= level:
            return f"epoch {i + 1}, {clock[i]:.1f} min" if i < len(clock) else f"epoch {i + 1}"
    return f"not reached (best {max(curve):.2f})"


# ---------------------------------------------------------------- figures

def link(path: str, report_dir: str) -> str:
    return os.path.relpath(path, report_dir).replace(os.sep, "/")


def figures(folder: str, report_dir: str) -> List[str]:
    """Markdown image links to an experiment's figures (named in its
    summary.json, else every PNG in the folder)."""
    try:
        with open(os.path.join(folder, records.SUMMARY_FILE)) as f:
            names = json.load(f).get("figures", [])
    except (OSError, ValueError):
        names = []
    if not names and os.path.isdir(folder):
        names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return [f"![{n}]({link(os.path.join(folder, n), report_dir)})" for n in names
            if os.path.exists(os.path.join(folder, n))]
