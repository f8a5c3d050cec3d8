"""The training recordings: a catalogue of distinct recordings (XC ids), where each is placed
(the competition and the pre-training sources, with repeats), and each source's metadata
table in its real dialect."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soxr

from lib.audio import write_audio
from workbench.synthetic.sounds import render_recording
from workbench.synthetic.spec import SyntheticSpec, species_codes, stream

PRETRAIN_POOL = 4  # pre-training-only recordings per species, spread over the sources
P_SECONDARY = 0.3  # share of recordings with a quieter call of a second species
METADATA_2023 = [
    "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
    "common_name", "author", "license", "rating", "url", "filename",
]  # fmt: skip
METADATA_2021 = [
    "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
    "common_name", "author", "date", "filename", "license", "rating", "time", "url",
]  # fmt: skip
METADATA_2022 = [
    "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
    "common_name", "author", "license", "rating", "time", "url", "filename",
]  # fmt: skip
METADATA_2020 = [  # the real 2020 train.csv order, with its less useful columns left out
    "rating", "playback_used", "ebird_code", "channels", "date", "duration", "filename",
    "species", "secondary_labels", "sci_name", "latitude", "sampling_rate", "type", "xc_id",
    "url", "country", "author", "primary_label", "longitude", "time", "recordist", "license",
]  # fmt: skip


@dataclass(frozen=True)
class Source:
    """One folder of recordings: where its table and audio go, and in which dialect."""

    folder: str
    table: str
    audio: str  # audio folder under `folder`; "" for the A-M / N-Z split
    suffix: str
    style: str  # "2023", "2022", "2021" or "2020" (the 2020 / Xeno-canto extended dialect)
    sample_rate: int = 0  # 0: the spec's rate (the 2020 mp3s are 44.1 kHz like the real ones)


COMPETITION = Source("birdclef-2023", "train_metadata.csv", "train_audio", ".ogg", "2023")
PRETRAIN_SOURCES = (
    Source("birdsong-recognition", "train.csv", "train_audio", ".mp3", "2020", 44100),
    Source("birdclef-2021", "train_metadata.csv", "train_short_audio", ".ogg", "2021"),
    Source("birdclef-2022", "train_metadata.csv", "train_audio", ".ogg", "2022"),
    Source("xeno-canto-extended", "train_extended.csv", "", ".mp3", "2020"),
)
AUTHORS = (
    "Amani Otieno", "Beatrice Wanjiru", "Chris Hollander", "Dmitri Volkov", "Esther Mwangi",
    "Frank Lambert", "Grace Achieng", "Hugo Martins", "Ines Keller", "Joseph Kamau",
)  # fmt: skip
LICENSES = (
    "Creative Commons Attribution-NonCommercial-ShareAlike 3.0",
    "Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
    "Creative Commons Attribution-ShareAlike 4.0",
)
TYPES = (("call",), ("song",), ("call", "song"), ("flight call",), ("alarm call", "call"))


def recording_counts(spec: SyntheticSpec) -> np.ndarray:
    """Recordings per 2023 species; `minor_species` of them get only 1-3 (rare classes)."""
    rng = stream(spec.seed, "counts")
    lo, hi = spec.recordings_per_species
    counts = rng.integers(lo, hi + 1, size=spec.n_species)
    minor = rng.choice(spec.n_species, size=spec.minor_species, replace=False)
    counts[minor] = np.minimum(rng.integers(1, 4, size=len(minor)), counts[minor])
    return counts


def make_catalog(spec: SyntheticSpec) -> pd.DataFrame:
    """One row per distinct recording (XC id): the 2023 ones, then the pre-training pool."""
    rng = stream(spec.seed, "catalog")
    codes, all_codes = species_codes(spec.n_species), spec.all_species
    pool = all_codes if spec.with_pretrain_sources else []
    counts = recording_counts(spec)
    primary = [*np.repeat(codes, counts).tolist(), *np.repeat(pool, PRETRAIN_POOL).tolist()]
    n, n_2023 = len(primary), int(counts.sum())
    in_2023 = np.arange(n) < n_2023
    xc_ids = rng.permutation(100000 + np.cumsum(rng.integers(40, 9000, size=n)))
    has_secondary = rng.random(n) < P_SECONDARY
    if len(codes) > 1 and not has_secondary[:n_2023].any():
        has_secondary[0] = True  # at least one 2023 recording shows the secondary label
    secondary = []
    for k, code in enumerate(primary):
        others = [c for c in (codes if in_2023[k] else all_codes) if c != code]
        pick = others[int(rng.integers(len(others)))] if others and has_secondary[k] else None
        secondary.append((pick,) if pick else ())
    lo, hi = spec.recording_seconds
    seconds = rng.uniform(lo, hi, size=n)  # pre-training ones shorter: less to encode
    y, m, d = rng.integers(8, 23, n), rng.integers(1, 13, n), rng.integers(1, 29, n)
    dates = [f"20{a:02d}-{b:02d}-{c:02d}" for a, b, c in zip(y, m, d, strict=True)]
    hours, minutes = rng.integers(5, 19, n), rng.integers(0, 60, n)
    times = [f"{a:02d}:{b:02d}" for a, b in zip(hours, minutes, strict=True)]
    return pd.DataFrame({
        "xc_id": xc_ids, "primary_label": primary, "secondary": secondary, "in_2023": in_2023,
        "seconds": np.round(np.where(in_2023, seconds, lo + (seconds - lo) / 2), 2),
        "type": [list(TYPES[i]) for i in rng.integers(len(TYPES), size=n)],
        "latitude": np.round(rng.uniform(-4.5, 4.5, size=n), 4),
        "longitude": np.round(rng.uniform(34.0, 41.5, size=n), 4),
        "author": rng.choice(AUTHORS, size=n), "license": rng.choice(LICENSES, size=n),
        "rating": rng.choice([3.0, 3.5, 4.0, 4.5, 5.0], size=n),
        "date": dates, "time": times,
    })  # fmt: skip


def make_placements(spec: SyntheticSpec, catalog: pd.DataFrame) -> pd.DataFrame:
    """(xc_id, source) pairs: every 2023 recording in the competition; each pre-training pool
    recording in one source by turn plus each other source with p=0.3 (repeats across sources,
    same XC id and audio); about a quarter of the 2023 recordings (at least 2) also in 1-2
    pre-training sources, as in the real data."""
    rng = stream(spec.seed, "placements")
    rows = [(xc, COMPETITION.folder) for xc in catalog.xc_id[catalog.in_2023]]
    if not spec.with_pretrain_sources:
        return pd.DataFrame(rows, columns=["xc_id", "source"])
    names = [s.folder for s in PRETRAIN_SOURCES]
    pool = catalog[~catalog.in_2023]
    for xc, turn in zip(pool.xc_id, pool.groupby("primary_label").cumcount(), strict=True):
        extra = rng.random(len(names)) < 0.3
        extra[turn % len(names)] = True
        rows += [(xc, name) for name, keep in zip(names, extra, strict=True) if keep]
    shared = catalog.xc_id[catalog.in_2023].to_numpy()
    chosen = shared[rng.random(len(shared)) < 0.25]
    if len(chosen) < 2:
        chosen = shared[: min(2, len(shared))]
    for xc in chosen:
        picked = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
        rows += [(xc, names[k]) for k in sorted(picked)]
    return pd.DataFrame(rows, columns=["xc_id", "source"])


def audio_path(source: Source, code: str, xc_id: int) -> str:
    """Audio path inside the source folder (Xeno-canto extended splits codes A-M / N-Z)."""
    folder = source.audio or ("A-M" if code[0].lower() <= "m" else "N-Z")
    return f"{folder}/{code}/XC{xc_id}{source.suffix}"


def metadata_table(
    source: Source, rows: pd.DataFrame, taxonomy: pd.DataFrame, sample_rate: int
) -> pd.DataFrame:
    """The source's metadata table in its real dialect (columns, filename and label style)."""
    names = taxonomy.set_index("SPECIES_CODE")
    sci = names.SCI_NAME.to_dict()
    common = names.PRIMARY_COM_NAME.to_dict()
    codes, ids = rows.primary_label.tolist(), rows.xc_id.tolist()
    frame = pd.DataFrame({
        "primary_label": codes, "secondary_labels": [str(list(s)) for s in rows.secondary],
        "type": [str(t) for t in rows.type], "latitude": rows.latitude.to_numpy(),
        "longitude": rows.longitude.to_numpy(), "scientific_name": [sci[c] for c in codes],
        "common_name": [common[c] for c in codes], "author": rows.author.to_numpy(),
        "license": rows.license.to_numpy(), "rating": rows.rating.to_numpy(),
        "url": [f"https://www.xeno-canto.org/{xc}" for xc in ids],
        "filename": [f"{c}/XC{xc}{source.suffix}" for c, xc in zip(codes, ids, strict=True)],
        "date": rows.date.to_numpy(), "time": rows.time.to_numpy(),
    })  # fmt: skip
    if source.style == "2021":
        frame["filename"] = [f"XC{xc}{source.suffix}" for xc in ids]
    if source.style == "2020":  # labels as 'Genus species_Common Name', type a plain string
        frame["filename"] = [f"XC{xc}{source.suffix}" for xc in ids]
        frame["secondary_labels"] = [str([f"{sci[c]}_{common[c]}" for c in s])
                                     for s in rows.secondary]  # fmt: skip
        frame["type"] = [", ".join(t) for t in rows.type]
        frame = frame.assign(
            ebird_code=codes, playback_used="no", channels="1 (mono)", xc_id=ids,
            duration=rows.seconds.round().astype(int).to_numpy(), species=frame.common_name,
            sci_name=frame.scientific_name, sampling_rate=f"{sample_rate} (Hz)",
            country="Kenya", recordist=frame.author,
            primary_label=[f"{sci[c]}_{common[c]}" for c in codes],
        )  # fmt: skip
    columns = {"2023": METADATA_2023, "2022": METADATA_2022, "2021": METADATA_2021}
    frame = frame[columns.get(source.style, METADATA_2020)]
    key = "ebird_code" if source.style == "2020" else "primary_label"
    return frame.sort_values([key, "filename"], kind="stable").reset_index(drop=True)


def write_recordings(
    root: Path, spec: SyntheticSpec, catalog: pd.DataFrame, placements: pd.DataFrame
) -> None:
    """Render each distinct recording once and write it wherever it is placed."""
    sources = {s.folder: s for s in (COMPETITION, *PRETRAIN_SOURCES)}
    where = placements.groupby("xc_id").source.apply(list).to_dict()
    for row in catalog.itertuples(index=False):
        if row.xc_id not in where:
            continue
        wave = render_recording(row.primary_label, row.secondary, row.seconds, row.xc_id, spec)
        for name in where[row.xc_id]:
            source = sources[name]
            rate = source.sample_rate or spec.sample_rate
            out = wave
            if rate != spec.sample_rate:
                out = soxr.resample(wave, spec.sample_rate, rate).astype(np.float32)
            path = root / name / audio_path(source, row.primary_label, row.xc_id)
            write_audio(path, out, rate)
