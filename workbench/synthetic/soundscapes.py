"""The hidden test: soundscapes with planned calls, their 0/1 labels per 5-second window (the
solution), and the sample submission."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio import window_count, write_audio
from workbench.synthetic.sounds import (
    background_noise,
    call_params,
    finish,
    gain,
    place_call,
    render_call,
)
from workbench.synthetic.spec import WINDOW_SECONDS, SyntheticSpec, species_codes, stream

LABEL_OVERLAP_SECONDS = 0.5  # a call counts for a window when this much of it lies inside
P_EMPTY_WINDOW = 0.25  # share of soundscape windows planned without any call


def soundscape_windows(seconds: float, sample_rate: int = 32000) -> int:
    """Rows of a soundscape of `seconds` (as written at `sample_rate`): lib.audio's rule."""
    return window_count(int(round(seconds * sample_rate)), sample_rate, WINDOW_SECONDS)


def plan_soundscapes(spec: SyntheticSpec) -> list[list[list[str]]]:
    """Species planned per soundscape and window: some windows empty, up to 3 calls in others.

    Species are dealt from shuffled decks of all 2023 species, so each appears about equally
    often and every one appears at least once whenever there are enough windows.
    """
    codes = species_codes(spec.n_species)
    rng = stream(spec.seed, "soundscape-plan")
    per_file = soundscape_windows(spec.soundscape_seconds, spec.sample_rate)
    total = spec.n_soundscapes * per_file
    counts = rng.choice([1, 2, 3], size=total, p=[0.55, 0.3, 0.15])
    counts[rng.random(total) < P_EMPTY_WINDOW] = 0
    while counts.sum() < min(len(codes), 3 * total):  # too few calls to show every species
        counts[np.argmin(counts)] += 1
    decks = -(-int(counts.sum()) // len(codes))
    dealt = np.concatenate([rng.permutation(len(codes)) for _ in range(decks)])
    groups = np.split(dealt[: counts.sum()], np.cumsum(counts)[:-1])
    windows = [[codes[i] for i in group] for group in groups]
    return [windows[k * per_file : (k + 1) * per_file] for k in range(spec.n_soundscapes)]


def render_soundscape(
    plan: list[list[str]], index: int, spec: SyntheticSpec
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Audio of one soundscape and its calls as (species, start s, end s).

    Each planned call has at least 75% of its length inside its window (so it always counts
    there) and may spill into a neighbour, where it counts only with 0.5 s inside.
    """
    params, sr = call_params(spec), spec.sample_rate
    rng = stream(spec.seed, "soundscape", index)
    seconds = spec.soundscape_seconds
    wave = background_noise(int(round(seconds * sr)), rng, sr)
    events = []
    for window, codes in enumerate(plan):
        for code in codes:
            call = render_call(params[code], rng, sr)
            length = len(call) / sr
            shift = rng.uniform(-0.25 * length, WINDOW_SECONDS - 0.75 * length)
            start = window * WINDOW_SECONDS + shift
            offset = int(round(np.clip(start, 0.0, max(seconds - length, 0.0)) * sr))
            place_call(wave, call * gain(rng.uniform(0.0, 18.0)), offset)
            start = offset / sr
            events.append((code, start, start + length))
    return finish(wave, rng), events


def soundscape_labels(
    events: list[tuple[str, float, float]],
    seconds: float,
    codes: list[str],
    sample_rate: int = 32000,
) -> np.ndarray:
    """0/1 (windows, species): a call counts for a window when 0.5 s of it (or half of a
    shorter call) lies inside the window."""
    labels = np.zeros((soundscape_windows(seconds, sample_rate), len(codes)), dtype=np.int64)
    if not events:
        return labels
    species = np.array([codes.index(code) for code, _, _ in events])
    starts = np.array([start for _, start, _ in events])[:, None]
    ends = np.array([end for _, _, end in events])[:, None]
    w_start = np.arange(len(labels))[None, :] * WINDOW_SECONDS
    overlap = np.minimum(ends, w_start + WINDOW_SECONDS) - np.maximum(starts, w_start)
    need = np.minimum(LABEL_OVERLAP_SECONDS, 0.5 * (ends - starts))
    hits = overlap >= need - 1e-9  # (events, windows)
    for column in np.unique(species):
        labels[:, column] = hits[species == column].any(axis=0)
    return labels


def soundscape_numbers(spec: SyntheticSpec) -> list[int]:
    """File numbers: the first is 29201 like the real interactive one, the rest random."""
    rng = stream(spec.seed, "soundscape-names")
    others = rng.choice(np.arange(10000, 99999), size=spec.n_soundscapes, replace=False)
    numbers = [29201] + [int(n) for n in others if n != 29201]
    return numbers[: spec.n_soundscapes]


def write_soundscapes(comp: Path, solution_path: Path, spec: SyntheticSpec) -> list[str]:
    """Write test_soundscapes/*.ogg and the ground truth; return the stems in file order."""
    codes = species_codes(spec.n_species)
    stems = [f"soundscape_{n}" for n in soundscape_numbers(spec)]
    frames = []
    for index, (stem, plan) in enumerate(zip(stems, plan_soundscapes(spec), strict=True)):
        wave, events = render_soundscape(plan, index, spec)
        write_audio(comp / "test_soundscapes" / f"{stem}.ogg", wave, spec.sample_rate)
        labels = soundscape_labels(events, spec.soundscape_seconds, codes, spec.sample_rate)
        frame = pd.DataFrame(labels, columns=codes)
        ends = (np.arange(1, len(labels) + 1) * WINDOW_SECONDS).round().astype(int)
        frame.insert(0, "row_id", [f"{stem}_{end}" for end in ends])
        frames.append(frame)
    order = sorted(range(len(stems)), key=lambda k: stems[k])
    solution = pd.concat([frames[k] for k in order], ignore_index=True)
    solution.to_csv(solution_path, index=False)
    return stems


def sample_submission(stem: str, spec: SyntheticSpec) -> pd.DataFrame:
    """Like the real one: row_id then sorted species codes, the first soundscape's first rows."""
    rows = min(3, soundscape_windows(spec.soundscape_seconds, spec.sample_rate))
    ends = np.arange(1, rows + 1) * int(WINDOW_SECONDS)
    frame = pd.DataFrame(0.0, index=range(len(ends)), columns=species_codes(spec.n_species))
    frame.insert(0, "row_id", [f"{stem}_{end}" for end in ends])
    return frame
