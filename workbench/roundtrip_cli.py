"""The command line of the Kaggle round trip: `build_kernels.py push|status|fetch|submit`.

Parsing only; the work is in `workbench.roundtrip`. `build_kernels.py` hands its arguments here
when the first one names a subcommand, so a plain `build_kernels.py` still just builds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.roundtrip import Waits, run_command

ROUNDTRIP_COMMANDS = {
    "push": "push build/NAME to Kaggle: a dataset (wheels, models) is created or gets a new "
    "version; a notebook (train, infer) waits for your datasets it reads, checks its other "
    "inputs, then is pushed",
    "status": "wait for notebook NAME's run: exit 0 complete, 1 error (log tail shown), 2 "
    "still running at --timeout",
    "fetch": "download the training notebook's output into build/models/ (refuses an output "
    "missing a fold or classes.json)",
    "submit": "submit the inference notebook's latest complete version (or --version N) to the "
    "competition; --wait polls until scored",
}


def parse_roundtrip_args(argv: list[str], default_out: Path) -> argparse.Namespace:
    """`push NAME`, `status NAME`, `fetch`, `submit`: the Kaggle round trip."""
    parser = argparse.ArgumentParser(
        prog="build_kernels.py",
        description="The Kaggle round trip through the kaggle CLI pinned in requirements.txt. "
        "Exit code 0 done, 1 failed (the message names the cause and the fix), 2 still waiting "
        "at the timeout.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command, text in ROUNDTRIP_COMMANDS.items():
        sub = commands.add_parser(command, help=text, description=text)
        if command in ("push", "status"):
            sub.add_argument("name", help="a folder of --out: wheels, models, train, infer")
        sub.add_argument(
            "--out", default=str(default_out), help="the build folder (default: %(default)s)"
        )
        sub.add_argument(
            "--owner", help="Kaggle user name; default $KAGGLE_USERNAME, kaggle.json, or Kaggle's "
            "answer for your access token",
        )  # fmt: skip
        sub.add_argument(
            "--poll", type=float, default=Waits.poll, metavar="SECONDS",
            help="seconds between status polls (default: %(default)s)",
        )  # fmt: skip
        sub.add_argument(
            "--timeout", type=float, metavar="MINUTES",
            help="minutes to wait: push for your datasets to be ready (default "
            f"{Waits.datasets / 60:.0f}), status for the run (default {Waits.kernel / 60:.0f}: "
            f"a 12-hour session plus the queue), submit --wait for the score (default "
            f"{Waits.submission / 60:.0f})",
        )  # fmt: skip
        if command in ("push", "submit"):
            sub.add_argument("-m", "--message", help="version notes / submission description")
        if command in ("status", "submit"):
            sub.add_argument("--version", type=int, help="a notebook version (default: latest)")
        if command == "submit":
            sub.add_argument("--wait", action="store_true", help="poll until the score is in")
    return parser.parse_args(argv)


def roundtrip_from_args(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; its exit code."""
    defaults = Waits()
    minutes = args.timeout * 60 if args.timeout is not None else None
    waits = Waits(
        poll=args.poll,
        datasets=minutes if minutes is not None and args.command == "push" else defaults.datasets,
        kernel=minutes if minutes is not None and args.command == "status" else defaults.kernel,
        submission=minutes if minutes is not None else defaults.submission,
    )
    return run_command(
        args.command, out=Path(args.out), name=getattr(args, "name", None), owner=args.owner,
        waits=waits, version=getattr(args, "version", None),
        message=getattr(args, "message", None), wait=getattr(args, "wait", False),
    )  # fmt: skip


def roundtrip_main(argv: list[str], default_out: Path) -> int:
    """`argv` starts with a subcommand; `default_out` is the build folder."""
    return roundtrip_from_args(parse_roundtrip_args(argv, default_out))
