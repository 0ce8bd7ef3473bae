"""Builds experiments/REPORT.md from the result JSON files of the three
experiments: band split (``band_split.py``), multi-task learning
(``multitask.py``) and a new instrument (``new_instrument.py``).

Examples::

    python -m experiments.report
    python -m experiments.report --results experiments/results --out experiments/REPORT.md

Every number in the report is computed here from the per-run JSON files
(``experiments/results/<experiment>/<setting>-seed<k>.json``) written by the
drivers; ``summary.json`` is only read for the figures' names. The headline
metric is the held-out gain over the best-scaled mixture (``test_gain``),
with the best-scaled mixture and the oracle IRM beside it; comparisons are
paired by seed. Runs a driver plans but that have no result yet are listed
as not finished; their cells are "–". Hand-written notes and discussion, if
``<results>/notes.md`` and ``<results>/discussion.md`` exist, are included
verbatim (notes after the title, discussion at the end). The sections are
:mod:`experiments.report_sections`, the statistics and wording
:mod:`experiments.report_format`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

from experiments import (band_split, common, holdout_data, multitask,
                         new_instrument, records, report_sections)
from experiments.common import ExperimentError
from experiments.report_format import (VERDICT_RULE, budget, figures, link,
                                       minutes)
from bsrnn_tf.fileio import atomic_write_text

EXPERIMENTS = ("band_split", "multitask", "new_instrument")
DRIVERS = {"band_split": band_split, "multitask": multitask, "new_instrument": new_instrument}
SECTIONS = {"band_split": report_sections.band_split_section,
            "multitask": report_sections.multitask_section,
            "new_instrument": report_sections.new_instrument_section}


# ------------------------------------------------------------ wall time

def own_seconds(results: List[dict]) -> float:
    return float(sum(r.get("wall_seconds", 0.0) for r in results if not r.get("reused_from")))


def elapsed(results: List[dict]) -> Optional[float]:
    """Seconds in which at least one of the runs that ran here (not reused
    ones) was running: runs in parallel count once, the hours and days
    between them not at all."""
    return union_elapsed(run_spans(results))


def union_elapsed(spans: Sequence[Optional[tuple]]) -> Optional[float]:
    """Seconds covered by ``(start, end)`` spans together: overlapping
    spans count once, gaps between them not at all."""
    total, end = 0.0, None
    for start, stop in sorted(s for s in spans if s is not None):
        if end is not None and start < end:
            total += max(0.0, stop - end)
        else:
            total += stop - start
        end = stop if end is None else max(end, stop)
    return total if end is not None else None


def run_spans(results: List[dict]) -> List[tuple]:
    """``(start, end)`` of each run that ran here (from ``finished_at`` and
    its wall time)."""
    spans = []
    for r in results:
        if r.get("reused_from") or not r.get("finished_at"):
            continue
        try:
            end = time.mktime(time.strptime(r["finished_at"], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        spans.append((end - r.get("wall_seconds", 0.0), end))
    return spans


# ---------------------------------------------------------------- setup

def _machine_name(m: dict) -> str:
    model = f" ({m['cpu_model']})" if m.get("cpu_model") else ""
    return f"{m['cpus']} CPU cores{model}, {m['platform']}"


def setup_section(all_results: Dict[str, List[dict]]) -> List[str]:
    flat = [r for rs in all_results.values() for r in rs]
    if not flat:
        return ["No results found: run `python -m experiments.run_all` first.", ""]
    scales = sorted({r["scale"] for r in flat})
    datasets: Dict[str, int] = {}
    for r in flat:
        datasets[r.get("dataset") or "?"] = datasets.get(r.get("dataset") or "?", 0) + 1
    machines = sorted({_machine_name(r["machine"]) for r in flat if r.get("machine")})
    trained = [r for r in flat if r.get("stage") != "transfer" and r.get("config")]
    cfg = (trained or flat)[0]["config"]
    model, data, train = cfg["model"], cfg["data"], cfg["train"]
    seeds = sorted({r["seed"] for r in flat})
    groups = {name: records.by_setting(rs) for name, rs in all_results.items()}
    bs, mt = groups.get("band_split", {}), groups.get("multitask", {})
    quarter = report_sections.any_arm({t: mt.get(multitask.single_setting(t), [])
                                       for t in multitask.TARGETS})
    lines = [
        "## Setup",
        "",
        f"- Scale: **{', '.join(scales)}**; seeds {', '.join(map(str, seeds))} (every arm of a "
        "comparison has the same seeds and, per seed, the same data order).",
        _data_line(datasets),
        f"- Machine: {'; '.join(machines) or '?'}; no GPU. Up to two runs shared the cores, "
        "so times are those of a shared machine. Sittings ran on different machines: the "
        "same run took up to about 1.7x longer in one sitting than in another, so compare "
        "times by their paired ratios (the arms of a seed ran in the same or the next sitting).",
        f"- Model: preset `{cfg.get('preset')}` (STFT n_fft {model['stft']['n_fft']}, hop "
        f"{model['stft']['hop_length']}, mlp_ratio {model['mlp_ratio']}); N = "
        f"{model['feature_dim']}, L = {model['num_layers']} unless a table says otherwise.",
        f"- Training: batch {train['batch_size']}, chunks of {data['segment_seconds']} s, "
        f"Adam lr {train['learning_rate']} (x{train['lr_decay']} every "
        f"{train['lr_decay_epochs']} epochs), clip {train['clip_norm']}, early stopping "
        f"{'off' if not train['patience'] else train['patience']}; augmentation "
        f"{'on' if data['remix'] else 'off'}; source-activity detection "
        f"{'on' if data['source_activity'] else 'off'}.",
        f"- Budgets (one optimizer step per batch): every model "
        f"from scratch in experiment 1 and every backbone {budget(bs.get('drums_v7', []))}; "
        f"every head, and every model compared with a head, "
        f"{budget(bs.get('bass_from_drums_v7', []))}; experiment 2's single-target models "
        f"at a quarter of the budget {budget(quarter)}.",
        "- Metric: the **gain over the best-scaled mixture** on the held-out test songs "
        "(`evaluate.py`): a model's uSDR minus that of the mixture times its least-squares "
        "gain (0 dB: no separation), averaged over the test songs (for a new instrument, "
        "the test songs that have it). Beside it, the uSDR of the best-scaled mixture (the "
        "floor; a model's test uSDR is the floor plus its gain) and of the oracle ideal "
        "ratio mask (the ceiling of a mask model) on the same songs. The validation gain "
        f"({data['valid_examples']} fixed chunks of the validation songs, the same for every "
        "run) comes second.",
        f"- {VERDICT_RULE}",
        "",
        "Measured wall time: \"wall time\" is the sum of the runs' wall times (each "
        "including TensorFlow start-up and the test evaluation; runs reused from another "
        "experiment are counted once, where they ran); \"elapsed\" is the wall-clock time "
        "in which at least one of the runs was running (less than the sum where runs went "
        "in parallel; the time between runs and between sittings is not counted).",
        "",
        "| experiment | runs | reused | wall time | elapsed |",
        "|---|---:|---:|---:|---:|",
    ]
    total = 0.0
    for name in EXPERIMENTS:
        rs = all_results.get(name, [])
        secs = own_seconds(rs)
        total += secs
        span = elapsed(rs)
        lines.append(f"| {name} | {len(rs)} | {sum(1 for r in rs if r.get('reused_from'))} "
                     f"| {minutes(secs)} | {'–' if span is None else minutes(span)} |")
    span = elapsed(flat)
    lines += [f"| **total** | {sum(len(v) for v in all_results.values())} | | "
              f"**{minutes(total)}** | {'–' if span is None else minutes(span)} |", ""]
    if not any(r.get("test_gain") for r in flat):
        lines += ["No run has test scores (`evaluate.py`; default at `--scale cpu`): the "
                  "tables' test columns are empty.", ""]
    return lines


def _data_line(datasets: Dict[str, int]) -> str:
    """The data bullet: the experiments' songs (holdout_data.py) when the
    runs used them, and every dataset with its number of runs."""
    used = "; ".join(f"{d} ({n} runs)" for d, n in sorted(datasets.items()))
    if not any(holdout_data.HOLDOUT in d or holdout_data.FULL in d for d in datasets):
        return f"- Data: {used}."
    return ("- Data: the songs of `experiments/holdout_data.py`, rendered by the built-in "
            "sampled generator with per-instrument stems (generated songs in the MUSDB18-HQ "
            "layout, not MUSDB18: the numbers are not comparable to published ones). Every "
            "backbone (all of experiments 1 and 2, and experiment 3's MTL backbones) trains "
            "on the songs with piano and guitar taken out of `other` and of the mixture; "
            "experiment 3's new-instrument models train on the same songs with them, the "
            f"instrument as the target. Datasets of the runs: {used}.")


def missing_runs(name: str, results: List[dict], scale: str) -> List[str]:
    """The runs the driver plans at ``scale`` (with the seeds of its base and
    of the results) that have no result file."""
    if scale not in common.BASE:
        return []
    base = dict(common.BASE[scale])
    base["seeds"] = sorted(set(base["seeds"]) | {int(r["seed"]) for r in results})
    try:
        planned = [run.key for run in DRIVERS[name].plan(base)]
    except ExperimentError:
        return []
    done = {common.result_key(r) for r in results}
    return [key for key in dict.fromkeys(planned) if key not in done]


def missing_line(name: str, results: List[dict], scale: str) -> List[str]:
    missing = missing_runs(name, results, scale)
    if not missing:
        return []
    planned = len(missing) + len(results)
    return [f"Runs not yet finished ({len(missing)} of {planned} planned at `--scale {scale}`; "
            f"their cells are \"–\"): {', '.join(missing)}.", ""]


# --------------------------------------------------------------------- main

def build_report(results_dir: str, out: str) -> str:
    report_dir = os.path.dirname(os.path.abspath(out))
    all_results = {name: records.load_results(os.path.join(results_dir, name))
                   for name in EXPERIMENTS}
    flat = [r for rs in all_results.values() for r in rs]
    scales = [r.get("scale") for r in flat]
    scale = max(set(scales), key=scales.count) if scales else "cpu"
    lines = ["# Refined BSRNN experiments: band split, multi-task learning, a new instrument",
             "",
             f"Generated by `python -m experiments.report` on {time.strftime('%Y-%m-%d %H:%M')} "
             f"from {len(flat)} run result files under `{link(results_dir, report_dir)}/`. "
             "Reproduce with `python -m experiments.run_all` (see experiments/README.md).", ""]
    notes = os.path.join(results_dir, "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read().strip(), ""]
    lines += setup_section(all_results)
    for name in EXPERIMENTS:
        results = all_results[name]
        if results:
            lines += SECTIONS[name](results)
            lines += missing_line(name, results, results[0].get("scale") or scale)
            lines += [*figures(os.path.join(results_dir, name), report_dir), ""]
        else:
            lines += [f"## {name}", "", "Not run (no result files).", ""]
    discussion = os.path.join(results_dir, "discussion.md")
    if os.path.exists(discussion):
        with open(discussion) as f:
            lines += ["## Discussion", "", f.read().strip(), ""]
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write_text(out, text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--results", default=common.RESULTS)
    p.add_argument("--out", default=os.path.join(common.ROOT, "experiments", "REPORT.md"))
    args = p.parse_args(argv)
    build_report(os.path.abspath(args.results), os.path.abspath(args.out))
    print(f"wrote {common.rel(os.path.abspath(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
