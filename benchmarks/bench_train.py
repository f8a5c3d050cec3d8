"""Training speed of the recipe's model on this CPU: efficientnet_b0 SED (pretrained=False) on
5-second clips, 256 x 501 log-mel input, batch 16, forward + backward + AdamW step.

Two figures: the model step alone (log-mel images given), and the whole training step of
lib.fold_trainer.train_one_epoch (raw waveforms -> mixup -> log-mel -> SpecAugment -> model -> SED
loss -> AdamW -> cosine step). Data loading is not included (see bench_loader.py).

Run: `python benchmarks/bench_train.py [--threads 1 2] [--batches 4] [--repeats 3]`.
Prints samples per second (median of repeats, each over --batches batches after a warm-up
batch); the figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.config import Config  # noqa: E402
from lib.distributed import DistInfo  # noqa: E402
from lib.fold_trainer import build_trainer, make_optimizer, train_one_epoch  # noqa: E402
from lib.losses import SEDLoss  # noqa: E402
from lib.model import build_model  # noqa: E402

N_CLASSES = 264


def samples_per_second(step, batch_size: int, batches: int, repeats: int) -> float:
    """Median over `repeats` of batch_size * batches / seconds, after one warm-up step."""
    step(1)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(batches)
        rates.append(batch_size * batches / (time.perf_counter() - start))
    return statistics.median(rates)


def model_step(config: Config, batch_size: int):
    """fwd + bwd + AdamW on fixed log-mel images (B, 1, 256, 501)."""
    model = build_model(config, N_CLASSES, pretrained=False).train()
    optimizer, criterion = make_optimizer(model, config), SEDLoss(config)
    mel = torch.rand(batch_size, 1, config.n_mels, config.n_frames)
    targets = torch.zeros(batch_size, N_CLASSES)
    targets[torch.arange(batch_size), torch.arange(batch_size) % N_CLASSES] = 1.0

    def run(batches: int) -> None:
        for _ in range(batches):
            loss = criterion(model(mel), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def full_step(config: Config, batch_size: int):
    """lib.fold_trainer.train_one_epoch over in-memory batches of raw waveforms."""
    classes = [f"c{k:03d}" for k in range(N_CLASSES)]
    t = build_trainer(config, classes, 0, torch.device("cpu"), DistInfo(), steps_per_epoch=100)
    generator = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(batch_size, config.clip_samples, generator=generator)
    targets = torch.zeros(batch_size, N_CLASSES)
    targets[torch.arange(batch_size), torch.arange(batch_size)] = 1.0

    def run(batches: int) -> None:
        train_one_epoch(t, [(waves, targets)] * batches, epoch=0)

    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    config = Config(pretrained=False, batch_size=args.batch_size)  # efficientnet_b0, 256 mels
    print(
        f"{config.backbone}, input 1 x {config.n_mels} x {config.n_frames}, batch {args.batch_size}"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model_rate = samples_per_second(
            model_step(config, args.batch_size), args.batch_size, args.batches, args.repeats
        )
        full_rate = samples_per_second(
            full_step(config, args.batch_size), args.batch_size, args.batches, args.repeats
        )
        print(
            f"| {threads} thread(s) | model step {model_rate:.2f} samples/s | "
            f"full train step {full_rate:.2f} samples/s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
