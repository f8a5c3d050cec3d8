"""The synthetic competition: exact BirdCLEF 2023 layout, learnable sounds, determinism."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from lib.audio import load_audio, make_windows
from workbench.synthetic import (
    SyntheticSpec,
    call_params,
    make_competition,
    soundscape_labels,
    soundscape_windows,
    species_codes,
)
from workbench.synthetic.recordings import TYPES

SMALL = SyntheticSpec(
    n_species=4,
    recordings_per_species=(3, 4),
    recording_seconds=(6.0, 9.0),
    n_soundscapes=2,
    soundscape_seconds=60.0,
    seed=7,
)
TINY = SyntheticSpec(
    n_species=2,
    recordings_per_species=(1, 1),
    recording_seconds=(2.0, 2.0),
    n_soundscapes=1,
    soundscape_seconds=5.0,
    minor_species=0,
    with_pretrain_sources=False,
)
CODES = species_codes(SMALL.n_species)
PRETRAIN = {  # folder: (table, label column)
    "birdsong-recognition": ("train.csv", "ebird_code"),
    "birdclef-2021": ("train_metadata.csv", "primary_label"),
    "birdclef-2022": ("train_metadata.csv", "primary_label"),
    "xeno-canto-extended": ("train_extended.csv", "ebird_code"),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    assert make_competition(root, SMALL) == root / "birdclef-2023"
    return root


def _stems(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "birdclef-2023" / "test_soundscapes").glob("*.ogg"))


def _band_db(wave: np.ndarray, spec: SyntheticSpec = SMALL) -> np.ndarray:
    """Loud-moment (98th percentile over frames) power in each 2023 species' band, in dB
    relative to the clip's median level above 1 kHz: high where that species calls."""
    params = call_params(spec)
    frames = wave[: len(wave) // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(1024, 1 / spec.sample_rate)
    bands = [(freqs >= params[c].band[0]) & (freqs <= params[c].band[1]) for c in CODES]
    loud = np.array([np.percentile(power[:, b].mean(axis=1), 98) for b in bands])
    return 10 * np.log10(loud) - 10 * np.log10(np.median(power.mean(axis=0)[freqs > 1000]))


def test_species_codes_are_ebird_like_sorted_and_prefix_stable():
    codes = species_codes(12)
    assert codes == sorted(codes) == species_codes(12)
    assert len(set(codes)) == 12
    assert all(re.fullmatch(r"[a-z]{6}\d?", c) for c in codes)
    assert set(species_codes(5)) <= set(codes)
    with pytest.raises(ValueError):
        species_codes(10_000)


def test_invalid_spec_is_refused():
    with pytest.raises(ValueError, match="minor_species"):
        SyntheticSpec(n_species=2, minor_species=3)
    with pytest.raises(ValueError, match="recordings_per_species"):
        SyntheticSpec(recordings_per_species=(5, 2))


def test_label_rule_needs_half_a_second_inside_the_window():
    events = [("a", 4.8, 5.9), ("b", 3.0, 3.6), ("b", 9.7, 10.3), ("a", 14.0, 16.0)]
    labels = soundscape_labels(events, 20.0, ["a", "b"])
    # a: 0.2 s in window 0 (no), 0.9 s in 1 (yes); 1.0 s in each of windows 2 and 3 (yes)
    # b: a 0.6 s call counts where half of it lies: window 0, and both windows 1 and 2
    assert labels.tolist() == [[0, 1], [1, 1], [1, 1], [1, 0]]
    assert [soundscape_windows(s) for s in (5.0, 600.0, 598.0, 600.2, 2.0)] == [1, 120, 120, 120, 1]


def test_competition_layout_and_columns(root):
    comp = root / "birdclef-2023"
    meta = pd.read_csv(comp / "train_metadata.csv")
    assert list(meta.columns) == [
        "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
        "common_name", "author", "license", "rating", "url", "filename",
    ]  # fmt: skip
    assert sorted(meta.primary_label.unique()) == CODES
    for row in meta.itertuples():
        assert re.fullmatch(rf"{row.primary_label}/XC\d+\.ogg", row.filename)
        assert (comp / "train_audio" / row.filename).is_file()
        secondary = ast.literal_eval(row.secondary_labels)  # a Python list, as on Kaggle
        assert secondary == sorted(set(secondary) & set(CODES) - {row.primary_label}), row
        assert tuple(ast.literal_eval(row.type)) in TYPES, row.type
    assert meta.url.str.fullmatch(r"https://www\.xeno-canto\.org/\d+").all()
    assert len(list((comp / "train_audio").rglob("*.ogg"))) == len(meta)
    counts = meta.primary_label.value_counts()
    assert counts.min() <= 3 and counts.max() >= SMALL.recordings_per_species[0]  # a minor one
    secondary = meta.secondary_labels.map(ast.literal_eval)
    assert secondary.map(len).sum() >= 1
    assert all(set(s) <= set(CODES) for s in secondary)
    taxonomy = pd.read_csv(comp / "eBird_Taxonomy_v2021.csv")
    assert list(taxonomy.columns) == [
        "TAXON_ORDER", "CATEGORY", "SPECIES_CODE", "PRIMARY_COM_NAME", "SCI_NAME", "ORDER1",
        "FAMILY", "SPECIES_GROUP", "REPORT_AS",
    ]  # fmt: skip
    assert set(CODES) <= set(taxonomy.SPECIES_CODE)
    names = taxonomy.set_index("SPECIES_CODE").loc[meta.primary_label]
    assert (names.SCI_NAME.to_numpy() == meta.scientific_name.to_numpy()).all()
    assert (root / "README_synthetic.txt").read_text().startswith("Synthetic")


def test_sample_submission_and_solution_match_the_soundscapes(root):
    comp = root / "birdclef-2023"
    stems = _stems(root)
    assert len(stems) == SMALL.n_soundscapes and "soundscape_29201" in stems
    sample = pd.read_csv(comp / "sample_submission.csv")
    meta = pd.read_csv(comp / "train_metadata.csv")
    assert list(sample.columns) == ["row_id", *sorted(meta.primary_label.unique())]
    assert list(sample.row_id) == [f"soundscape_29201_{e}" for e in (5, 10, 15)]
    solution = pd.read_csv(root / "solution.csv")
    assert list(solution.columns) == list(sample.columns)
    expected = []
    for stem in stems:
        path = comp / "test_soundscapes" / f"{stem}.ogg"
        assert sf.info(str(path)).duration == pytest.approx(SMALL.soundscape_seconds, abs=1e-3)
        _, ends = make_windows(load_audio(path))
        assert list(ends) == list(range(5, int(SMALL.soundscape_seconds) + 1, 5))
        expected += [f"{stem}_{end}" for end in ends]
    assert list(solution.row_id) == expected
    labels = solution[CODES].to_numpy()
    assert set(np.unique(labels)) <= {0, 1}
    assert (labels.sum(axis=0) >= 1).all(), "every species calls in some soundscape window"
    assert (labels.sum(axis=1) == 0).any(), "some windows are empty"
    assert (labels.sum(axis=1) >= 2).any(), "some windows hold several species"


def test_audio_is_32k_mono_and_decodes(root):
    comp = root / "birdclef-2023"
    files = sorted((comp / "train_audio").rglob("*.ogg"))
    for path in files[:6]:
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.format) == (32000, 1, "OGG")
        wave = load_audio(path)
        assert wave.dtype == np.float32 and wave.ndim == 1
        low, high = SMALL.recording_seconds
        assert low - 0.01 <= len(wave) / 32000 <= high + 0.01
        assert 0.1 < np.abs(wave).max() < 1.0
    mp3 = next((root / "birdsong-recognition" / "train_audio").rglob("*.mp3"))
    assert sf.info(str(mp3)).samplerate == 44100  # like the real 2020 files: loaders resample
    assert load_audio(mp3).dtype == np.float32


