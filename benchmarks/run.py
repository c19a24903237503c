"""Runs every benchmark and writes benchmarks/RESULTS.md.

    python benchmarks/run.py            # the full run (tens of minutes on 2 cores)
    python benchmarks/run.py --quick    # a smoke run into a temporary folder (the tests run it)

Each benchmark is a script `bench_<name>.py` taking `--quick` and `--output PATH`; it
times its contenders side by side in one process (interleaved, repeated, median and
spread) and writes one markdown section. This runner runs them one after the other
and joins their sections.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
BENCHMARKS = ["chapter", "speed", "schedules", "normalization", "transfer", "fine_tune",
              "mc_dropout", "lr_finder", "data", "whitening"]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the keras-recipes benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smoke run, results not kept")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--join-only", action="store_true",
                        help="do not run anything; join the existing sections into RESULTS.md")
    parser.add_argument("--output-dir", type=pathlib.Path,
                        help="where sections and RESULTS.md go (default: benchmarks/ for a "
                        "full run, a temporary folder for --quick)")
    args = parser.parse_args(argv)
    output = args.output_dir or (pathlib.Path(tempfile.mkdtemp(prefix="kr-bench-"))
                                 if args.quick else HERE)
    sections = output / "results"
    names = [] if args.join_only else args.only or BENCHMARKS
    failed = []
    for name in names:
        command = [sys.executable, str(HERE / f"bench_{name}.py"), "--output",
                   str(sections / f"{name}.md")] + (["--quick"] if args.quick else [])
        print(f"=== {name}: {' '.join(command)}", flush=True)
        if subprocess.run(command).returncode != 0:
            failed.append(name)
    text = [
        "# Benchmark results", "",
        f"Written by `python benchmarks/run.py{' --quick' if args.quick else ''}` on "
        f"{datetime.date.today().isoformat()}. Each section names its machine, versions and "
        "command; timings are ratios of contenders measured side by side in one run.", "",
    ]
    for name in BENCHMARKS:
        path = sections / f"{name}.md"
        if path.is_file():
            text += [path.read_text().rstrip(), ""]
    (output / "RESULTS.md").write_text("\n".join(text))
    print(f"Wrote {output / 'RESULTS.md'}")
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
