"""Turn the jupytext sources in `kernels/` into self-contained Kaggle notebooks, datasets, and a
local rehearsal of the whole Kaggle loop.

Kaggle runs one notebook file: it cannot import this repository. So every code cell that imports
from `lib` is replaced by the source of the library modules it needs (see workbench/inline.py).

    python build_kernels.py                      # build/<kernel>/ and build/<dataset>/ metadata
    python build_kernels.py --owner me --wheels  # also fetch onnxruntime wheels (cached)
    python build_kernels.py --models-from work/rehearsal/working/train   # fill the models dataset
    python build_kernels.py --rehearse           # build, then run train + infer locally, score
    python build_kernels.py --rehearse --kaggle-image current   # ... in Kaggle's image's versions
    python build_kernels.py push wheels          # the Kaggle round trip (workbench/roundtrip.py):
    python build_kernels.py push train           #   push, status, fetch, push models,
    python build_kernels.py status train         #   push infer, submit --wait

This file is the command line and the user's tables: per-kernel and per-dataset settings live in
KERNELS and DATASETS below; the machinery is in the `workbench` package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
if str(REPO) not in sys.path:  # `lib` and `workbench` must import when run from elsewhere
    sys.path.insert(0, str(REPO))

from lib.competitions import DEFAULT_COMPETITION, PROFILES, profile  # noqa: E402
from lib.paths import models_dataset_slug, wheels_dataset_slug  # noqa: E402
from workbench.build import build  # noqa: E402
from workbench.errors import BuildError  # noqa: E402
from workbench.metadata import (  # noqa: E402
    DEFAULT_IMAGE_PINNING,
    IMAGE_PINNING_TYPES,
    MACHINE_SHAPE_T4X2,
    MODEL_PATTERNS,
    DatasetSpec,
    KernelOptions,
    KernelSpec,
)
from workbench.owner import OWNER_PLACEHOLDER  # noqa: E402
from workbench.roundtrip_cli import ROUNDTRIP_COMMANDS, roundtrip_main  # noqa: E402
from workbench.wheels import KAGGLE_PYTHONS, default_wheel_cache  # noqa: E402

# Pre-training sources that are datasets, not competitions (lib.competitions' pretrain_sources
# names them; every other name there is a competition slug).
PRETRAIN_DATASETS = {
    "xeno-canto-extended": (
        "rohanrao/xeno-canto-bird-recordings-extended-a-m",
        "rohanrao/xeno-canto-bird-recordings-extended-n-z",
    ),
}


def kernel_table(competition: str = DEFAULT_COMPETITION) -> dict[str, KernelSpec]:
    """The one table of per-kernel settings, for a competition's profile (lib/competitions.py).

    A code-competition submission must run offline. The training notebook pre-trains on the
    profile's earlier competitions and Xeno-canto extended (optional in the notebook; attaching
    past competitions needs their rules accepted on Kaggle), attached oldest first.
    """
    year = profile(competition)
    oldest_first = tuple(reversed(year.pretrain_sources))
    return {
        "train": KernelSpec(
            f"{year.slug}-sed-train",
            f"{year.title} SED Train",
            enable_gpu=True,
            enable_internet=True,
            competitions=(year.slug,),
            machine_shape=MACHINE_SHAPE_T4X2,  # two T4s: the two-process training
            pretrain_competitions=tuple(s for s in oldest_first if s not in PRETRAIN_DATASETS),
            pretrain_datasets=tuple(d for s in oldest_first for d in PRETRAIN_DATASETS.get(s, ())),
            resumable=True,  # --resume attaches its own earlier output
        ),
        "infer": KernelSpec(
            f"{year.slug}-sed-infer",
            f"{year.title} SED Infer",
            enable_gpu=False,
            enable_internet=False,
            datasets=("models", "wheels"),
            competitions=(year.slug,),
        ),
    }


def dataset_table(competition: str = DEFAULT_COMPETITION) -> dict[str, DatasetSpec]:
    """The owner's datasets of a competition's build (slugs shared with the notebooks)."""
    title = profile(competition).title
    return {
        "models": DatasetSpec(models_dataset_slug(competition), f"{title} SED Models"),
        "wheels": DatasetSpec(wheels_dataset_slug(competition), f"{title} onnxruntime Wheels"),
    }


KERNELS = kernel_table()  # the default competition's tables
DATASETS = dataset_table()


def _json_object(text: str) -> dict:
    """argparse type: a JSON object (the rehearsal's overrides)."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"need a JSON object {{...}}, got {text!r}")
    return value


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--competition", default=DEFAULT_COMPETITION, choices=list(PROFILES),
        metavar="SLUG",
        help="the BirdCLEF year to build for (lib/competitions.py PROFILES: "
        f"{', '.join(PROFILES)}): kernel ids, titles, datasets, sources, the notebooks' "
        "COMPETITION setting, the rehearsal's synthetic layout and metric "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--kernels-dir", default=str(REPO / "kernels"),
        help="folder of jupytext py:percent kernel sources (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--lib-dir", default=str(REPO / "lib"),
        help="library package inlined into the notebooks; its folder name is the import name "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=str(REPO / "build"),
        help="output folder: <out>/<kernel>/ and <out>/<dataset>/ (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--owner",
        help="Kaggle username for ids and sources; default $KAGGLE_USERNAME, then the username in "
        "kaggle.json ($KAGGLE_CONFIG_DIR, ~/.kaggle, ~/.config/kaggle); else a placeholder "
        f"{OWNER_PLACEHOLDER!r} is written and the fields needing it are listed",
    )
    parser.add_argument(
        "--models-from", metavar="DIR",
        help="a training run's output folder: its " + ", ".join(MODEL_PATTERNS)
        + " files are copied into <out>/models/ (emptied first)",
    )  # fmt: skip
    parser.add_argument(
        "--wheels", action="store_true",
        help="fetch onnxruntime (pinned in requirements.txt) + flatbuffers wheels for Kaggle's "
        f"image (Pythons {', '.join(KAGGLE_PYTHONS)}: today's and next; manylinux x86_64) into "
        "--wheel-cache if missing (needs "
        "network once), and copy them to <out>/wheels/. Without it, cached wheels are still copied",
    )  # fmt: skip
    parser.add_argument(
        "--wheel-cache", default=str(default_wheel_cache(os.environ)),
        help="where downloaded wheels are kept between builds (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true",
        help="attach the training notebook's own earlier output (kernel_sources), so a run "
        "stopped at Kaggle's 12-hour limit continues where it stopped",
    )  # fmt: skip
    parser.add_argument(
        "--no-pretrain-sources", dest="pretrain_sources", action="store_false",
        help="leave the optional pre-training sources out of the training notebook's metadata "
        "(the earlier competitions, whose rules must be accepted on Kaggle, and Xeno-canto "
        "extended): it then fine-tunes from ImageNet weights only",
    )  # fmt: skip
    parser.add_argument(
        "--public", action="store_true",
        help="make the notebooks public (is_private false); default private",
    )  # fmt: skip
    parser.add_argument(
        "--image-pinning", choices=IMAGE_PINNING_TYPES, default=DEFAULT_IMAGE_PINNING,
        help="docker_image_pinning_type of both kernels: 'original' keeps the Kaggle image a "
        "kernel was first run with (the scored re-run of the submission uses the image it was "
        "checked on), 'latest' takes Kaggle's newest image at each run (default: %(default)s)",
    )  # fmt: skip