def test_each_species_calls_in_its_own_band(root):
    """Fails if species sounded alike: the species loudest in each band is that band's owner."""
    comp = root / "birdclef-2023"
    meta = pd.read_csv(comp / "train_metadata.csv")
    energy = np.array([_band_db(load_audio(comp / "train_audio" / f)) for f in meta.filename])
    per_species = np.array([energy[meta.primary_label.to_numpy() == c].mean(0) for c in CODES])
    centred = per_species - per_species.mean(axis=0)
    assert list(centred.argmax(axis=0)) == list(range(len(CODES)))  # per band: its owner
    assert list(centred.argmax(axis=1)) == list(range(len(CODES)))  # per species: its band
    bands = [call_params(SMALL)[c].band for c in CODES]
    assert all(b1[1] < b2[0] or b2[1] < b1[0] for b1 in bands for b2 in bands if b1 != b2)
    # a secondary label means a (quieter) call of that species is really in the recording
    secondary = meta.secondary_labels.map(ast.literal_eval).to_numpy()
    for k, labels in enumerate(secondary):
        for code in labels:
            j = CODES.index(code)
            others = [i for i, s in enumerate(secondary) if code not in s]
            others = [i for i in others if meta.primary_label[i] != code]
            assert energy[k, j] > np.median(energy[others, j]) + 3.0


