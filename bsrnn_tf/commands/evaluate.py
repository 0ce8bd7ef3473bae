"""Evaluate a separator on MUSDB18 / MUSDB18-HQ (or the built-in held-out
songs): uSDR and museval cSDR per target, with the references that say how
much of it is separation.

The headline figure is the **gain over the best-scaled mixture**: the
model's uSDR minus that of ``g * mixture`` with the least-squares gain ``g =
<s, m> / <m, m>`` per track and target (what any estimate that does not
separate reaches; the raw mixture alone is about 6 dB lower for four
balanced stems, so "improvement over the mixture" flatters any model that
divides by four). The ceiling beside it: the **oracle ideal ratio mask**
(per bin ``|S_target| / sum_k |S_k|`` applied to the mixture STFT with the
model's STFT settings).

Examples::

    python training/evaluate.py -m saved_models/small-mtl-v7
    python training/evaluate.py -m saved_models/small-mtl-v7 --musdb-root ~/data/musdb18hq
    python training/evaluate.py -m model.keras --tracks "Al James - Schoolboy Facination"

Every track of the subset is separated through :func:`bsrnn_tf.inference.separate.separate`
(the same path as ``bsrnn-tf separate``). Written under OUT (default
``<model dir>/evaluation``)::

    estimates/<subset>/<track>/<target>.wav   float32 estimates (museval's layout)
    scores/<subset>/<track>.json             museval's per-track JSON (BSSEval v4,
                                             1 s windows) plus a "bsrnn_tf" entry:
                                             uSDR, cSDR, and those of the mixture
    results.md, results.json                 the table below
    results.png                              bar chart: model, best-scaled mixture and
                                             oracle IRM uSDR per target

Table, per target: the gain over the best-scaled mixture (mean over tracks
of the per-track difference), the model's uSDR (mean over tracks), the
best-scaled mixture's and the oracle IRM's uSDR, the model's cSDR (median
over tracks of the median over 1 s windows) and the raw mixture's cSDR. museval evaluates the
targets of a track jointly and needs at least two: a single-target model is
scored together with its complement ``no_<target>`` (mixture minus target).
museval leaves a window out (NaN) for every source when any source of the
call is silent in it, so a target's cSDR depends on the targets evaluated
with it: all of the model's are evaluated together (a four-stem model as in
SiSEC 2018).

Resumable: a track whose JSON exists is not separated again (unless
``--overwrite``) when that JSON records the same model (SHA-256 of its
files), segment, overlap and ``--no-csdr`` choice; a score of another model,
or one that does not say which, is computed again, and each track's line
says which it was. Without ``--musdb-root`` (or ``MUSDB_PATH``) the built-in
sampled dataset's held-out test songs are used (`--dataset synth`: the
synthesized one), and the table says so. ``bsrnn-tf evaluate`` is the same
command as ``python training/evaluate.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bsrnn_tf.commands.evaluate_scores import (EVAL_FILE, aggregate,  # noqa: E402
                                               evaluate_track, markdown_table, plot_table,
                                               read_summary, silent_note, silent_pairs,
                                               silent_targets, track_json_path)
from bsrnn_tf.console import quiet_tensorflow  # noqa: E402
from bsrnn_tf.fileio import atomic_write_json, atomic_write_text  # noqa: E402

PROG = "evaluate.py"  # the name in messages (``bsrnn-tf evaluate`` passes its own)


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("-m", "--model", required=True,
                   help=".keras file, run directory, SavedModel directory or .tflite file")
    p.add_argument("--musdb-root", help="MUSDB18 / MUSDB18-HQ root (default $MUSDB_PATH or the "
                                        "built-in dataset, see --dataset)")
    p.add_argument("--dataset", choices=("sampled", "synth", "produced-test", "produced"),
                   default="sampled",
                   help="built-in dataset without --musdb-root / MUSDB_PATH (default sampled: "
                        "its test songs use a soundfont that training never sees; "
                        "produced-test: the held-out produced split, recorded kits, sung "
                        "vocals and effects, default output <model dir>/evaluation-"
                        "produced-test)")
    p.add_argument("--subset", default="test", choices=["train", "test"])
    p.add_argument("--tracks", nargs="+", metavar="NAME", help="only these tracks")
    p.add_argument("--targets", nargs="+", help="only these targets (default: all of the "
                                                "model's that are MUSDB stems)")
    p.add_argument("-o", "--out", help="output folder (default <model dir>/evaluation)")
    p.add_argument("--segment", type=float, metavar="SECONDS", help="chunk length (default: "
                                                                    "the model's)")
    p.add_argument("--overlap", type=float, default=0.25, help="chunk overlap (default 0.25)")
    p.add_argument("--overwrite", action="store_true", help="evaluate finished tracks again")
    p.add_argument("--no-csdr", action="store_true",
                   help="skip museval's cSDR (most of the time per track); uSDR, the gain over "
                        "the best-scaled mixture and the oracle IRM are still computed")
    return p


def default_out(model_path: str) -> str:
    path = os.path.abspath(model_path.rstrip("/"))
    if os.path.isdir(path):
        return os.path.join(path, "evaluation")
    return os.path.splitext(path)[0] + "-evaluation"


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Exit status; ``prog`` names the command in usage and messages."""
    from bsrnn_tf.audio import AudioError
    from bsrnn_tf.data.musdb import DataError
    from bsrnn_tf.inference.separate import SeparationError

    args = build_parser(prog).parse_args(argv)
    prog = prog or PROG
    try:
        quiet_tensorflow()  # seconds of importing: a Ctrl-C here is one line too
        return run(args)
    except (AudioError, DataError, SeparationError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the scores of finished tracks are kept (one file each, "
              "written whole): run the same command again to evaluate the rest",
              file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bsrnn_tf.data.musdb import load_tracks, resolve_root, source_set
    from bsrnn_tf.inference.backends import artifact_fingerprint
    from bsrnn_tf.inference.separate import open_model

    root, builtin = resolve_root(args.musdb_root, args.dataset)
    backend = open_model(args.model, args.segment)
    targets = choose_targets(backend.targets, args.targets,
                             dataset_stems(root, args.subset, backend.targets))
    tracks = select_tracks(load_tracks(root, subset=args.subset, split=None,
                                       targets=source_set(targets)), args.tracks)
    out = args.out or default_out(args.model) + (
        f"-{args.dataset}" if builtin and args.dataset != "sampled" else "")
    check_out(out, root, args.subset, args.overwrite)
    # What made a score: the model's files, the chunking, cSDR or not. Scores
    # of anything else are recomputed, never reused.
    made_by = {"sha256": artifact_fingerprint(args.model),
               "segment_samples": backend.segment_samples, "overlap": args.overlap,
               "csdr": not args.no_csdr}
    per_track, reused = {}, 0
    for track in tqdm(tracks, desc="tracks", unit="track"):
        # An instrument stem the track lacks is no reference (silence): skipped.
        present = [t for t in targets if track.has_stem(t)]
        if not present:
            tqdm.write(f"{track.name}: no {' or '.join(targets)} stem: skipped")
            continue
        summary = None if args.overwrite else read_summary(
            track_json_path(out, args.subset, track.name))
        stale = None if summary is None else why_stale(summary, made_by, present)
        if summary is None or stale:
            summary = evaluate_track(track, backend, present, out, args.subset, args.overlap,
                                     csdr=not args.no_csdr, made_by=made_by)
            silent = summary["silent_references"]
            tqdm.write(f"{track.name}: {f'evaluated again ({stale}); ' if stale else ''}gain "
                       f"over the best-scaled mixture " + ", ".join(
                           f"{t} {summary['gain'][t]:+.2f}" + (" (silent reference: not "
                                                               "averaged)" if t in silent else "")
                           for t in present) + " dB")
        else:
            reused += 1
            if "silent_references" not in summary:  # scored before it was recorded
                summary["silent_references"] = silent_targets(track, present)
                track.unload()
            tqdm.write(f"{track.name}: already evaluated with this model (kept; --overwrite "
                       f"to redo)")
        per_track[track.name] = summary
    print(f"model {made_by['sha256'][:12]} (sha256 of its files): {len(per_track) - reused} "
          f"track(s) evaluated now, {reused} score(s) of this same model reused")
    write_results(out, args, root, builtin, targets, per_track)
    return 0


def dataset_stems(root: str, subset: str, candidates: Sequence[str]) -> List[str]:
    """The four MUSDB stems, and those of ``candidates`` that are instrument
    stems of at least one track of ``root/subset`` (``<track>/<name>.wav``)."""
    from bsrnn_tf.data.musdb import SOURCES
    folder = os.path.join(root, subset)
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    extras = [c for c in candidates if c not in SOURCES and any(
        os.path.isfile(os.path.join(folder, n, f"{c}.wav")) for n in names)]
    return list(SOURCES) + extras


def why_stale(summary: dict, made_by: dict, targets: Sequence[str]) -> Optional[str]:
    """Why a stored track summary cannot be reused for this model, or None."""
    recorded = summary.get("made_by")
    if not isinstance(recorded, dict):
        return "its score does not record which model made it"
    if recorded.get("sha256") != made_by["sha256"]:
        return (f"its score is of another model, {str(recorded.get('sha256'))[:12]}, not "
                f"{made_by['sha256'][:12]}")
    changed = [k for k in made_by if k != "sha256" and recorded.get(k) != made_by[k]]
    if changed:
        return "its score used another " + ", ".join(
            f"{k} ({recorded.get(k)}, now {made_by[k]})" for k in changed)
    if "gain" not in summary or not set(targets) <= set(summary["gain"]):
        return "its score lacks targets"
    return None


def choose_targets(available: Sequence[str], wanted: Optional[Sequence[str]],
                   stems: Sequence[str]) -> List[str]:
    """The model's targets that have a reference in the dataset."""
    from bsrnn_tf.inference.separate import SeparationError

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
    dataset = (f"the built-in {args.dataset} dataset (not MUSDB18: figures are not comparable "
               "to published ones)" if builtin else "MUSDB18")
    title = (f"{os.path.basename(os.path.abspath(args.model.rstrip('/')))} on {dataset}, "
             f"{args.subset} subset, {len(per_track)} tracks ({root})")
    text = markdown_table(table, title, csdr=not args.no_csdr) + silent_note(per_track)
    print(text)
    atomic_write_text(os.path.join(out, "results.md"), text)
    results = {"model": os.path.abspath(args.model), "dataset": root, "builtin_dataset": builtin,
               "subset": args.subset, "segment": args.segment, "overlap": args.overlap,
               "targets": table, "silent_references": silent_pairs(per_track),
               "tracks": per_track}
    atomic_write_json(os.path.join(out, "results.json"), results)
    short = (f"{os.path.basename(os.path.abspath(args.model.rstrip('/')))}: "
             f"{f'built-in {args.dataset} dataset' if builtin else 'MUSDB18'}, {args.subset}, "
             f"{len(per_track)} tracks")
    plot_table(table, os.path.join(out, "results.png"), short)
    print(f"wrote {out}/results.md, results.json, results.png; per-track scores in "
          f"{out}/scores/{args.subset}/")
    return results


if __name__ == "__main__":
    sys.exit(main())
