"""The noise bank: 2021's nocall windows at the right offsets, noise folders, and the
augmentation drawing reproducible segments and mixing them at the asked SNR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.audio import write_audio
from lib.augment import WaveAugment, power
from lib.config import Config
from lib.noise import (
    NoiseBank,
    NoiseSegment,
    find_noise_bank,
    load_noise,
    noise_bank_from_2021,
    noise_bank_from_folder,
)

SR = 32000
SECONDS = 30  # 6 windows per soundscape


def window_freq(file_index: int, window: int) -> float:
    """Each 5-s window of the fake soundscapes is a tone of its own frequency."""
    return 500.0 + 250.0 * (6 * file_index + window)


def peak_hz(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / SR)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def comp2021(tmp_path_factory) -> Path:
    """BirdCLEF 2021's layout: two soundscapes; windows 2 and 5 of each are nocall; a third
    audio_id is labelled but has no file."""
    comp = tmp_path_factory.mktemp("comp") / "birdclef-2021"
    t = np.arange(5 * SR) / SR
    rows = []
    for k, (audio_id, site) in enumerate((("10534", "SSW"), ("7019", "COR"), ("2782", "SNE"))):
        windows = [0.1 * np.sin(2 * np.pi * window_freq(k, w) * t) for w in range(SECONDS // 5)]
        if k < 2:  # the third soundscape's file is missing
            path = comp / "train_soundscapes" / f"{audio_id}_{site}_20190904.ogg"
            write_audio(path, np.concatenate(windows), SR)
        for w in range(SECONDS // 5):
            birds = "nocall" if w in (2, 5) else "rucwar amerob"
            end = 5 * (w + 1)
            rows.append((f"{audio_id}_{site}_{end}", site, int(audio_id), end, birds))
    columns = ["row_id", "site", "audio_id", "seconds", "birds"]
    pd.DataFrame(rows, columns=columns).to_csv(comp / "train_soundscape_labels.csv", index=False)
    return comp


def test_2021_bank_holds_only_nocall_windows_at_their_offsets(comp2021):
    with pytest.warns(UserWarning, match=r"birdclef-2021: 2 of 6 nocall windows .*audio_id 2782"):
        bank = noise_bank_from_2021(comp2021)
    assert len(bank) == 4 and bank.seconds == 20.0
    assert bank.sources == {"birdclef-2021": 4}
    assert [(Path(s.path).name[:5], s.offset) for s in bank.segments] == [
        ("10534", 10.0), ("10534", 25.0), ("7019_", 10.0), ("7019_", 25.0)
    ]  # fmt: skip
    assert any("2 of 6" in note for note in bank.notes)
    for segment in bank.segments:  # the decoded audio is that window's tone, 5 s of it
        k = 0 if Path(segment.path).name.startswith("10534") else 1
        wave = load_noise(segment, SR)
        assert wave.shape == (5 * SR,) and wave.dtype == np.float32
        expected = window_freq(k, int(segment.offset // 5))
        assert peak_hz(wave) == pytest.approx(expected, abs=2.0)


def test_2021_layout_problems_name_the_file(tmp_path, comp2021):
    with pytest.raises(FileNotFoundError, match="train_soundscape_labels.csv"):
        noise_bank_from_2021(tmp_path)
    (tmp_path / "train_soundscapes").mkdir()
    pd.DataFrame({"audio_id": [1], "seconds": [5]}).to_csv(
        tmp_path / "train_soundscape_labels.csv", index=False
    )
    with pytest.raises(KeyError, match=r"\['birds'\]"):
        noise_bank_from_2021(tmp_path)


@pytest.fixture()
def noise_dir(tmp_path) -> Path:
    folder = tmp_path / "rain-noise"
    rng = np.random.default_rng(0)
    write_audio(folder / "long.ogg", rng.uniform(-0.1, 0.1, 12 * SR), SR)
    write_audio(folder / "sub" / "short.wav", rng.uniform(-0.1, 0.1, 2 * SR), SR)
    (folder / "empty.ogg").write_bytes(b"")
    (folder / "notes.mp3").write_text("not audio")
    (folder / "readme.txt").write_text("ignored")
    return folder


def test_folder_bank_cuts_files_and_skips_unreadable_ones(noise_dir):
    with pytest.warns(UserWarning, match="rain-noise: 2 of 4 files unreadable or empty"):
        bank = noise_bank_from_folder(noise_dir)
    spans = sorted((Path(s.path).name, s.offset, round(s.duration, 3)) for s in bank.segments)
    assert spans == [("long.ogg", 0.0, 5.0), ("long.ogg", 5.0, 5.0), ("long.ogg", 10.0, 2.0),
                     ("short.wav", 0.0, 2.0)]  # fmt: skip
    assert bank.sources == {"rain-noise": 4} and bank.seconds == pytest.approx(14.0)
    empty = noise_dir / "nothing"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="nothing: no audio files"):
        noise_bank_from_folder(empty)


def test_find_noise_bank_combines_sources_and_says_when_there_is_none(comp2021, noise_dir):
    with pytest.warns(UserWarning):
        bank = find_noise_bank([comp2021, noise_dir.parent], [noise_dir])
    assert bank.sources == {"birdclef-2021": 4, "rain-noise": 4}
    assert any(f"attached at {noise_dir.parent}, but neither" in note for note in bank.notes)
    assert bank.summary().startswith("background noise bank: 8 segments")
    none = find_noise_bank([], [])
    assert not none and "no background noise source attached" in none.summary()
    assert "[Important]" in none.summary()
    assert NoiseBank.from_dict(json.loads(json.dumps(bank.to_dict()))) == bank


def background_only(p: float = 1.0, snr: tuple[float, float] = (10.0, 10.0)) -> Config:
    return Config().replace(pitch_shift_p=0.0, gaussian_noise_p=0.0, uniform_noise_p=0.0,
                            background_noise_p=p, background_noise_snr_db=snr)  # fmt: skip


def tone(seconds: float = 5.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 6000.0 * t)).astype(np.float32)


def test_augmentation_mixes_the_drawn_segment_at_the_asked_snr(comp2021):
    with pytest.warns(UserWarning):
        bank = noise_bank_from_2021(comp2021)
    clean = tone()
    for target in (3.0, 20.0):
        augment = WaveAugment(background_only(snr=(target, target)), noise_bank=bank)
        mixed = augment(clean, np.random.default_rng(7))
        added = mixed.astype(np.float64) - clean
        assert 10 * np.log10(power(clean) / power(added)) == pytest.approx(target, abs=0.05)
        rng = np.random.default_rng(7)
        rng.random()  # the pitch-shift coin, then the background coin
        rng.random()
        expected = load_noise(bank.pick(rng), SR)  # the segment the same rng draws
        correlation = np.corrcoef(added, expected)[0, 1]
        assert correlation > 0.999


def test_augmentation_draws_are_reproducible_and_vary_with_the_rng(comp2021):
    with pytest.warns(UserWarning):
        bank = noise_bank_from_2021(comp2021)
    augment = WaveAugment(background_only(snr=(5.0, 5.0)), noise_bank=bank)
    clean = tone()
    first = augment(clean, np.random.default_rng(1))
    assert np.array_equal(first, augment(clean, np.random.default_rng(1)))
    peaks = {peak_hz(augment(clean, np.random.default_rng(s)) - clean) for s in range(40)}
    assert len(peaks) == len(bank)  # every segment gets drawn


def test_recipe_probability_applies_whenever_a_bank_exists(comp2021):
    with pytest.warns(UserWarning):
        bank = noise_bank_from_2021(comp2021)
    p = Config().background_noise_p
    assert p > 0
    augment = WaveAugment(background_only(p=p), noise_bank=bank)
    clean = tone()
    changed = [not np.array_equal(augment(clean, np.random.default_rng(s)), clean)
               for s in range(400)]  # fmt: skip
    assert np.mean(changed) == pytest.approx(p, abs=0.07)


def test_unreadable_noise_segment_is_skipped_with_one_warning(tmp_path):
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS but not really")
    segments = (NoiseSegment(str(bad), 0.0, 5.0, "x"), NoiseSegment(str(bad), 5.0, 5.0, "x"))
    augment = WaveAugment(background_only(), noise_bank=NoiseBank(segments))
    clean = tone()
    with pytest.warns(UserWarning, match="could not be decoded") as caught:
        outputs = [augment(clean, np.random.default_rng(s)) for s in range(10)]
    assert len(caught) == 1
    assert all(np.array_equal(out, clean) for out in outputs)


@pytest.mark.parametrize("missing", ["labels", "soundscapes", "both"])
def test_2021_attached_without_a_part_says_what_is_there_and_what_is_missing(
    comp2021, tmp_path, missing
):
    import shutil

    copy = tmp_path / "birdclef-2021"
    shutil.copytree(comp2021, copy)
    if missing in ("labels", "both"):
        (copy / "train_soundscape_labels.csv").unlink()
    if missing in ("soundscapes", "both"):
        shutil.rmtree(copy / "train_soundscapes")
        (copy / "train_short_audio").mkdir()
    bank = find_noise_bank([copy], [])  # never raises: the notebook trains on without noise
    summary = bank.summary()
    assert not bank and f"birdclef-2021 attached at {copy}" in summary
    assert "no nocall soundscape windows" in summary
    assert "no background noise source attached" not in summary  # something is attached
    assert "no usable background noise source attached" in summary and "[Important]" in summary
    expected = {
        "labels": "train_soundscapes/ (2 files) is there but train_soundscape_labels.csv is "
        "missing",
        "soundscapes": "train_soundscape_labels.csv is there but train_soundscapes/ is missing",
        "both": "neither train_soundscape_labels.csv nor train_soundscapes/ is there (it holds "
        "train_short_audio)",
    }[missing]
    assert expected in summary
