"""Log-mel spectrogram: the one implementation used by training, export and inference.

A `torch.nn.Module`, so training computes it on the GPU with the batch and export can trace it.
It reproduces librosa's `melspectrogram(power=2, center=True, pad_mode="constant")` with the
Slaney mel scale and `power_to_db(ref=np.max, top_db=80)`, per clip.

Normalisation fed to the network: `(dB + top_db) / top_db`, i.e. [-80, 0] dB -> [0, 1].
With ref=max each clip's loudest bin is 0 dB, so the input does not depend on recording gain
(Xeno-canto levels vary wildly, soundscapes are quiet); the fixed [0, 1] range keeps the
ImageNet-initialised stem and batch-norm statistics in a sane regime without dataset statistics
that would have to travel with the model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lib.config import Config


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale (librosa's default, htk=False): linear below 1 kHz, log above."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    mels = freq / f_sp
    log_part = min_log_hz / f_sp + np.log(np.maximum(freq, min_log_hz) / min_log_hz) / logstep
    return np.where(freq >= min_log_hz, log_part, mels)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_mel, logstep = 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(
        mels >= min_log_mel, 1000.0 * np.exp(logstep * (mels - min_log_mel)), f_sp * mels
    )


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float
) -> np.ndarray:
    """Triangular Slaney-normalised filters, (n_mels, n_fft // 2 + 1), as librosa.filters.mel."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(mel_freqs)  # (n_mels + 1,)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_bins)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]  # equal area per filter
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """Waveforms (batch, samples) -> normalised log-mel images (batch, 1, n_mels, frames)."""

    def __init__(self, config: Config):
        super().__init__()
        self.n_fft, self.hop_length = config.n_fft, config.hop_length
        self.top_db = float(config.top_db)
        filters = mel_filterbank(
            config.sample_rate, config.n_fft, config.n_mels, config.f_min, config.f_max
        )
        self.register_buffer("mel_filters", torch.from_numpy(filters), persistent=False)
        window = torch.hann_window(config.win_length, periodic=True)
        self.register_buffer("window", window, persistent=False)

    def power_db(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> dB relative to each clip's max, floored at -top_db."""
        spec = torch.stft(
            wave,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (batch, n_bins, frames)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_filters, power)  # (batch, n_mels, frames)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        peak = db.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(db - peak, torch.full_like(db, -self.top_db))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        db = self.power_db(wave)
        return ((db + self.top_db) / self.top_db).unsqueeze(1)  # (batch, 1, n_mels, frames)
