"""BirdCLEF 2021's train soundscapes, synthetic: the noise bank's source, tested end to end.

The real competition ships `train_soundscapes/<audio_id>_<site>_<date>.ogg` (10-minute field
recordings) and `train_soundscape_labels.csv` (row_id, site, audio_id, seconds = end of the 5-s
window, birds = space-separated codes or `nocall`); lib.noise takes the `nocall` windows as
background noise. Here a few short soundscapes are rendered with the generator's species calls
in about half of the windows and only coloured background in the rest.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio import write_audio
from lib.noise import SOUNDSCAPE_DIR, SOUNDSCAPE_LABELS
from workbench.synthetic.soundscapes import (
    render_soundscape,
    soundscape_labels,
    soundscape_windows,
)
from workbench.synthetic.spec import SyntheticSpec

FOLDER = "birdclef-2021"
LABEL_COLUMNS = ["row_id", "site", "audio_id", "seconds", "birds"]
SITES = ("COR", "SNE", "SSW", "COL")  # the real 2021 recording sites
WINDOW_SECONDS = 5
_INDEX_BASE = 2021_000  # render_soundscape's random stream per index: never the test ones'


def plan_windows(spec: SyntheticSpec, index: int, n_windows: int) -> list[list[str]]:
    """Species per window of soundscape `index`: half the windows (at least 2) stay empty,
    the others hold 1-2 species of `spec.all_species`; at least one window holds a call."""
    rng = np.random.default_rng([spec.seed, _INDEX_BASE + index])
    codes = spec.all_species
    empty = rng.random(n_windows) < 0.5
    order = rng.permutation(n_windows)
    empty[order[: min(2, n_windows)]] = True  # two quiet windows at least ...
    if n_windows > 2:
        empty[order[-1]] = False  # ... and one with a call
    plan = []
    for quiet in empty:
        count = 0 if quiet else int(rng.integers(1, min(2, len(codes)) + 1))
        plan.append([codes[i] for i in rng.choice(len(codes), size=count, replace=False)])
    return plan


def _file_names(spec: SyntheticSpec, n_files: int) -> list[tuple[str, str, str]]:
    """(audio_id, site, date) per soundscape, like `10534_SSW_20170429`."""
    rng = np.random.default_rng([spec.seed, _INDEX_BASE, 1])
    ids = rng.choice(np.arange(1000, 30000), size=n_files, replace=False)
    months, days = rng.integers(1, 13, n_files), rng.integers(1, 29, n_files)
    return [
        (str(i), SITES[k % len(SITES)], f"2019{m:02d}{d:02d}")
        for k, (i, m, d) in enumerate(zip(ids, months, days, strict=True))
    ]


def write_birdclef2021_soundscapes(
    root: str | Path, spec: SyntheticSpec, n_files: int = 2, seconds: float = 60.0
) -> Path:
    """Write `n_files` soundscapes of `seconds` into root/birdclef-2021 and their labels.

    Labels follow the generator's rule (a call counts in a window with 0.5 s inside it), so
    a `nocall` window may hold a call's short spill, as real ones may. Returns the labels path.
    """
    if n_files < 1 or seconds < WINDOW_SECONDS:
        raise ValueError(f"write_birdclef2021_soundscapes: need n_files >= 1 and seconds >= 5, "
                         f"got {n_files} and {seconds}")  # fmt: skip
    folder = Path(root) / FOLDER
    spec = dataclasses.replace(spec, soundscape_seconds=float(seconds))
    codes, n_windows = spec.all_species, soundscape_windows(seconds)
    rows = []
    for index, (audio_id, site, date) in enumerate(_file_names(spec, n_files)):
        plan = plan_windows(spec, index, n_windows)
        wave, events = render_soundscape(plan, _INDEX_BASE + index, spec)
        write_soundscape(folder, (audio_id, site, date), wave, spec.sample_rate)
        labels = soundscape_labels(events, seconds, codes)  # (windows, species) 0/1
        for window, present in enumerate(labels):
            birds = " ".join(c for c, on in zip(codes, present, strict=True) if on) or "nocall"
            end = WINDOW_SECONDS * (window + 1)
            rows.append((f"{audio_id}_{site}_{end}", site, int(audio_id), end, birds))
    return write_labels(folder, rows)


def write_soundscape(folder: Path, name: tuple, wave, sample_rate: int) -> Path:
    """One soundscape as BirdCLEF 2021 names it: train_soundscapes/<audio_id>_<site>_<date>.ogg."""
    audio_id, site, date = name
    path = folder / SOUNDSCAPE_DIR / f"{audio_id}_{site}_{date}.ogg"
    write_audio(path, wave, sample_rate)
    return path


def write_labels(folder: Path, rows: list[tuple]) -> Path:
    """train_soundscape_labels.csv from (row_id, site, audio_id, seconds, birds) rows."""
    path = folder / SOUNDSCAPE_LABELS
    pd.DataFrame(rows, columns=LABEL_COLUMNS).to_csv(path, index=False)
    return path