def test_solution_labels_follow_the_audio(root):
    """Windows labelled with a species are much louder in its band than windows without it."""
    comp = root / "birdclef-2023"
    solution = pd.read_csv(root / "solution.csv").set_index("row_id")
    rows, ids = [], []
    for stem in _stems(root):
        windows, ends = make_windows(load_audio(comp / "test_soundscapes" / f"{stem}.ogg"))
        rows += [_band_db(w) for w in windows]
        ids += [f"{stem}_{e}" for e in ends]
    energy, labels = np.array(rows), solution.loc[ids, CODES].to_numpy()
    for j in range(len(CODES)):
        on, off = energy[labels[:, j] == 1, j], energy[labels[:, j] == 0, j]
        assert on.mean() > off.mean() + 6.0, CODES[j]


def test_a_spectrum_classifier_learns_it(root):
    """Logistic regression on log spectra of training windows scores padded cmAP far above
    random scores on the soundscapes: the data is learnable, and chance is clearly lower."""
    comp = root / "birdclef-2023"
    meta = pd.read_csv(comp / "train_metadata.csv")

    def features(wave):
        frames = wave[: len(wave) // 1000 * 1000].reshape(-1, 1000) * np.hanning(1000)
        power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2)[:, :500]
        return np.log(power.reshape(len(power), 50, 10).sum(-1).mean(0) + 1e-12)

    x, y = [], []
    for row in meta.itertuples():
        windows, _ = make_windows(load_audio(comp / "train_audio" / row.filename))
        x += [features(w) for w in windows]
        y += [CODES.index(row.primary_label)] * len(windows)
    mean, std = np.mean(x, axis=0), np.std(x, axis=0)
    model = LogisticRegression(max_iter=1000).fit((np.array(x) - mean) / std, y)
    solution = pd.read_csv(root / "solution.csv")
    test = []
    for stem in _stems(root):
        windows, _ = make_windows(load_audio(comp / "test_soundscapes" / f"{stem}.ogg"))
        test += [features(w) for w in windows]
    scores = model.predict_proba((np.array(test) - mean) / std)

    def padded_cmap(pred):
        truth = np.vstack([solution[CODES].to_numpy(), np.ones((5, len(CODES)))])
        return average_precision_score(truth, np.vstack([pred, np.ones((5, len(CODES)))]))

    trained = padded_cmap(scores)
    rng = np.random.default_rng(0)
    chance = np.mean([padded_cmap(rng.random(scores.shape)) for _ in range(10)])
    assert trained > 0.85 and trained > chance + 0.1, (trained, chance)


