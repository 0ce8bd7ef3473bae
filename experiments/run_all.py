"""Runs the three experiments at one scale, then builds experiments/REPORT.md.

Examples::

    python -m experiments.run_all                          # --scale cpu: about 35 h on 2 cores
    nohup python -m experiments.run_all > experiments/results/run_all.log 2>&1 &
    python -m experiments.run_all --scale paper --musdb-root ~/data/musdb18hq
    python -m experiments.run_all --scale paper --dry-run  # the commands only

The order matters: band_split, multitask, new_instrument. multitask reuses
band_split's ``drums_universal41`` runs as its ``single_drums_full`` and
new_instrument reuses multitask's ``mtl4`` runs as its universal41
backbones (runs with exactly the same fit.py flags are not trained again).
At ``--scale cpu`` the whole set took 35 hours of run time on 2 CPU cores
(93 runs; this script runs one run at a time; the measured set ran two at a
time with ``--threads 1``, about 24 hours of wall clock). Every run is
resumable (a finished run is skipped, an interrupted one continues from its
last checkpoint), so the set can be run in several sittings: run this again
to continue where it stopped. Any other flag (``--seeds``, ``--musdb-root``,
``--evaluate``, ``--dry-run`` ...) is passed to every experiment. The last
line says how long it took (a pass over finished runs: about 30 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXPERIMENTS = ("band_split", "multitask", "new_instrument")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--scale", default="cpu")
    p.add_argument("--results", default=os.path.join(HERE, "results"),
                   help="parent of the experiments' folders (default experiments/results)")
    p.add_argument("--report", default=os.path.join(HERE, "REPORT.md"))
    p.add_argument("--skip", nargs="+", default=[], choices=EXPERIMENTS)
    args, rest = p.parse_known_args(argv)
    status = 0
    started = time.time()
    for name in EXPERIMENTS:
        if name in args.skip:
            continue
        cmd = [sys.executable, "-m", f"experiments.{name}", "--scale", args.scale,
               "--out", os.path.join(args.results, name), *rest]
        print(f"=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.time()
        code = subprocess.call(cmd)
        print(f"=== {name}: exit {code} after {time.time() - t0:.0f} s", flush=True)
        status = status or code
    if "--dry-run" not in rest:
        code = subprocess.call([sys.executable, "-m", "experiments.report",
                                "--results", args.results, "--out", args.report])
        status = status or code
    print(f"=== all done in {time.time() - started:.0f} s (exit {status})", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
