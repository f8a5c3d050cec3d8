"""Writing the hard setting (workbench.synthetic.hard): the same folders, tables and names as
the default competition, plus BirdCLEF 2021-style `train_soundscapes` of field background and a
truth folder that says what every file holds (for tests and the benchmark, never for a
notebook).

    root/birdclef-2023/            train_audio, train_metadata.csv, test_soundscapes,
                                   sample_submission.csv, eBird_Taxonomy_v2021.csv
    root/birdsong-recognition/, birdclef-2021/, birdclef-2022/, xeno-canto-extended/
    root/birdclef-2021/train_soundscapes/ + train_soundscape_labels.csv (all `nocall`)
    root/solution.csv              the test soundscapes' 0/1 truth per 5-s window
    truth_dir/species.csv          roles and call parameters of every species
    truth_dir/recordings.csv       every training recording: species heard, species listed, SNR
    truth_dir/events.csv           every call in the test soundscapes (target or distant), SNR
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from lib.audio import write_audio
from lib.noise import SOUNDSCAPE_DIR, SOUNDSCAPE_LABELS
from workbench.synthetic.competition import claim_root
from workbench.synthetic.hard import (
    RARE_RECORDINGS,
    HardSpec,
    SpeciesRoles,
    field_background,
    focal_recording,
    hard_call_params,
    plan_activity,
    render_test_soundscape,
    species_roles,
)
from workbench.synthetic.recordings import (
    AUTHORS,
    COMPETITION,
    LICENSES,
    PRETRAIN_SOURCES,
    TYPES,
    Source,
    audio_path,
    metadata_table,
)
from workbench.synthetic.sounds import finish
from workbench.synthetic.soundscapes import soundscape_labels
from workbench.synthetic.soundscapes2021 import write_labels, write_soundscape
from workbench.synthetic.spec import WINDOW_SECONDS, make_taxonomy, stream

NOISE_LABELS, NOISE_FOLDER = SOUNDSCAPE_LABELS, SOUNDSCAPE_DIR  # BirdCLEF 2021's (lib.noise)
NOISE_SITES = ("COR", "SNE", "SSW", "COL", "KAU")
# The default setting's pre-training sources, every one in ogg at the spec's rate: mp3 encoding
# and 44.1 kHz resampling took half of the generation time; the readers' handling of the real
# formats is the default setting's job, quality is this one's.
HARD_PRETRAIN_SOURCES = tuple(
    Source(s.folder, s.table, s.audio, ".ogg", s.style) for s in PRETRAIN_SOURCES
)
P_SHARED_RECORDING = 0.15  # competition recordings also in 1-2 pre-training sources (same XC id)


def _recording_rows(spec: HardSpec, roles: SpeciesRoles) -> list[tuple[str, bool]]:
    """(primary label, in the competition) per distinct recording: the competition's, then the
    pre-training pool (shared and pre-training-only species)."""
    rng = stream(spec.seed, "hard-counts")
    rows = []
    for code in roles.competition:
        lo, hi = RARE_RECORDINGS if code in roles.rare else spec.recordings_per_species
        rows += [(code, True)] * int(rng.integers(lo, hi + 1))
    lo, hi = spec.pretrain_recordings
    for code in roles.pretrain_species:
        rows += [(code, False)] * int(rng.integers(lo, hi + 1))
    return rows


def make_hard_catalog(spec: HardSpec, roles: SpeciesRoles) -> pd.DataFrame:
    """One row per distinct recording (XC id) with the species heard in it (`others`: faint,
    any species but the primary) and those listed (`secondary`: each heard one with
    p_other_listed), plus the metadata columns metadata_table needs."""
    rng = stream(spec.seed, "hard-catalog")
    rows = _recording_rows(spec, roles)
    n = len(rows)
    everyone = sorted({*roles.competition, *roles.pretrain_extra, *roles.unlisted})
    others, listed = [], []
    for primary, _ in rows:
        heard: tuple[str, ...] = ()
        if rng.random() < spec.p_other_species:
            pool = [c for c in everyone if c != primary]
            picks = rng.choice(len(pool), size=int(rng.integers(1, 3)), replace=False)
            heard = tuple(sorted(pool[k] for k in picks))
        others.append(heard)
        listed.append(tuple(c for c in heard if rng.random() < spec.p_other_listed))
    lo, hi = spec.recording_seconds
    y, m, d = rng.integers(8, 23, n), rng.integers(1, 13, n), rng.integers(1, 29, n)
    hours, minutes = rng.integers(5, 19, n), rng.integers(0, 60, n)
    return pd.DataFrame({
        "xc_id": rng.permutation(100000 + np.cumsum(rng.integers(40, 9000, size=n))),
        "primary_label": [p for p, _ in rows], "in_2023": [c for _, c in rows],
        "others": others, "secondary": listed,
        "seconds": np.round(rng.uniform(lo, hi, size=n), 2),
        "type": [list(TYPES[i]) for i in rng.integers(len(TYPES), size=n)],
        "latitude": np.round(rng.uniform(-4.5, 4.5, size=n), 4),
        "longitude": np.round(rng.uniform(34.0, 41.5, size=n), 4),
        "author": rng.choice(AUTHORS, size=n), "license": rng.choice(LICENSES, size=n),
        "rating": rng.choice([3.0, 3.5, 4.0, 4.5, 5.0], size=n),
        "date": [f"20{a:02d}-{b:02d}-{c:02d}" for a, b, c in zip(y, m, d, strict=True)],
        "time": [f"{a:02d}:{b:02d}" for a, b in zip(hours, minutes, strict=True)],
    })  # fmt: skip


def make_hard_placements(spec: HardSpec, catalog: pd.DataFrame) -> pd.DataFrame:
    """(xc_id, source): competition recordings in the competition (15 % also in 1-2
    pre-training sources: the XC-id de-duplication must find them); each pool recording in one
    source by turn plus each other source with p=0.3."""
    rng = stream(spec.seed, "hard-placements")
    names = [s.folder for s in HARD_PRETRAIN_SOURCES]
    rows = []
    for xc in catalog.xc_id[catalog.in_2023]:
        rows.append((xc, COMPETITION.folder))
        if rng.random() < P_SHARED_RECORDING:
            picked = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
            rows += [(xc, names[k]) for k in sorted(picked)]
    pool = catalog[~catalog.in_2023]
    for xc, turn in zip(pool.xc_id, pool.groupby("primary_label").cumcount(), strict=True):
        extra = rng.random(len(names)) < 0.3
        extra[turn % len(names)] = True
        rows += [(xc, name) for name, keep in zip(names, extra, strict=True) if keep]
    return pd.DataFrame(rows, columns=["xc_id", "source"])


def write_hard_recordings(root: Path, spec: HardSpec, catalog: pd.DataFrame, placements,
                          params) -> list[float]:  # fmt: skip
    """Render each distinct recording once, write it wherever it is placed; its SNRs."""
    sources = {s.folder: s for s in (COMPETITION, *HARD_PRETRAIN_SOURCES)}
    where = placements.groupby("xc_id").source.apply(list).to_dict()
    snrs = []
    for row in catalog.itertuples(index=False):
        rng = stream(spec.seed, "hard-recording", int(row.xc_id))
        wave, snr = focal_recording(row.primary_label, row.others, row.seconds, rng, params, spec)
        snrs.append(snr)
        for name in where.get(row.xc_id, []):
            source = sources[name]
            path = root / name / audio_path(source, row.primary_label, int(row.xc_id))
            write_audio(path, wave, spec.sample_rate)
    return snrs


def write_test(comp: Path, root: Path, spec: HardSpec, roles, params) -> pd.DataFrame:
    """test_soundscapes/*.ogg, root/solution.csv, sample_submission.csv; the calls (events)."""
    rng = stream(spec.test_seed, "hard-names", spec.seed)
    numbers = rng.choice(np.arange(10000, 99999), size=spec.n_soundscapes, replace=False)
    stems = sorted(f"soundscape_{n}" for n in numbers)
    codes = list(roles.competition)
    frames, events = [], []
    for index, (stem, active) in enumerate(zip(stems, plan_activity(spec, roles), strict=True)):
        wave, calls = render_test_soundscape(active, index, params, roles, spec)
        write_audio(comp / "test_soundscapes" / f"{stem}.ogg", wave, spec.sample_rate)
        targets = [(c, s, e) for c, s, e, _, kind in calls if kind == "target"]
        labels = soundscape_labels(targets, spec.soundscape_seconds, codes, spec.sample_rate)
        frame = pd.DataFrame(labels, columns=codes)
        ends = (np.arange(1, len(labels) + 1) * WINDOW_SECONDS).round().astype(int)
        frame.insert(0, "row_id", [f"{stem}_{end}" for end in ends])
        frames.append(frame)
        events += [(stem, *call) for call in calls]
    pd.concat(frames, ignore_index=True).to_csv(root / "solution.csv", index=False)
    sample = frames[0].head(3).copy()
    sample[codes] = 0.0
    sample.to_csv(comp / "sample_submission.csv", index=False)
    columns = ["soundscape", "species", "start", "end", "snr_db", "kind"]
    return pd.DataFrame(events, columns=columns)


def write_noise_soundscapes(folder: Path, spec: HardSpec) -> None:
    """BirdCLEF 2021-style train_soundscapes of field background only, every window `nocall`."""
    rng = stream(spec.seed, "hard-noise-names")
    rows = []
    for index in range(spec.n_noise_soundscapes):
        audio_id, site = int(rng.integers(1000, 99999)), NOISE_SITES[index % len(NOISE_SITES)]
        wave_rng = stream(spec.seed, "hard-noise", index)
        wave = finish(field_background(spec.noise_soundscape_seconds, wave_rng, spec.sample_rate),
                      wave_rng)  # fmt: skip
        date = f"2019{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
        write_soundscape(folder, (audio_id, site, date), wave, spec.sample_rate)
        for end in range(5, int(spec.noise_soundscape_seconds) + 1, 5):
            rows.append((f"{audio_id}_{site}_{end}", site, audio_id, end, "nocall"))
    write_labels(folder, rows)


def species_table(roles: SpeciesRoles, params: dict, catalog: pd.DataFrame) -> pd.DataFrame:
    """truth_dir/species.csv: one row per species, its roles, recordings and call."""
    twin = {b: a for a, b in roles.lookalikes} | {a: b for a, b in roles.lookalikes}
    counts = catalog.groupby(["primary_label", "in_2023"]).size()
    rows = []
    for code in sorted(params):
        call = asdict(params[code])
        band_lo, band_hi = call.pop("band")
        rows.append({
            "species": code, "competition": code in roles.competition,
            "rare": code in roles.rare, "absent": code in roles.absent,
            "lookalike_of": twin.get(code, ""), "pretrain": code in roles.pretrain_species,
            "unlisted": code in roles.unlisted,
            "train_recordings": int(counts.get((code, True), 0)),
            "pretrain_recordings": int(counts.get((code, False), 0)),
            "band_lo": band_lo, "band_hi": band_hi, **call,
        })  # fmt: skip
    return pd.DataFrame(rows)


def make_hard_test(root: str | Path, spec: HardSpec) -> Path:
    """Only the test of `spec` (test_soundscapes, sample_submission.csv, solution.csv) in root:
    another draw (`spec.test_seed`) of the test of the same world, to measure how much a score
    moves with the test alone. Returns root/birdclef-2023."""
    root = Path(root)
    comp = root / COMPETITION.folder
    if (comp / "test_soundscapes").exists():
        shutil.rmtree(comp / "test_soundscapes")
    comp.mkdir(parents=True, exist_ok=True)
    roles = species_roles(spec)
    write_test(comp, root, spec, roles, hard_call_params(spec, roles))
    return comp


def make_hard_competition(
    root: str | Path,
    spec: HardSpec = HardSpec(),  # noqa: B008 (frozen: safe as a default)
    *,
    truth_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the hard setting into `root` (see the module docstring); return root/birdclef-2023.

    `truth_dir` (default root/hard_truth) receives species.csv, recordings.csv, events.csv.
    Raises FileExistsError when root already holds a competition, unless overwrite=True.
    """
    root = Path(root)
    truth = Path(truth_dir) if truth_dir is not None else root / "hard_truth"
    claim_root(root, overwrite)
    if truth.exists() and overwrite:
        shutil.rmtree(truth)
    comp = root / COMPETITION.folder
    comp.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    roles = species_roles(spec)
    params = hard_call_params(spec, roles)
    catalog = make_hard_catalog(spec, roles)
    placements = make_hard_placements(spec, catalog)
    taxonomy = make_taxonomy(len(params) + 4)
    catalog["snr_db"] = write_hard_recordings(root, spec, catalog, placements, params)
    for source in (COMPETITION, *HARD_PRETRAIN_SOURCES):
        rows = catalog[catalog.xc_id.isin(placements.xc_id[placements.source == source.folder])]
        table = metadata_table(source, rows, taxonomy, spec.sample_rate)
        table.to_csv(root / source.folder / source.table, index=False)
    write_noise_soundscapes(root / "birdclef-2021", spec)
    events = write_test(comp, root, spec, roles, params)
    taxonomy.to_csv(comp / "eBird_Taxonomy_v2021.csv", index=False)
    species_table(roles, params, catalog).to_csv(truth / "species.csv", index=False)
    sources = placements.groupby("xc_id").source.apply(lambda s: " ".join(sorted(s)))
    recordings = catalog[["xc_id", "primary_label", "in_2023", "others", "secondary", "seconds",
                          "snr_db"]].assign(sources=catalog.xc_id.map(sources))  # fmt: skip
    recordings.assign(
        others=[" ".join(o) for o in recordings.others],
        secondary=[" ".join(s) for s in recordings.secondary],
    ).to_csv(truth / "recordings.csv", index=False)
    events.to_csv(truth / "events.csv", index=False)
    (root / "README_synthetic.txt").write_text(
        "Synthetic BirdCLEF 2023-shaped data, HARD setting (workbench/synthetic/hard.py; not "
        f"real bird sounds).\nSpec: {spec}\nFolders: see workbench/synthetic/hard_competition.py."
        f"\nTruth of every file: {truth}\n"
    )
    return comp
