"""Runs the four experiments at one scale, then builds experiments/REPORT.md.

Examples::

    python experiments/run_all.py                          # cpu-small (~1 h, 2 CPU cores)
    nohup python experiments/run_all.py > experiments/results/run_all.log 2>&1 &
    python experiments/run_all.py --scale paper --musdb-root ~/data/musdb18hq
    python experiments/run_all.py --scale paper --dry-run  # the commands only

The order matters a little: multitask and model_size reuse band_split's
drums runs that have exactly the same fit.py flags. Every experiment is
resumable, so running this again continues where it stopped. Any other flag
(``--seeds``, ``--musdb-root``, ``--evaluate``, ``--dry-run`` ...) is passed
to every experiment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXPERIMENTS = ("band_split", "multitask", "model_size", "normalisation")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--scale", default="cpu-small")
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
        cmd = [sys.executable, os.path.join(HERE, f"{name}.py"), "--scale", args.scale,
               "--out", os.path.join(args.results, name), *rest]
        print(f"=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.time()
        code = subprocess.call(cmd)
        print(f"=== {name}: exit {code} after {time.time() - t0:.0f} s", flush=True)
        status = status or code
    if "--dry-run" not in rest:
        code = subprocess.call([sys.executable, os.path.join(HERE, "report.py"),
                                "--results", args.results, "--out", args.report])
        status = status or code
    print(f"=== all done in {time.time() - started:.0f} s (exit {status})", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