def _add_rehearsal_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rehearse", action="store_true",
        help="after building, run the whole Kaggle loop locally on a synthetic competition: "
        "train notebook, models dataset, offline inference notebook, submission check, score",
    )  # fmt: skip
    parser.add_argument(
        "--min-score", type=float, default=None,
        help="rehearsal: exit 1 when the submission's score (the competition's metric) on the "
        "synthetic truth is below this (default: padded cmAP 0.90 (2023), ROC-AUC 0.70 "
        "(2024-2026); with --hard padded cmAP 0.40, ROC-AUC 0.60)",
    )  # fmt: skip
    parser.add_argument(
        "--hard", action="store_true",
        help="rehearse on the hard synthetic setting (BirdCLEF's domain shift: noisy overlapping "
        "soundscapes, look-alike, rare and absent species, pre-training sources; in the "
        "--competition year's layout); --rehearse-spec then takes workbench.synthetic.hard."
        "HardSpec fields",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", default=str(REPO / "work" / "rehearsal"),
        help="rehearsal folder: input/, working/<kernel>/, solution.csv, executed/ (default: "
        "%(default)s; emptied at the start of a rehearsal)",
    )  # fmt: skip
    parser.add_argument(
        "--rehearse-config", metavar="JSON", default={}, type=_json_object,
        help="JSON object merged into the rehearsal's training config override "
        '(BIRDCLEF_CONFIG), e.g. \'{"epochs": 1}\'',
    )  # fmt: skip
    parser.add_argument(
        "--rehearse-spec", metavar="JSON", default={}, type=_json_object,
        help="JSON object of workbench.synthetic.SyntheticSpec fields for the rehearsal's "
        'synthetic competition, e.g. \'{"n_species": 4}\'',
    )  # fmt: skip
    parser.add_argument(
        "--cell-timeout", type=int, default=3600,
        help="rehearsal: seconds one notebook cell may run (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--kaggle-image", metavar="NAME", default=None,
        help="rehearsal: run both notebooks in a venv of Kaggle's image NAME as listed in "
        "kaggle_images.toml (current, next), built once from PyPI (~4 GB) and cached; default: "
        "the builder's own venv (onnxruntime hidden from the notebooks either way)",
    )  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_kernels.py",
        description=__doc__.split("\n\n")[0],
        epilog="Then the round trip (see `build_kernels.py push -h`): push wheels, push train, "
        "status train, fetch, push models, push infer, status infer, submit --wait.",
    )
    _add_build_options(parser)
    _add_rehearsal_options(parser)
    return parser.parse_args(argv)


