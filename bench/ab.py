#!/usr/bin/python3
"""A/B of two Postern builds (or two configurations) on one bench scenario, in alternating pairs:
the way to compare a change on this VM, whose disk and host move more from run to run than most
changes do (README, Benchmarks). Each pair runs A then B, the next B then A (ABBA), each run as
make bench runs it (bench.run_scenario: a fresh directory, settled machine, smtp-source on
loopback); prints every pair's delivered msg/s and B/A, then the median, min and max of B/A.

  bench/ab.py [--pairs N] [--scenario 1-4] BINARY_A BINARY_B
  bench/ab.py --pairs 10 --scenario 3 /tmp/postern-old build/postern
  POSTERN_AB_CONF_A="key = value; ..." / POSTERN_AB_CONF_B=...: configuration keys for each side
  (an A/A of one binary with two configurations: give the same binary twice)

Uses the bench's working directory (/tmp/postern-bench, removed at the end): never run it beside
make bench."""
import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

import bench


def one_run(binary, conf, scenario):
    """Delivered msg/s of one Postern run of the scenario with this binary and configuration."""
    bench.POSTERN = Path(binary).resolve()
    os.environ["POSTERN_BENCH_CONF"] = conf
    return bench.run_scenario("postern", scenario)["delivered"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--scenario", type=int, default=3, choices=range(1, len(bench.SCENARIOS) + 1))
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args()
    scenario = bench.SCENARIOS[args.scenario - 1]
    sides = {"A": (args.a, os.environ.get("POSTERN_AB_CONF_A", "")),
             "B": (args.b, os.environ.get("POSTERN_AB_CONF_B", ""))}
    for name, (binary, _) in sides.items():
        if not os.access(binary, os.X_OK):
            sys.exit(f"ab.py: {name}: {binary} is not an executable")
    shutil.rmtree(bench.WORK, ignore_errors=True)
    bench.WORK.mkdir(parents=True)
    os.chmod(bench.WORK, 0o755)
    bench.spread_run_directories()
    ratios = []
    try:
        bench.wait_out_recent_deletes(always=False)
        bench.make_run_directories(2 * args.pairs)
        print(f"{scenario[0]}: {args.pairs} pair(s), A = {args.a}, B = {args.b}", flush=True)
        for i in range(args.pairs):
            order = "AB" if i % 2 == 0 else "BA"
            rate = {side: one_run(*sides[side], scenario) for side in order}
            ratios.append(rate["B"] / rate["A"])
            print(f"  pair {i + 1} ({order}): A {rate['A']:.0f}  B {rate['B']:.0f}  B/A {ratios[-1]:.3f}", flush=True)
    finally:
        for srv in list(bench.LIVE):
            srv.stop()
        shutil.rmtree(bench.WORK, ignore_errors=True)
    if ratios:
        print(f"B/A: median {statistics.median(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f} "
              f"({len(ratios)} pair{'s' if len(ratios) > 1 else ''})")


if __name__ == "__main__":
    main()
