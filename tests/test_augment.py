"""Each augmentation does what a user would hear or see: noise at the asked SNR, a tone moved by
the asked interval, mixup's union targets, SpecAugment's silent bands; p=0 changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.audio import write_audio
from lib.augment import (
    SpecAugment,
    WaveAugment,
    add_background,
    add_gaussian_noise,
    add_uniform_noise,
    mixup,
    pitch_shift,
    power,
)
from lib.config import Config

SR = 32000


def tone(freq: float = 1000.0, seconds: float = 5.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * np.log10(power(clean) / power(noisy.astype(np.float64) - clean))


def peak_hz(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / SR)[np.argmax(spectrum)])


def no_aug(**changes) -> Config:
    off = dict(pitch_shift_p=0.0, background_noise_p=0.0, gaussian_noise_p=0.0)
    return Config().replace(**{**off, "uniform_noise_p": 0.0, **changes})


@pytest.mark.parametrize("add", [add_gaussian_noise, add_uniform_noise])
@pytest.mark.parametrize("target", [3.0, 10.0, 30.0])
def test_noise_is_added_at_the_asked_snr(add, target):
    clean = tone()
    noisy = add(clean, target, np.random.default_rng(0))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert snr_db(clean, noisy) == pytest.approx(target, abs=0.2)


def test_noise_kinds_and_determinism():
    clean = tone()
    gauss = add_gaussian_noise(clean, 10.0, np.random.default_rng(1)) - clean
    flat = add_uniform_noise(clean, 10.0, np.random.default_rng(1)) - clean
    bound = np.sqrt(3 * power(clean) / 10.0)  # uniform in [-a, a] has power a^2 / 3
    assert np.abs(flat).max() <= bound * 1.0001 < np.abs(gauss).max()
    again = add_gaussian_noise(clean, 10.0, np.random.default_rng(1)) - clean
    assert np.array_equal(gauss, again)
    other = add_gaussian_noise(clean, 10.0, np.random.default_rng(2)) - clean
    assert not np.array_equal(gauss, other)
    silent = np.zeros(SR, dtype=np.float32)
    assert not add_gaussian_noise(silent, 10.0, np.random.default_rng(0)).any()


@pytest.mark.parametrize("semitones", [2.0, -2.0, 1.0, -0.5])
def test_pitch_shift_moves_a_tone_by_the_interval(semitones):
    clean = tone(1000.0)
    shifted = pitch_shift(clean, semitones, SR)
    assert shifted.shape == clean.shape and shifted.dtype == np.float32
    expected = 1000.0 * 2 ** (semitones / 12)
    used = shifted[: int(len(clean) * min(1.0, 2 ** (-semitones / 12)))]  # before any padding
    assert peak_hz(used) == pytest.approx(expected, abs=2.0)
    assert np.array_equal(pitch_shift(clean, 0.0, SR), clean)


def test_background_is_mixed_at_the_asked_snr_from_a_random_stretch():
    clean = tone(seconds=5.0)
    noise = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)  # shorter: tiled
    for target in (3.0, 15.0, 30.0):
        mixed = add_background(clean, noise, target, np.random.default_rng(1))
        assert snr_db(clean, mixed) == pytest.approx(target, abs=0.01)
    long_noise = np.random.default_rng(0).standard_normal(60 * SR).astype(np.float32)
    first = add_background(clean, long_noise, 10.0, np.random.default_rng(1))
    same = add_background(clean, long_noise, 10.0, np.random.default_rng(1))
    other = add_background(clean, long_noise, 10.0, np.random.default_rng(2))
    assert np.array_equal(first, same) and not np.array_equal(first, other)


def test_wave_augment_p0_is_identity_and_p1_is_deterministic(tmp_path):
    clean = tone()
    identity = WaveAugment(no_aug())
    assert np.array_equal(identity(clean, np.random.default_rng(0)), clean)

    noise_file = tmp_path / "rain.ogg"
    write_audio(noise_file, np.random.default_rng(3).uniform(-0.1, 0.1, 8 * SR), SR)
    on = no_aug(pitch_shift_p=1.0, background_noise_p=1.0, gaussian_noise_p=1.0)
    augment = WaveAugment(on.replace(uniform_noise_p=1.0), noise_files=[noise_file])
    assert [(s.offset, s.duration) for s in augment.noise_bank.segments] == [(0.0, 5.0), (5.0, 3.0)]
    first = augment(clean, np.random.default_rng(5))
    assert first.shape == clean.shape and first.dtype == np.float32
    assert not np.allclose(first, clean)
    assert np.array_equal(first, augment(clean, np.random.default_rng(5)))
    assert not np.array_equal(first, augment(clean, np.random.default_rng(6)))


def test_wave_augment_background_only_from_noise():
    clean = tone()
    with pytest.warns(UserWarning, match="no noise bank or noise files"):
        augment = WaveAugment(no_aug(background_noise_p=1.0))
    assert np.array_equal(augment(clean, np.random.default_rng(0)), clean)


def test_wave_augment_noise_snr_stays_in_the_configured_range():
    clean = tone()
    augment = WaveAugment(no_aug(gaussian_noise_p=1.0, gaussian_noise_snr_db=(10.0, 20.0)))
    measured = [snr_db(clean, augment(clean, np.random.default_rng(s))) for s in range(20)]
    assert min(measured) > 9.8 and max(measured) < 20.2
    assert max(measured) - min(measured) > 3.0  # drawn across the range, not fixed


def batch(size: int = 8, length: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Row i is the constant i + 1 and has class i alone: mixes are easy to read back."""
    waves = torch.arange(1, size + 1, dtype=torch.float32)[:, None].repeat(1, length)
    return waves, torch.eye(size)


