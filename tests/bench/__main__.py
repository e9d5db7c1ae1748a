"""`python -m tests.bench [updates|campaign|growth|startup|systems|all] [options]`: the arguments,
and each chosen benchmark run and printed in turn (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.bench.campaign import bench_campaigns, print_campaigns
from tests.bench.growth import bench_growth, print_growth
from tests.bench.startup import bench_startup, print_startup
from tests.bench.systems import bench_systems, print_systems
from tests.bench.updates import bench_updates, print_updates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument(
        "what",
        nargs="?",
        default="updates",
        choices=["updates", "campaign", "growth", "startup", "systems", "all"],
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--growth-users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--system-people", type=int, default=100_000)
    parser.add_argument("--system-small", type=int, default=10_000)
    parser.add_argument("--system-requests", type=int, default=50)
    parser.add_argument("--system-engines", default="sqlite,sqlite,sqlite")
    parser.add_argument(
        "--profile", action="store_true", help="profile the run (cProfile), print the top 40"
    )
    args = parser.parse_args(argv)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run(args)
        finally:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    if args.what in ("updates", "all"):
        print_updates(asyncio.run(bench_updates(args.users, args.rounds, args.concurrency)))
    if args.what in ("campaign", "all"):
        print_campaigns(asyncio.run(bench_campaigns(args.recipients)))
    if args.what in ("growth", "all"):
        print_growth(asyncio.run(bench_growth(args.growth_users, args.events)))
    if args.what in ("startup", "all"):
        print_startup(asyncio.run(bench_startup(args.rounds)))
    if args.what in ("systems", "all"):
        engines = args.system_engines.split(",")
        print_systems(
            asyncio.run(
                bench_systems(args.system_people, args.system_small, args.system_requests, engines)
            )
        )


if __name__ == "__main__":
    main(sys.argv[1:])
