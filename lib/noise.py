"""The background-noise bank: where real field background lies, never the audio itself.

The recipe marks background noise [Important]. Its best source on Kaggle is BirdCLEF 2021's
`train_soundscapes`: 10-minute field recordings whose 5-s windows `train_soundscape_labels.csv`
labels `nocall` (see shared/birdclef2023.md); an attached dataset of noise recordings adds to
it. The bank lists segments (file, offset, duration) and decodes one only when the augmentation
draws it (a 5-s crop decode costs ~3 ms), so memory stays flat however large the sources are
and the bank pickles cheaply into every loader worker.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio import AudioError, audio_info, load_audio
from lib.sources import AUDIO_SUFFIXES

LABEL_WINDOW_SECONDS = 5.0  # train_soundscape_labels.csv: `seconds` is the end of a 5-s window
NOCALL = "nocall"
SOUNDSCAPE_LABELS = "train_soundscape_labels.csv"
SOUNDSCAPE_DIR = "train_soundscapes"
_MIN_SEGMENT_SECONDS = 1.0  # a file's tail shorter than this is no segment (too little to tile)


@dataclass(frozen=True)
class NoiseSegment:
    """A stretch of background: `duration` seconds of `path` from `offset` seconds."""

    path: str
    offset: float
    duration: float
    source: str  # e.g. "birdclef-2021" or the noise folder's name, for the summary


@dataclass(frozen=True)
class NoiseBank:
    """Every background segment found, and notes on what was skipped (for the summary)."""

    segments: tuple[NoiseSegment, ...] = ()
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def seconds(self) -> float:
        return float(sum(s.duration for s in self.segments))

    @property
    def sources(self) -> dict[str, int]:
        """Segments per source, in first-seen order."""
        return dict(Counter(s.source for s in self.segments))

    def pick(self, rng: np.random.Generator) -> NoiseSegment:
        """A uniformly drawn segment; the choice depends only on `rng` (resume-reproducible)."""
        return self.segments[int(rng.integers(len(self.segments)))]

    def summary(self) -> str:
        """One line for the notebook: what background noise training will use, or that none."""
        notes = "".join(f"\n  note: {n}" for n in self.notes)
        if not self.segments:
            what = "no usable" if self.notes else "no"
            return (
                f"{what} background noise source attached: background noise is off. The recipe "
                "marks it [Important]; attach the birdclef-2021 competition (its nocall "
                "soundscape windows) or a dataset of noise recordings (NOISE_DATASET)" + notes
            )
        parts = ", ".join(f"{name} {count}" for name, count in self.sources.items())
        return (
            f"background noise bank: {len(self)} segments, {self.seconds / 3600:.2f} h "
            f"({parts})" + notes
        )

    def to_dict(self) -> dict:
        """JSON-able form (e.g. for the two-GPU training script); `from_dict` reverses it."""
        rows = [[s.path, s.offset, s.duration, s.source] for s in self.segments]
        return {"segments": rows, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, values: dict) -> NoiseBank:
        segments = tuple(NoiseSegment(str(p), float(o), float(d), str(s))
                         for p, o, d, s in values.get("segments", []))  # fmt: skip
        return cls(segments, tuple(values.get("notes", [])))


def combine_banks(*banks: NoiseBank) -> NoiseBank:
    """One bank holding every segment and note of `banks`, in order."""
    return NoiseBank(
        tuple(s for b in banks for s in b.segments), tuple(n for b in banks for n in b.notes)
    )


def load_noise(segment: NoiseSegment, sample_rate: int) -> np.ndarray:
    """Decode just this segment: mono float32 at `sample_rate`, round(duration * rate) samples.

    Raises lib.audio.AudioError naming the file when it cannot be decoded.
    """
    return load_audio(segment.path, sample_rate, offset=segment.offset, duration=segment.duration)


# --- BirdCLEF 2021 soundscapes -----------------------------------------------------------------


def _soundscape_files(audio_dir: Path) -> dict[str, str]:
    """audio_id -> file: the names are `<audio_id>_<site>_<date>.ogg`."""
    files: dict[str, str] = {}
    for entry in sorted(os.scandir(audio_dir), key=lambda e: e.name):
        if entry.is_file() and entry.name.lower().endswith(AUDIO_SUFFIXES):
            files.setdefault(entry.name.split("_", 1)[0], os.path.abspath(entry.path))
    return files


def noise_bank_from_2021(comp_2021_dir: str | Path, source: str = "birdclef-2021") -> NoiseBank:
    """The `nocall` windows of BirdCLEF 2021's train soundscapes, one 5-s segment each.

    Offsets are `seconds - 5` (the label's `seconds` is the window's end). Label rows whose
    soundscape file is missing are counted, warned about and skipped. A missing labels table or
    audio folder raises FileNotFoundError naming it.
    """
    comp = Path(comp_2021_dir)
    labels_path, audio_dir = comp / SOUNDSCAPE_LABELS, comp / SOUNDSCAPE_DIR
    for needed in (labels_path, audio_dir):
        if not needed.exists():
            raise FileNotFoundError(
                f"{source}: {needed} not found; the noise bank needs {SOUNDSCAPE_LABELS} and "
                f"{SOUNDSCAPE_DIR}/ of the birdclef-2021 competition"
            )
    labels = pd.read_csv(labels_path, dtype={"audio_id": str})
    missing_columns = [c for c in ("audio_id", "seconds", "birds") if c not in labels.columns]
    if missing_columns:
        raise KeyError(
            f"{source}: column(s) {missing_columns} missing from {labels_path} (columns: "
            f"{list(labels.columns)}); is this BirdCLEF 2021's {SOUNDSCAPE_LABELS}?"
        )
    quiet = labels[labels["birds"].astype(str).str.strip() == NOCALL]
    files = _soundscape_files(audio_dir)
    ids = quiet["audio_id"].astype(str).str.strip()
    found = ids.isin(files.keys())
    notes = []
    if not found.all():
        lost = ids[~found]
        notes.append(
            f"{source}: {len(lost)} of {len(quiet)} nocall windows have no soundscape file in "
            f"{audio_dir} (e.g. audio_id {lost.iloc[0]}); skipped"
        )
        warnings.warn(notes[-1], stacklevel=2)
    ends = pd.to_numeric(quiet["seconds"], errors="coerce")[found]
    segments = tuple(
        NoiseSegment(
            files[i], max(float(end) - LABEL_WINDOW_SECONDS, 0.0), LABEL_WINDOW_SECONDS, source
        )  # fmt: skip
        for i, end in zip(ids[found], ends, strict=True)
        if np.isfinite(end)
    )
    return NoiseBank(segments, tuple(notes))


# --- folders of noise recordings ---------------------------------------------------------------


def _file_segments(path: str, seconds: float, length: float, source: str) -> list[NoiseSegment]:
    """Consecutive `length`-s segments of a file of `seconds`; a tail >= 1 s is one more, and
    a file shorter than `length` is one segment of its own length (tiled when mixed)."""
    starts = np.arange(0.0, seconds, length)
    return [
        NoiseSegment(path, float(s), float(min(length, seconds - s)), source)
        for s in starts
        if min(length, seconds - s) >= min(_MIN_SEGMENT_SECONDS, seconds)
    ]


def noise_bank_from_files(
    paths: Sequence[str | Path], segment_seconds: float = 5.0, source: str = "noise files"
) -> NoiseBank:
    """Noise recordings cut into `segment_seconds` segments, durations from the file headers.

    A file whose header cannot be read or that holds no samples is counted, warned about and
    skipped (training must not meet it mid-epoch).
    """
    segments: list[NoiseSegment] = []
    bad: list[str] = []
    for path in paths:
        try:
            seconds = audio_info(path).seconds
        except AudioError:
            seconds = 0.0
        if seconds <= 0.0:
            bad.append(str(path))
            continue
        segments += _file_segments(os.path.abspath(path), seconds, segment_seconds, source)
    notes = ()
    if bad:
        notes = (f"{source}: {len(bad)} of {len(paths)} files unreadable or empty, skipped "
                 f"(e.g. {bad[0]})",)  # fmt: skip
        warnings.warn(notes[0], stacklevel=2)
    return NoiseBank(tuple(segments), notes)


def noise_bank_from_folder(folder: str | Path, segment_seconds: float = 5.0) -> NoiseBank:
    """Every audio file under `folder` (recursively), cut into segments; the source is named
    after the folder. A folder without audio files raises FileNotFoundError naming it."""
    folder = Path(folder)
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise FileNotFoundError(
            f"noise folder {folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found in it "
            "or below; attach a dataset of noise recordings, or set NOISE_DATASET = None"
        )
    return noise_bank_from_files(paths, segment_seconds, source=folder.name)


def find_noise_bank(
    comp_2021_dirs: Sequence[str | Path] = (),
    noise_dirs: Sequence[str | Path] = (),
    segment_seconds: float = 5.0,
) -> NoiseBank:
    """The notebook's bank: 2021's nocall windows (from each given birdclef-2021 folder that
    has both the labels table and the soundscapes; one that lacks either is noted with what is
    attached and what is missing, not an error: a copy may hold only the short recordings)
    plus every noise folder. Print `.summary()`; empty means no noise."""
    banks = []
    for comp in comp_2021_dirs:
        missing = missing_2021_parts(comp)
        if missing:
            banks.append(NoiseBank(notes=(missing,)))
        else:
            banks.append(noise_bank_from_2021(comp))
    banks += [noise_bank_from_folder(d, segment_seconds) for d in noise_dirs]
    return combine_banks(*banks)


def missing_2021_parts(comp_2021_dir: str | Path) -> str:
    """'' when a birdclef-2021 folder holds what the noise bank needs, else a note saying what
    is attached there and what is missing."""
    comp = Path(comp_2021_dir)
    labels, audio = comp / SOUNDSCAPE_LABELS, comp / SOUNDSCAPE_DIR
    if labels.is_file() and audio.is_dir():
        return ""
    if audio.is_dir():
        count = sum(1 for p in audio.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        state = f"{SOUNDSCAPE_DIR}/ ({count} files) is there but {SOUNDSCAPE_LABELS} is missing"
    elif labels.is_file():
        state = f"{SOUNDSCAPE_LABELS} is there but {SOUNDSCAPE_DIR}/ is missing"
    else:
        held = sorted(p.name for p in comp.iterdir()) if comp.is_dir() else []
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "") or "nothing"
        state = f"neither {SOUNDSCAPE_LABELS} nor {SOUNDSCAPE_DIR}/ is there (it holds {shown})"
    return (
        f"birdclef-2021 attached at {comp}, but {state}: no nocall soundscape windows from it "
        "(a copy with only the short recordings? attach the birdclef-2021 competition itself)"
    )
