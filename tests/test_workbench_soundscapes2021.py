"""The synthetic BirdCLEF 2021 soundscapes: real layout, labels that match the audio, and the
noise bank built from them end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.audio import audio_info, load_audio
from lib.augment import WaveAugment
from lib.config import Config
from lib.noise import find_noise_bank, noise_bank_from_2021
from lib.sources import read_source
from workbench.synthetic import SyntheticSpec, make_competition
from workbench.synthetic.soundscapes2021 import write_birdclef2021_soundscapes

SPEC = SyntheticSpec(
    n_species=4,
    recordings_per_species=(2, 3),
    recording_seconds=(2.0, 3.0),
    n_soundscapes=1,
    soundscape_seconds=5.0,
    pretrain_extra_species=1,
)
SECONDS = 30.0


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    make_competition(root, SPEC)
    write_birdclef2021_soundscapes(root, SPEC, n_files=2, seconds=SECONDS)
    return root


def labels(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "birdclef-2021" / "train_soundscape_labels.csv")


def test_layout_and_labels_are_2021_shaped(root):
    files = sorted((root / "birdclef-2021" / "train_soundscapes").iterdir())
    assert len(files) == 2
    table = labels(root)
    assert list(table.columns) == ["row_id", "site", "audio_id", "seconds", "birds"]
    assert len(table) == 2 * 6
    for path in files:
        audio_id, site, date = re.fullmatch(
            r"(\d+)_([A-Z]{3})_(2019\d{4})\.ogg", path.name
        ).groups()
        assert audio_info(path).seconds == pytest.approx(SECONDS, abs=0.01)
        rows = table[table["audio_id"] == int(audio_id)]
        assert rows["seconds"].tolist() == [5, 10, 15, 20, 25, 30]
        assert (rows["site"] == site).all()
        assert rows["row_id"].tolist() == [f"{audio_id}_{site}_{s}" for s in rows["seconds"]]
        quiet = rows["birds"] == "nocall"
        assert quiet.sum() >= 2 and (~quiet).sum() >= 1
    species = set(SPEC.all_species)
    called = {code for birds in table["birds"] if birds != "nocall" for code in birds.split()}
    assert called and called <= species


def band_power(wave: np.ndarray, low: float = 1000.0) -> float:
    """Power above `low` Hz, where the synthetic calls live."""
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(wave), 1 / 32000) >= low].sum())


def test_labels_match_the_audio(root):
    """Windows with calls carry clearly more in-band power than the nocall ones."""
    table = labels(root)
    files = {
        p.name.split("_")[0]: p for p in (root / "birdclef-2021" / "train_soundscapes").iterdir()
    }
    for audio_id, rows in table.groupby("audio_id"):
        wave = load_audio(files[str(audio_id)], 32000)
        powers = [band_power(wave[(s - 5) * 32000 : s * 32000]) for s in rows["seconds"]]
        quiet = (rows["birds"] == "nocall").to_numpy()
        ratio = np.median(np.array(powers)[~quiet]) / np.median(np.array(powers)[quiet])
        assert ratio > 1.5, (audio_id, ratio)


def test_noise_bank_end_to_end(root):
    table = labels(root)
    quiet = table[table["birds"] == "nocall"]
    bank = noise_bank_from_2021(root / "birdclef-2021")
    assert len(bank) == len(quiet) and not bank.notes
    assert sorted(s.offset for s in bank.segments) == sorted(quiet["seconds"] - 5.0)
    assert bank == find_noise_bank([root / "birdclef-2021"])
    config = Config().replace(pitch_shift_p=0.0, gaussian_noise_p=0.0, uniform_noise_p=0.0,
                              background_noise_p=1.0)  # fmt: skip
    clean = np.sin(np.arange(5 * 32000) * 0.3).astype(np.float32)
    # What the augmentation added is one nocall window of a soundscape, cut from the whole
    # decoded file here, at an SNR inside the configured range.
    windows = {}
    for path in (root / "birdclef-2021" / "train_soundscapes").glob("*.ogg"):
        wave = load_audio(path, 32000)
        audio_id = int(path.name.split("_")[0])
        for end in quiet[quiet["audio_id"] == audio_id]["seconds"]:
            windows[(audio_id, end)] = wave[(end - 5) * 32000 : end * 32000]
    for seed in range(4):
        mixed = WaveAugment(config, noise_bank=bank)(clean, np.random.default_rng(seed))
        added = mixed - clean
        match = max(windows, key=lambda k: abs(np.corrcoef(added, windows[k])[0, 1]))
        assert np.corrcoef(added, windows[match])[0, 1] > 0.999, (seed, match)
        snr = 10 * np.log10(np.mean(clean**2) / np.mean(added**2))
        low, high = config.background_noise_snr_db
        assert low - 0.01 <= snr <= high + 0.01, snr
    # The short recordings of the 2021 source still read as before beside the soundscapes.
    short = read_source("birdclef-2021", root / "birdclef-2021")
    assert len(short) == len(list((root / "birdclef-2021" / "train_short_audio").rglob("*.ogg")))


def test_same_spec_same_soundscapes(root, tmp_path):
    write_birdclef2021_soundscapes(tmp_path, SPEC, n_files=2, seconds=SECONDS)
    assert labels(tmp_path).equals(labels(root))
    with pytest.raises(ValueError, match="n_files >= 1"):
        write_birdclef2021_soundscapes(tmp_path, SPEC, n_files=0)