def test_mixup_p0_is_identity():
    waves, targets = batch()
    mixed, mixed_targets = mixup(waves, targets, alpha=0.4, p=0.0)
    assert torch.equal(mixed, waves) and torch.equal(mixed_targets, targets)


def test_mixup_mixes_waves_and_takes_the_union_of_targets():
    waves, targets = batch(32)
    mixed, mixed_targets = mixup(waves, targets, 0.4, 1.0, torch.Generator().manual_seed(0))
    assert mixed.shape == waves.shape and mixed_targets.shape == targets.shape
    for row in range(32):
        present = torch.nonzero(mixed_targets[row]).flatten().tolist()
        assert row in present and len(present) <= 2  # itself plus its partner
        assert set(mixed_targets[row].unique().tolist()) <= {0.0, 1.0}  # union, not weights
        value = mixed[row]
        assert torch.allclose(value, value[0].expand_as(value))  # a mix of two constants
        low, high = min(p + 1 for p in present), max(p + 1 for p in present)
        assert low - 1e-5 <= value[0] <= high + 1e-5  # a convex combination of the two
    again = mixup(waves, targets, 0.4, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], mixed) and torch.equal(again[1], mixed_targets)


def test_mixup_probability_is_per_clip():
    waves, targets = batch(400, 4)
    _, mixed_targets = mixup(waves, targets, 0.4, 0.5, torch.Generator().manual_seed(1))
    share = (mixed_targets.sum(dim=1) > 1).float().mean().item()
    assert 0.4 < share < 0.6


def spec_config(**changes) -> Config:
    base = dict(specaug_p=1.0, time_masks=2, time_mask_max=20, freq_masks=2, freq_mask_max=10)
    return Config().replace(**{**base, **changes})


def test_specaugment_masks_whole_bands_with_silence():
    module = SpecAugment(spec_config()).train()
    mel = torch.rand(16, 1, 64, 200) + 0.5  # nothing is zero before masking
    out = module(mel, torch.Generator().manual_seed(0))
    assert out.shape == mel.shape
    zero = out[:, 0] == 0  # (B, n_mels, T)
    kept = ~zero
    assert torch.equal(out[:, 0][kept], mel[:, 0][kept])  # untouched cells keep their values
    for item in zero:
        columns = item.all(dim=0)  # whole time frames silenced
        rows = item.all(dim=1)  # whole mel bins silenced
        assert torch.equal(item, columns[None, :] | rows[:, None])  # only full bands
        assert columns.sum() <= 2 * 20 and rows.sum() <= 2 * 10
    assert zero.any(dim=(1, 2)).float().mean() > 0.8  # masks do appear (width 0 is possible)


def test_specaugment_identity_when_off_and_deterministic():
    mel = torch.rand(4, 1, 64, 200)
    assert torch.equal(SpecAugment(spec_config()).eval()(mel), mel)
    assert torch.equal(SpecAugment(spec_config(specaug_p=0.0)).train()(mel), mel)
    module = SpecAugment(spec_config()).train()
    first = module(mel, torch.Generator().manual_seed(3))
    assert torch.equal(first, module(mel, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, module(mel, torch.Generator().manual_seed(4)))


def test_specaugment_probability_is_per_clip():
    module = SpecAugment(spec_config(specaug_p=0.5, time_mask_max=40)).train()
    out = module(torch.ones(400, 1, 32, 100), torch.Generator().manual_seed(0))
    share = (out == 0).any(dim=(1, 2, 3)).float().mean().item()
    assert 0.4 < share < 0.6