def build_from_args(args: argparse.Namespace) -> dict[str, Path]:
    """The build the command line asks for, with the tables above."""
    return build(
        kernels=kernel_table(args.competition), datasets=dataset_table(args.competition),
        competition=args.competition, kernels_dir=Path(args.kernels_dir),
        lib_dir=Path(args.lib_dir), out=Path(args.out), wheel_cache=Path(args.wheel_cache),
        owner=args.owner, models_from=args.models_from and Path(args.models_from),
        fetch_wheels=args.wheels,
        options=KernelOptions(
            resume=args.resume, pretrain_sources=args.pretrain_sources, public=args.public,
            image_pinning=args.image_pinning,
        ),
    )  # fmt: skip


def rehearse_from_args(args: argparse.Namespace, folders: dict[str, Path]) -> int:
    """Run the rehearsal the command line asks for; exit code 1 below --min-score."""
    from lib.run_dir import metric_label
    from workbench.rehearsal import RehearsalOptions, default_min_score, rehearse

    options = RehearsalOptions(
        workdir=Path(args.workdir), wheel_cache=Path(args.wheel_cache),
        config_overrides=args.rehearse_config, spec_overrides=args.rehearse_spec,
        cell_timeout=args.cell_timeout, hard=args.hard, kaggle_image=args.kaggle_image,
        competition=args.competition,
    )  # fmt: skip
    min_score = args.min_score
    if min_score is None:
        min_score = default_min_score(args.competition, args.hard)
    metric = metric_label(profile(args.competition).metric)
    result = rehearse(folders, options)
    if result.score < min_score:
        print(
            f"rehearsal FAILED: {metric} {result.score:.4f} < --min-score {min_score}",
            file=sys.stderr,
        )
        return 1
    print(f"rehearsal passed: {metric} {result.score:.4f} >= {min_score}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ROUNDTRIP_COMMANDS:
        return roundtrip_main(argv, default_out=REPO / "build")
    args = parse_args(argv)
    if args.kaggle_image and not args.rehearse:
        print(
            "error: --kaggle-image chooses the rehearsal's environment; add --rehearse",
            file=sys.stderr,
        )
        return 1
    start = time.perf_counter()
    try:
        folders = build_from_args(args)
        print(f"build: {time.perf_counter() - start:.2f} s -> {args.out}")
        if args.rehearse:
            code = rehearse_from_args(args, folders)
            print(f"rehearsal: {(time.perf_counter() - start) / 60:.1f} min in all")
            return code
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