def test_pretraining_sources_layout_and_duplicates(root):
    extras = sorted(set(species_codes(SMALL.n_species + SMALL.pretrain_extra_species)) - {*CODES})
    assert len(extras) == SMALL.pretrain_extra_species
    ids: dict[str, set[str]] = {}
    for folder, (table_name, label) in PRETRAIN.items():
        table = pd.read_csv(root / folder / table_name)
        needed = {label, "filename", "secondary_labels", "rating"}
        if label == "ebird_code":
            needed |= {"xc_id", "duration", "channels"}
        assert needed <= set(table.columns), folder
        assert sorted(table[label].unique()) == sorted([*CODES, *extras]), folder
        for code, name in zip(table[label], table.filename, strict=True):
            if folder == "birdclef-2022":
                assert re.fullmatch(rf"{code}/XC\d+\.ogg", name)
                path = root / folder / "train_audio" / name
            else:
                assert re.fullmatch(r"XC\d+\.(ogg|mp3)", name)
                sub = {"birdclef-2021": "train_short_audio", "birdsong-recognition": "train_audio"}
                split = "A-M" if code[0] <= "m" else "N-Z"
                path = root / folder / sub.get(folder, split) / code / name
            assert path.is_file(), path
        ids[folder] = set(table.filename.str.extract(r"XC(\d+)")[0])
    meta = pd.read_csv(root / "birdclef-2023" / "train_metadata.csv")
    comp_ids = set(meta.filename.str.extract(r"XC(\d+)")[0])
    pre_ids = [i for folder in PRETRAIN for i in ids[folder]]
    assert len(pre_ids) > len(set(pre_ids)), "recordings repeat across pre-training sources"
    assert comp_ids & set(pre_ids), "some 2023 recordings are also in pre-training sources"
    shared = sorted(ids["birdclef-2021"] & ids["birdclef-2022"])
    assert shared
    a = next((root / "birdclef-2021").rglob(f"XC{shared[0]}.ogg"))
    b = next((root / "birdclef-2022").rglob(f"XC{shared[0]}.ogg"))
    assert np.array_equal(load_audio(a), load_audio(b)), "same XC id, same audio"


def test_same_spec_gives_identical_files(root, tmp_path):
    make_competition(tmp_path, SMALL)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix in (".csv", ".txt"):
            assert (root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
        else:
            a, rate_a = sf.read(str(root / rel), dtype="float32")
            b, rate_b = sf.read(str(tmp_path / rel), dtype="float32")
            assert rate_a == rate_b and np.array_equal(a, b), rel


def test_other_seed_gives_other_data(tmp_path):
    make_competition(tmp_path / "a", TINY)
    make_competition(tmp_path / "b", dataclasses.replace(TINY, seed=1))
    a, b = (pd.read_csv(tmp_path / r / "birdclef-2023" / "train_metadata.csv") for r in "ab")
    assert not a.equals(b)


def test_non_empty_target_needs_overwrite(tmp_path):
    (tmp_path / "unrelated.txt").write_text("kept")
    make_competition(tmp_path, TINY)  # other files in root are fine
    assert not (tmp_path / "birdclef-2021").exists()  # no pre-training sources asked for
    stale = tmp_path / "birdclef-2023" / "stale.txt"
    stale.write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_competition(tmp_path, TINY)
    assert stale.exists()
    make_competition(tmp_path, TINY, overwrite=True)
    assert not stale.exists()
    assert (tmp_path / "unrelated.txt").read_text() == "kept"
    assert len(pd.read_csv(tmp_path / "solution.csv")) == 1


@pytest.mark.parametrize("seconds", [2.0, 5.0, 5.49, 5.5, 60.0, 598.0, 600.01, 600.5])
def test_soundscape_rows_follow_lib_audio(seconds):
    """Rows of the solution = windows inference cuts from the file (one rule, lib.audio)."""
    wave = np.zeros(int(round(seconds * 32000)), dtype=np.float32)
    assert soundscape_windows(seconds) == len(make_windows(wave)[0])
