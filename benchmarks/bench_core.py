"""Core speed on this machine: decode a 10-minute soundscape, its 120 log-mels, SED forward.

Run: `python benchmarks/bench_core.py` (about a minute). Prints medians of several repeats;
the figures go into benchmarks/RESULTS.md. Target: decode + features of a 10-minute
soundscape under 1.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.audio import load_audio, make_windows, write_audio  # noqa: E402
from lib.config import Config  # noqa: E402
from lib.features import LogMel  # noqa: E402
from lib.model import build_model  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, first-call dispatch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def soundscape(path: Path, cfg: Config, seconds: float = 600.0) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * cfg.sample_rate)) / cfg.sample_rate
    wave = 0.02 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * 3000 * t) * (t % 7 < 1)
    write_audio(path, wave.astype(np.float32), cfg.sample_rate)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = Config(pretrained=False)
    mel = LogMel(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soundscape_600s.ogg"
        soundscape(path, cfg)
        decode = median_seconds(lambda: load_audio(path, cfg.sample_rate), args.repeats)
        windows, _ = make_windows(load_audio(path, cfg.sample_rate), cfg.sample_rate)

    def features():
        with torch.inference_mode():
            for start in range(0, len(windows), 40):
                mel(torch.from_numpy(windows[start : start + 40]))

    feats = median_seconds(features, args.repeats)
    model = build_model(cfg, num_classes=264).eval()
    batch = torch.rand(16, 1, cfg.n_mels, cfg.n_frames)

    def forward():
        with torch.inference_mode():
            model(batch)

    fwd = median_seconds(forward, args.repeats)
    print(f"threads: {args.threads}, repeats: {args.repeats} (medians)")
    print(f"decode 10-min ogg:               {decode:.3f} s")
    print(f"log-mel of its {len(windows)} windows:      {feats:.3f} s")
    print(f"decode + features:               {decode + feats:.3f} s (target < 1.5 s)")
    print(f"{cfg.backbone} forward, batch 16: {fwd / 16 * 1000:.1f} ms per 5-s window")


if __name__ == "__main__":
    main()
