"""Command line: ``python -m csood run|check|chapters``.

Examples
--------
python -m csood run theory --profile quick -p seed 3 -p device cpu
python -m csood run --all --profile paper
python -m csood check
python -m csood sweep scaling --profile paper --methods fista_oracle linear_probe
"""

from __future__ import annotations

import argparse
import sys
import time

from . import pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m csood", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute chapter(s) with papermill into book/")
    run.add_argument("names", nargs="*", help="chapter names (see `chapters`)")
    run.add_argument("--all", action="store_true", help="execute every chapter")
    run.add_argument("--profile", default="quick", choices=pipeline.PROFILES)
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="override a parameter (YAML value), like papermill -p")
    run.add_argument("--log-output", action="store_true", help="stream cell output while executing")

    sweep = sub.add_parser("sweep", help="compute a sweep chapter's cells into its result store "
                                         "(no notebook; resumable)")
    sweep.add_argument("name", help="phase_transition or scaling")
    sweep.add_argument("--profile", default="paper", choices=pipeline.PROFILES)
    sweep.add_argument("--methods", nargs="+", help="only these of the profile's methods")
    sweep.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"), help="override a parameter (YAML value)")

    sub.add_parser("check", help="check book/*.ipynb against notebooks/*.md")
    sub.add_parser("chapters", help="list chapter names")

    args = parser.parse_args(argv)
    if args.command == "chapters":
        print("\n".join(pipeline.chapter_names()))
        return 0
    if args.command == "check":
        problems = pipeline.check_sync()
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{len(pipeline.chapter_names()) - len(problems)} chapter(s) in sync, {len(problems)} problem(s).")
        return 1 if problems else 0

    if args.command == "sweep":
        return _sweep(args)
    names = pipeline.chapter_names() if args.all else args.names
    if not names:
        parser.error("name a chapter or pass --all")
    overrides = pipeline.parse_overrides(args.parameter)
    for name in names:
        t0 = time.perf_counter()
        out = pipeline.execute_chapter(name, args.profile, overrides, log_output=args.log_output)
        print(f"{name}: executed with profile {args.profile!r} in {time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def _sweep(args) -> int:
    from . import params, sweeps

    values = {**pipeline.load_profile(args.name, args.profile), **pipeline.parse_overrides(args.parameter)}
    Q = params.validate(args.name, **values)
    _, cells = sweeps.chapter_cells(args.name, Q, args.methods)
    t0 = time.perf_counter()
    records, _ = sweeps.run_or_load(cells, Q["results_dir"], missing="compute", device=Q["device"], progress=True)
    print(f"{args.name} ({args.profile}): {len(records)} cells in {sweeps.results_path(Q['results_dir'])}, "
          f"{time.perf_counter() - t0:.1f} s this run, {sweeps.total_seconds(records) / 3600:.2f} h of compute stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
