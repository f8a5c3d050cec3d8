"""Augmented 5-second clips per second from the training DataLoader: decoded-audio cache vs
decoding every file every time, 0 and 2 workers, pitch shift on and off.

Run: python benchmarks/bench_loader.py [--root DIR] [--clips 1500] [--seconds 20 60]
It writes a synthetic competition (recordings of --seconds, like Xeno-canto's tens of seconds)
unless --root already holds one, then prints a table. Target: >= 150 clips/s with the cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.audio_cache import AudioCache  # noqa: E402
from lib.augment import WaveAugment  # noqa: E402
from lib.config import Config  # noqa: E402
from lib.dataset import ClipDataset, make_loader, set_epoch  # noqa: E402
from lib.sources import class_list, read_birdclef2023  # noqa: E402
from workbench.synthetic import SyntheticSpec, make_competition  # noqa: E402


def competition(root: Path, seconds: tuple[float, float]) -> Path:
    comp = root / "birdclef-2023"
    if (comp / "train_metadata.csv").is_file():
        return comp
    spec = SyntheticSpec(
        n_species=6, recording_seconds=seconds, n_soundscapes=2, with_pretrain_sources=False
    )
    started = time.perf_counter()
    comp = make_competition(root, spec)
    print(f"synthetic competition written in {time.perf_counter() - started:.0f} s: {comp}")
    return comp


def clips_per_second(loader, clips: int) -> tuple[float, float, float]:
    """(clips/s after the first batch, seconds to the first batch with worker start-up,
    CPU ms per clip of this process: the load-independent cost when num_workers=0)."""
    started = time.perf_counter()
    set_epoch(loader, 0)
    batches = iter(loader)
    next(batches)
    first, cpu = time.perf_counter(), time.process_time()
    seen = 0
    for waves, _ in batches:
        seen += len(waves)
        if seen >= clips:
            break
    cpu_ms = 1000 * (time.process_time() - cpu) / seen
    return seen / (time.perf_counter() - first), first - started, cpu_ms


def run(
    comp: Path, cache_dir: Path, clips: int, workers_list: list[int], repeats: int
) -> tuple[list[tuple], float, pd.DataFrame]:
    """Time every setting `repeats` times (median: the machine is shared); decoding every time
    gets a fifth of the clips (it is ~10x slower)."""
    table = read_birdclef2023(comp)
    classes = class_list(table)
    # Repeat the recordings so one epoch holds every timed clip (no epoch restarts timed);
    # each repeat is its own item, so it gets its own crop and augmentations.
    table = pd.concat([table] * (clips // len(table) + 2), ignore_index=True)
    noises = sorted((comp / "test_soundscapes").glob("*.ogg"))
    cache = AudioCache(cache_dir)
    started = time.perf_counter()
    cache.warm(table["path"], num_workers=2)
    warm_s = time.perf_counter() - started
    rows = []
    for pitch in (True, False):
        for use_cache in (True, False):
            for workers in workers_list:
                config = Config().replace(num_workers=workers, batch_size=32)
                if not pitch:
                    config = config.replace(pitch_shift_p=0.0)
                augment = WaveAugment(config, noise_files=noises)
                data = ClipDataset(
                    table, classes, config, cache if use_cache else None, augment=augment
                )
                loader = make_loader(data, config, shuffle=True, drop_last=True)
                budget = clips if use_cache else max(clips // 5, 160)
                runs = [clips_per_second(loader, budget) for _ in range(repeats)]
                del loader
                rate = float(np.median([r[0] for r in runs]))
                cpu_ms = float(np.median([r[2] for r in runs])) if workers == 0 else None
                rows.append((use_cache, workers, pitch, rate, runs[0][1], cpu_ms))
                spread = " ".join(f"{r[0]:.0f}" for r in runs)
                print(f"  cache={use_cache!s:5} workers={workers} pitch={pitch!s:5} {spread}")
    return rows, warm_s, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="synthetic data folder")
    parser.add_argument("--clips", type=int, default=1500, help="clips timed per setting")
    parser.add_argument("--seconds", type=float, nargs=2, default=(20.0, 60.0))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeats", type=int, default=3, help="timings per setting (median)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "data"
        comp = competition(root, tuple(args.seconds))
        rows, warm_s, table = run(comp, Path(tmp) / "cache", args.clips, args.workers, args.repeats)
    low, high = args.seconds
    print(
        f"\n{table['path'].nunique()} recordings of {low:.0f}-{high:.0f} s; "
        f"cache warmed in {warm_s:.1f} s (2 threads); batch 32; recipe augmentations "
        "(pitch shift p=0.2, background p=0.3, gaussian 0.3, uniform 0.2)"
    )
    print(f"median of {args.repeats} timings per setting; load average {os.getloadavg()}")
    print("| audio | workers | pitch shift | clips/s | first batch (s) | CPU ms/clip |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for use_cache, workers, pitch, rate, startup, cpu_ms in rows:
        source = "decoded cache" if use_cache else "decode every time"
        shift = "on (p=0.2)" if pitch else "off"
        cost = f"{cpu_ms:.2f}" if cpu_ms is not None else "-"
        print(f"| {source} | {workers} | {shift} | {rate:.0f} | {startup:.2f} | {cost} |")


main()
