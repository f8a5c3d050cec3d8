"""Augmentations of the recipe: waveform ones per clip (numpy, in the loader workers), mixup on
the raw-waveform batch and SpecAugment on the log-mel batch (torch, in the training step).

Noise levels are given as SNR in dB against the clip's own power (mean square), so "10 dB"
means the same audible degradation for a quiet soundscape-like clip and a loud close-up call.
A silent clip (power 0) is returned unchanged: there is no level to measure noise against.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soxr
import torch
from torch import nn

from lib.audio import AudioError, crop_or_pad
from lib.config import Config
from lib.noise import NoiseBank, combine_banks, load_noise, noise_bank_from_files


def power(wave: np.ndarray) -> float:
    """Mean square of the samples (float64 accumulation)."""
    return float(np.mean(np.square(wave, dtype=np.float64))) if len(wave) else 0.0


def _noise_scale(signal_power: float, noise_power: float, snr_db: float) -> float:
    """Gain that puts noise of `noise_power` at `snr_db` below `signal_power`."""
    if signal_power <= 0.0 or noise_power <= 0.0:
        return 0.0
    return float(np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0))))


def add_gaussian_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise at `snr_db` dB below the clip's power (a new array)."""
    std = _noise_scale(power(wave), 1.0, snr_db)
    if std == 0.0:
        return wave.copy()
    noise = rng.standard_normal(len(wave), dtype=np.float32)
    return (wave + std * noise).astype(np.float32)


def add_uniform_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White uniform noise in [-a, a] (power a^2 / 3) at `snr_db` dB below the clip's power."""
    scale = _noise_scale(power(wave), 1.0 / 3.0, snr_db)
    if scale == 0.0:
        return wave.copy()
    noise = rng.random(len(wave), dtype=np.float32) * 2.0 - 1.0
    return (wave + scale * noise).astype(np.float32)


