import librosa
import numpy as np
import pytest
import torch

from lib.config import Config
from lib.features import LogMel, mel_filterbank

SR = 32000


def clip(seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(5 * SR) / SR
    chirp = np.sin(2 * np.pi * (2000 + 300 * t) * t) * (t % 1.0 < 0.3)
    return (0.3 * chirp + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def test_filterbank_equals_librosa():
    ours = mel_filterbank(SR, 1024, 256, 20, 14000)
    with pytest.warns(UserWarning):  # 256 mels at n_fft 1024 leave some low filters empty
        ref = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=256, fmin=20, fmax=14000)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_log_mel_agrees_with_librosa_within_1e_2_db():
    """Tolerance: 0.01 dB (float32 STFT vs librosa's float64 path; seen here: max 6e-4 dB)."""
    wave = clip()
    with pytest.warns(UserWarning):
        power = librosa.feature.melspectrogram(
            y=wave, sr=SR, n_fft=1024, hop_length=320, win_length=1024,
            n_mels=256, fmin=20, fmax=14000, power=2.0,
        )  # fmt: skip
    ref = librosa.power_to_db(power, ref=np.max, top_db=80)
    ours = LogMel(Config()).power_db(torch.from_numpy(wave)[None])[0].numpy()
    assert ours.shape == ref.shape == (256, 501)
    np.testing.assert_allclose(ours, ref, atol=1e-2)


def test_normalised_output_maps_minus_80_to_0_db_onto_0_to_1():
    """What the network sees: (dB + 80) / 80 of librosa's per-clip power_to_db, per item."""
    waves = np.stack([clip(0), 0.001 * clip(1)])
    out = LogMel(Config())(torch.from_numpy(waves))
    assert out.shape == (2, 1, 256, 501)
    for item, wave in zip(out[:, 0].numpy(), waves, strict=True):
        with pytest.warns(UserWarning):
            power = librosa.feature.melspectrogram(
                y=wave, sr=SR, n_fft=1024, hop_length=320, win_length=1024,
                n_mels=256, fmin=20, fmax=14000, power=2.0,
            )  # fmt: skip
        expected = (librosa.power_to_db(power, ref=np.max, top_db=80) + 80) / 80
        np.testing.assert_allclose(item, expected, atol=1e-2 / 80)
        assert item.max() == pytest.approx(1.0)  # the clip's loudest cell is 0 dB


def test_gain_invariant():
    """ref=max: a recording 40 dB quieter gives the same image (Xeno-canto levels vary)."""
    wave = clip()
    mel = LogMel(Config())
    loud = mel(torch.from_numpy(wave)[None])
    quiet = mel(torch.from_numpy(wave * 0.01)[None])
    torch.testing.assert_close(loud, quiet, atol=1e-4, rtol=0)


def test_silence_is_finite():
    out = LogMel(Config())(torch.zeros(1, 5 * SR))
    assert torch.isfinite(out).all()