def pitch_shift(wave: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Every frequency times 2^(semitones/12), by resampling (soxr), cut or padded back.

    Fast (~1.5 ms per 5 s clip) but not a pure pitch shift: like a tape played faster, it also
    shortens (up) or stretches (down) the clip by the same ratio, so call rhythm changes too,
    and an upward shift leaves up to 1 - 2^(-s/12) of the clip (11 % at +2) zero-padded at
    the end. A phase vocoder keeps tempo but costs ~50x more CPU per clip.
    """
    if semitones == 0.0 or len(wave) == 0:
        return wave.copy()
    ratio = 2.0 ** (semitones / 12.0)
    # Read the samples as if recorded at rate*ratio, bring them to `rate`: f -> f * ratio.
    shifted = soxr.resample(wave.astype(np.float32), sample_rate * ratio, sample_rate, "HQ")
    return crop_or_pad(shifted, len(wave)).astype(np.float32)  # (len(wave),)


def add_background(
    wave: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """Mix a random stretch of `noise` (tiled if shorter) at `snr_db` dB below the clip."""
    if len(noise) == 0:
        return wave.copy()
    if len(noise) < len(wave):
        noise = np.tile(noise, -(-len(wave) // len(noise)))
    piece = np.asarray(crop_or_pad(noise, len(wave), rng), dtype=np.float32)  # (len(wave),)
    gain = _noise_scale(power(wave), power(piece), snr_db)
    return (wave + gain * piece).astype(np.float32)


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


class WaveAugment:
    """Per-clip waveform augmentation, `(wave, rng) -> wave`, each step with its config
    probability: pitch shift (of the recording), then background noise, Gaussian and uniform
    noise (added to what the microphone heard). All randomness comes from `rng`.

    Background noise comes from `noise_bank` (lib.noise: 2021 nocall windows, noise folders)
    plus any `noise_files` (cut into clip-length segments); a drawn segment is crop-decoded
    when needed, so nothing is held in memory. With segments, `config.background_noise_p`
    applies (the recipe's 0.3); without, background noise is off, with a warning.
    """

    def __init__(
        self,
        config: Config,
        noise_files: Sequence[str | Path] = (),
        noise_bank: NoiseBank | None = None,
    ):
        self.config = config
        bank = noise_bank or NoiseBank()
        if noise_files:
            bank = combine_banks(bank, noise_bank_from_files(noise_files, config.clip_seconds))
        self.noise_bank = bank
        self._bad_noise: set[tuple[str, float]] = set()  # segments that failed to decode
        if config.background_noise_p > 0 and not bank:
            warnings.warn(
                "background_noise_p > 0 but no noise bank or noise files were given: background "
                "noise is off",
                stacklevel=2,
            )

    def background(self, rng: np.random.Generator) -> tuple[np.ndarray | None, float]:
        """A drawn noise segment's audio (None if it cannot be decoded) and the SNR to mix at.

        Both draws come from `rng` before decoding, so the choice never depends on the files.
        An unreadable segment is skipped (warned once per process), never fatal mid-epoch.
        """
        segment = self.noise_bank.pick(rng)
        snr = _uniform(rng, self.config.background_noise_snr_db)
        key = (segment.path, segment.offset)
        if key in self._bad_noise:
            return None, snr
        try:
            return load_noise(segment, self.config.sample_rate), snr
        except (AudioError, OSError) as err:
            if not self._bad_noise:
                warnings.warn(
                    f"background noise: a segment could not be decoded and is skipped ({err}); "
                    "further unreadable segments are skipped silently",
                    stacklevel=2,
                )
            self._bad_noise.add(key)
            return None, snr

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        wave = np.asarray(wave, dtype=np.float32)
        if rng.random() < c.pitch_shift_p:
            wave = pitch_shift(wave, _uniform(rng, c.pitch_shift_semitones), c.sample_rate)
        if rng.random() < c.background_noise_p and self.noise_bank:
            noise, snr = self.background(rng)
            if noise is not None:
                wave = add_background(wave, noise, snr, rng)
        if rng.random() < c.gaussian_noise_p:
            wave = add_gaussian_noise(wave, _uniform(rng, c.gaussian_noise_snr_db), rng)
        if rng.random() < c.uniform_noise_p:
            wave = add_uniform_noise(wave, _uniform(rng, c.uniform_noise_snr_db), rng)
        return wave


def mixup(
    waves: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    p: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each clip, with probability p, with a partner from a permutation of the batch.

    waves (B, L), targets (B, classes). lambda ~ Beta(alpha, alpha) per clip. Targets are the
    union (element-wise max), not the lambda-weighted mean: both birds stay audible in the sum
    (a lambda of 0.2 is only -14 dB), and the task asks whether a species calls, not how loud;
    this is what BirdCLEF's top solutions used. Randomness from `generator` (CPU) or torch's
    global RNG, so a seeded run mixes the same way.
    """
    batch = waves.shape[0]
    if p <= 0.0 or batch < 2:
        return waves, targets
    perm = torch.randperm(batch, generator=generator)
    chosen = torch.rand(batch, generator=generator) < p
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=batch) if alpha > 0 else 0.5
    lam = torch.where(
        chosen, torch.as_tensor(lam, dtype=waves.dtype), torch.ones((), dtype=waves.dtype)
    )
    lam, chosen, perm = lam.to(waves.device), chosen.to(waves.device), perm.to(waves.device)
    mixed = lam[:, None] * waves + (1.0 - lam[:, None]) * waves[perm]  # (B, L)
    union = torch.maximum(targets, targets[perm])  # (B, classes)
    return mixed, torch.where(chosen[:, None], union, targets)


def band_mask(
    batch: int, size: int, count: int, max_width: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(batch, size) bool: `count` bands per row, widths uniform in [0, max_width]."""
    width = torch.randint(0, max(min(max_width, size), 0) + 1, (batch, count), generator=generator)
    start = (torch.rand(batch, count, generator=generator) * (size - width + 1)).long()
    position = torch.arange(size)
    inside = (position >= start[..., None]) & (position < (start + width)[..., None])
    return inside.any(dim=1)  # (batch, count, size) -> (batch, size)


class SpecAugment(nn.Module):
    """Time and frequency masks on log-mel batches (B, C, n_mels, T), training mode only.

    Each clip is masked with probability config.specaug_p: config.time_masks bands of up to
    config.time_mask_max frames and config.freq_masks bands of up to config.freq_mask_max mel
    bins. Masked cells are set to 0, which for lib.features.LogMel's (dB + top_db) / top_db
    scale is the -80 dB floor: silence, the value the network already sees in quiet regions.
    """

    def __init__(self, config: Config):
        super().__init__()
        self.p = float(config.specaug_p)
        self.time_masks, self.time_mask_max = int(config.time_masks), int(config.time_mask_max)
        self.freq_masks, self.freq_mask_max = int(config.freq_masks), int(config.freq_mask_max)

    def forward(self, mel: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return mel
        batch, _, n_mels, frames = mel.shape
        chosen = torch.rand(batch, generator=generator) < self.p  # (B,)
        time = band_mask(batch, frames, self.time_masks, self.time_mask_max, generator)
        freq = band_mask(batch, n_mels, self.freq_masks, self.freq_mask_max, generator)
        mask = (time[:, None, :] | freq[:, :, None]) & chosen[:, None, None]  # (B, n_mels, T)
        return mel.masked_fill(mask[:, None].to(mel.device), 0.0)
