"""A small synthetic competition shaped exactly like BirdCLEF 2023 (files, names, columns).

Why: every stage of the toolkit (loading, folds, pre-training, fine-tuning, export, inference,
scoring) must run end to end without the 5 GB real data and without internet, and the run must
say something: each species gets a distinct, learnable call (its own frequency band, sweep,
rhythm and timbre), so a small log-mel CNN learns it in a few epochs and scores well above an
untrained one on the padded cmAP of the hidden soundscapes.

Everything is drawn from `SyntheticSpec.seed`; each recording and soundscape draws from its own
random stream (keyed by its XC id or index), so the same spec gives byte-identical CSVs and
identical decoded audio. Import has no side effects: notebooks inline this file.
"""

from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soxr

from lib.audio import write_audio

_SYN_WINDOW_SECONDS = 5.0
_SYN_MIN_TAIL_SECONDS = 0.5  # as lib.audio.make_windows: a shorter soundscape tail gets no row
_SYN_LABEL_OVERLAP_SECONDS = 0.5  # a call counts for a window when this much of it lies inside
_SYN_CALL_BAND_HZ = (1200.0, 11000.0)  # centre frequencies of the species' calls are spread here
_SYN_PRETRAIN_POOL = 4  # pre-training-only recordings per species, spread over the sources
_SYN_P_SECONDARY = 0.3  # share of recordings with a quieter call of a second species
_SYN_P_EMPTY_WINDOW = 0.25  # share of soundscape windows planned without any call

_SYN_METADATA_2023 = [
    "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
    "common_name", "author", "license", "rating", "url", "filename",
]  # fmt: skip
_SYN_METADATA_2021 = [
    "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
    "common_name", "author", "date", "filename", "license", "rating", "time", "url",
]  # fmt: skip
_SYN_METADATA_2022 = [
    "primary_label", "secondary_labels", "type", "latitude", "longitude", "scientific_name",
    "common_name", "author", "license", "rating", "time", "url", "filename",
]  # fmt: skip
_SYN_METADATA_2020 = [  # the real 2020 train.csv order, with its less useful columns left out
    "rating", "playback_used", "ebird_code", "channels", "date", "duration", "filename",
    "species", "secondary_labels", "sci_name", "latitude", "sampling_rate", "type", "xc_id",
    "url", "country", "author", "primary_label", "longitude", "time", "recordist", "license",
]  # fmt: skip
_SYN_TAXONOMY_COLUMNS = [
    "TAXON_ORDER", "CATEGORY", "SPECIES_CODE", "PRIMARY_COM_NAME", "SCI_NAME", "ORDER1",
    "FAMILY", "SPECIES_GROUP", "REPORT_AS",
]  # fmt: skip


@dataclass(frozen=True)
class _SynSource:
    """One folder of recordings: where its table and audio go, and in which dialect."""

    folder: str
    table: str
    audio: str  # audio folder under `folder`; "" for the A-M / N-Z split
    suffix: str
    style: str  # "2023", "2022", "2021" or "2020" (the 2020 / Xeno-canto extended dialect)
    sample_rate: int = 0  # 0: the spec's rate (the 2020 mp3s are 44.1 kHz like the real ones)


_SYN_COMPETITION = _SynSource("birdclef-2023", "train_metadata.csv", "train_audio", ".ogg", "2023")
_SYN_PRETRAIN_SOURCES = (
    _SynSource("birdsong-recognition", "train.csv", "train_audio", ".mp3", "2020", 44100),
    _SynSource("birdclef-2021", "train_metadata.csv", "train_short_audio", ".ogg", "2021"),
    _SynSource("birdclef-2022", "train_metadata.csv", "train_audio", ".ogg", "2022"),
    _SynSource("xeno-canto-extended", "train_extended.csv", "", ".mp3", "2020"),
)

# (code part, English word, Latin epithet) and (code part, English word, genus, family,
# species group, order): species codes, names and taxonomy are built from these.
_SYN_ADJECTIVES = (
    ("abe", "Abyssinian", "abyssinicus"), ("afr", "African", "africanus"),
    ("bla", "Black", "niger"), ("blu", "Blue", "caeruleus"), ("bro", "Brown", "brunneus"),
    ("cap", "Cape", "capensis"), ("com", "Common", "communis"), ("eas", "Eastern", "orientalis"),
    ("gol", "Golden", "aureus"), ("gry", "Gray", "griseus"), ("gre", "Greater", "major"),
    ("lit", "Little", "minutus"), ("mou", "Mountain", "montanus"), ("nor", "Northern", "borealis"),
    ("reh", "Red-headed", "erythrocephalus"), ("ruf", "Rufous", "rufescens"),
    ("spo", "Spotted", "maculatus"), ("str", "Striped", "striatus"),
    ("whb", "White-browed", "superciliaris"), ("yel", "Yellow", "flavus"),
    ("slb", "Slender-billed", "tenuirostris"),
)  # fmt: skip
_SYN_PASSERINES = "Passeriformes"
_SYN_NOUNS = (
    ("thr", "Thrush", "Turdus", "Turdidae (Thrushes and Allies)", "Thrushes", _SYN_PASSERINES),
    ("fin", "Finch", "Serinus", "Fringillidae (Finches, Euphonias, and Allies)", "Finches",
     _SYN_PASSERINES),
    ("spa", "Sparrow", "Passer", "Passeridae (Old World Sparrows)", "Sparrows", _SYN_PASSERINES),
    ("dov", "Dove", "Streptopelia", "Columbidae (Pigeons and Doves)", "Pigeons and Doves",
     "Columbiformes"),
    ("owl", "Owlet", "Glaucidium", "Strigidae (Owls)", "Owls", "Strigiformes"),
    ("kin", "Kingfisher", "Halcyon", "Alcedinidae (Kingfishers)", "Kingfishers",
     "Coraciiformes"),
    ("bul", "Bulbul", "Pycnonotus", "Pycnonotidae (Bulbuls)", "Bulbuls", _SYN_PASSERINES),
    ("sun", "Sunbird", "Cinnyris", "Nectariniidae (Sunbirds and Spiderhunters)", "Sunbirds",
     _SYN_PASSERINES),
    ("wea", "Weaver", "Ploceus", "Ploceidae (Weavers and Allies)", "Weavers", _SYN_PASSERINES),
    ("rob", "Robin-Chat", "Cossypha", "Muscicapidae (Old World Flycatchers)", "Chats",
     _SYN_PASSERINES),
    ("shr", "Shrike", "Lanius", "Laniidae (Shrikes)", "Shrikes", _SYN_PASSERINES),
    ("cis", "Cisticola", "Cisticola", "Cisticolidae (Cisticolas and Allies)", "Cisticolas",
     _SYN_PASSERINES),
    ("hor", "Hornbill", "Tockus", "Bucerotidae (Hornbills)", "Hornbills", "Bucerotiformes"),
    ("bar", "Barbet", "Lybius", "Lybiidae (African Barbets)", "Barbets", "Piciformes"),
    ("sta", "Starling", "Lamprotornis", "Sturnidae (Starlings)", "Starlings", _SYN_PASSERINES),
    ("fly", "Flycatcher", "Muscicapa", "Muscicapidae (Old World Flycatchers)", "Flycatchers",
     _SYN_PASSERINES),
    ("lar", "Lark", "Mirafra", "Alaudidae (Larks)", "Larks", _SYN_PASSERINES),
    ("pip", "Pipit", "Anthus", "Motacillidae (Wagtails and Pipits)", "Pipits", _SYN_PASSERINES),
    ("cuc", "Cuckoo", "Chrysococcyx", "Cuculidae (Cuckoos)", "Cuckoos", "Cuculiformes"),
    ("tit", "Tit", "Melaniparus", "Paridae (Tits, Chickadees, and Titmice)", "Tits",
     _SYN_PASSERINES),
)  # fmt: skip
_SYN_AUTHORS = (
    "Amani Otieno", "Beatrice Wanjiru", "Chris Hollander", "Dmitri Volkov", "Esther Mwangi",
    "Frank Lambert", "Grace Achieng", "Hugo Martins", "Ines Keller", "Joseph Kamau",
)  # fmt: skip
_SYN_LICENSES = (
    "Creative Commons Attribution-NonCommercial-ShareAlike 3.0",
    "Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
    "Creative Commons Attribution-ShareAlike 4.0",
)
_SYN_TYPES = (("call",), ("song",), ("call", "song"), ("flight call",), ("alarm call", "call"))


@dataclass(frozen=True)
class SyntheticSpec:
    n_species: int = 6
    recordings_per_species: tuple[int, int] = (6, 10)  # inclusive range; draw per species
    recording_seconds: tuple[float, float] = (8.0, 20.0)
    n_soundscapes: int = 2
    soundscape_seconds: float = 60.0
    sample_rate: int = 32000
    seed: int = 0
    minor_species: int = 1  # this many species get only 1-3 recordings (like rare classes)
    with_pretrain_sources: bool = True
    pretrain_extra_species: int = 2  # species only in the pre-training sources

    def __post_init__(self) -> None:
        """Reject specs that would give a broken or degenerate competition, naming the field."""
        lo, hi = self.recordings_per_species
        checks = {
            "n_species must be >= 1": self.n_species >= 1,
            "recordings_per_species must be 1 <= lo <= hi": 1 <= lo <= hi,
            "recording_seconds must be 1 <= lo <= hi": min(self.recording_seconds) >= 1.0
            and self.recording_seconds[0] <= self.recording_seconds[1],
            "n_soundscapes must be >= 1": self.n_soundscapes >= 1,
            "soundscape_seconds must be >= 5": self.soundscape_seconds >= _SYN_WINDOW_SECONDS,
            "sample_rate must be >= 32000 (calls reach 14 kHz)": self.sample_rate >= 32000,
            "seed must be >= 0": self.seed >= 0,
            "minor_species must be in [0, n_species]": 0 <= self.minor_species <= self.n_species,
            "pretrain_extra_species must be >= 0": self.pretrain_extra_species >= 0,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid SyntheticSpec: {'; '.join(failed)} (got {self})")

    @property
    def all_species(self) -> list[str]:
        """2023 species plus the pre-training-only ones (sorted)."""
        extra = self.pretrain_extra_species if self.with_pretrain_sources else 0
        return species_codes(self.n_species + extra)


@dataclass(frozen=True)
class CallParams:
    """One species' call: a train of chirped pulses, always inside `band` (Hz)."""

    band: tuple[float, float]
    f_start: float  # Hz at the start of each pulse
    f_end: float  # Hz at its end (linear sweep)
    vibrato_hz: float
    vibrato_depth: float  # Hz; 0 = a clean sweep
    pulse_seconds: float
    gap_seconds: float
    n_pulses: int
    harmonic: float  # amplitude of the 2nd harmonic relative to the fundamental; 0 = none


# --- species ---------------------------------------------------------------------------------


def _syn_code_sequence(n: int) -> list[tuple[int, int, str]]:
    """First n (adjective, noun, code) in a fixed order, so species_codes(n) is prefix-stable."""
    pairs = len(_SYN_ADJECTIVES) * len(_SYN_NOUNS)
    if not 0 <= n <= pairs:
        raise ValueError(f"species_codes: n must be in [0, {pairs}], got {n}")
    order = np.random.default_rng(2023).permutation(pairs)[:n]
    out = []
    for k in order.tolist():
        a, b = divmod(k, len(_SYN_NOUNS))
        suffix = "" if (a + b) % 4 == 0 else "1"  # real codes mix 'amecro' and 'abethr1'
        out.append((a, b, _SYN_ADJECTIVES[a][0] + _SYN_NOUNS[b][0] + suffix))
    return out


def species_codes(n: int) -> list[str]:
    """n deterministic eBird-like codes ('abethr1', 'comfin'), sorted.

    The first n of one fixed sequence: species_codes(n) is a subset of species_codes(n + k), so
    the pre-training-only species never collide with the competition's.
    """
    return sorted(code for _, _, code in _syn_code_sequence(n))


def _syn_taxonomy(n: int) -> pd.DataFrame:
    """Taxonomy rows (eBird_Taxonomy_v2021 columns) of species_codes(n), by code."""
    rows = []
    for a, b, code in _syn_code_sequence(n):
        _, adjective, epithet = _SYN_ADJECTIVES[a]
        _, noun, genus, family, group, order = _SYN_NOUNS[b]
        rows.append([0, "species", code, f"{adjective} {noun}", f"{genus} {epithet}", order,
                     family, group, ""])  # fmt: skip
    table = pd.DataFrame(rows, columns=_SYN_TAXONOMY_COLUMNS).sort_values("SPECIES_CODE")
    table["TAXON_ORDER"] = 1000 + 7 * np.arange(len(table))
    return table.reset_index(drop=True)


# --- sound ----------------------------------------------------------------------------------


def _syn_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent random stream per (seed, purpose, item): order of generation is free."""
    ints = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([seed, *ints])


def _syn_draw_call(centre: float, ratio: float, rng: np.random.Generator) -> CallParams:
    """Draw one species' call around `centre`; its band spans 60% of the log spacing `ratio`."""
    half = min(ratio**0.3, 1.4)
    lo, hi = centre / half, centre * half
    depth = float(rng.uniform(0.02, 0.06) * centre) if rng.random() < 0.5 else 0.0
    depth = min(depth, 0.2 * (hi - lo))
    margin = 1.02  # room for the per-call pitch jitter of render_call
    f_start, f_end = rng.uniform(lo * margin + depth, hi / margin - depth, size=2)
    pulse, gap = float(rng.uniform(0.05, 0.25)), float(rng.uniform(0.03, 0.2))
    n_pulses = int(np.clip(round((rng.uniform(0.7, 2.2) + gap) / (pulse + gap)), 2, 40))
    with_harmonic = 2 * hi * margin < 14000 and rng.random() < 0.5
    return CallParams(
        band=(float(lo), float(hi)),
        f_start=float(f_start),
        f_end=float(f_end),
        vibrato_hz=float(rng.uniform(15.0, 60.0)),
        vibrato_depth=depth,
        pulse_seconds=pulse,
        gap_seconds=gap,
        n_pulses=n_pulses,
        harmonic=float(rng.uniform(0.15, 0.4)) if with_harmonic else 0.0,
    )


def call_params(spec: SyntheticSpec) -> dict[str, CallParams]:
    """Each species' call; centre frequencies are log-spaced over 1.2-11 kHz and shuffled, so
    the bands never overlap and the code order says nothing about pitch."""
    codes = spec.all_species
    rng = _syn_rng(spec.seed, "calls")
    lo, hi = _SYN_CALL_BAND_HZ
    ratio = (hi / lo) ** (1.0 / (len(codes) - 1)) if len(codes) > 1 else 2.0
    centres = lo * ratio ** rng.permutation(len(codes)) if len(codes) > 1 else np.array([3000.0])
    return {
        code: _syn_draw_call(float(c), ratio, rng) for code, c in zip(codes, centres, strict=True)
    }


def render_call(p: CallParams, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One call instance (float64, pulse RMS 1) with small natural jitter in pitch and rhythm."""
    scale = rng.uniform(0.985, 1.015)
    n_pulses = max(2, p.n_pulses + int(rng.integers(-1, 2)))
    size = max(int(p.pulse_seconds * rng.uniform(0.9, 1.1) * sample_rate), 16)
    gap = int(p.gap_seconds * sample_rate)
    t = np.arange(size) / sample_rate
    f0, f1 = p.f_start * scale, p.f_end * scale
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1]))
    if p.vibrato_depth:  # instantaneous frequency + depth * sin(2 pi vibrato_hz t)
        phase += p.vibrato_depth / p.vibrato_hz * (1 - np.cos(2 * np.pi * p.vibrato_hz * t))
    pulse = (np.sin(phase) + p.harmonic * np.sin(2 * phase)) * np.hanning(size)
    pulse /= np.sqrt(np.mean(pulse**2))
    period = size + gap
    call = np.zeros(n_pulses * period - gap)
    index = (np.arange(n_pulses) * period)[:, None] + np.arange(size)[None, :]
    call[index] = pulse[None, :] * rng.uniform(0.7, 1.0, size=(n_pulses, 1))
    return call


def _syn_background(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Coloured noise (1/f^alpha, alpha 0.6-1.4: between white-ish and brown-ish), scaled so its
    RMS above 1 kHz (where the calls live) is 1: SNRs are then in-band SNRs."""
    alpha = rng.uniform(0.6, 1.4)
    size = 1 << max(int(n - 1).bit_length(), 4)  # a power of two: odd lengths FFT ~10x slower
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    spectrum *= np.where(freqs < 20.0, 0.0, np.maximum(freqs, 20.0) ** (-alpha / 2))
    in_band = np.sum(np.abs(spectrum[freqs >= 1000.0]) ** 2) * 2 / size**2  # Parseval
    return np.fft.irfft(spectrum, size)[:n] / np.sqrt(max(in_band, 1e-20))


def _syn_place(wave: np.ndarray, call: np.ndarray, start: int) -> None:
    """Add `call` into `wave` at sample `start`, cut at the end of `wave`."""
    start = max(start, 0)
    stop = min(len(wave), start + len(call))
    if stop > start:
        wave[start:stop] += call[: stop - start]


def _syn_db(snr_db: float) -> float:
    return float(10.0 ** (snr_db / 20.0))


def _syn_finish(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Peak-normalise to a random level below clipping; float32 for writing."""
    peak = float(np.max(np.abs(wave))) or 1.0
    return (wave * (rng.uniform(0.3, 0.8) / peak)).astype(np.float32)


def render_recording(
    primary: str, secondary: tuple[str, ...], seconds: float, xc_id: int, spec: SyntheticSpec
) -> np.ndarray:
    """A Xeno-canto-like recording: the primary species calls with gaps of 0.2-1.5 s (so any
    5-second crop holds a call), plus 1-3 calls 6-12 dB quieter of each secondary species."""
    params, sr = call_params(spec), spec.sample_rate
    rng = _syn_rng(spec.seed, "recording", xc_id)
    wave = _syn_background(int(round(seconds * sr)), rng, sr)
    snr = rng.uniform(3.0, 20.0)
    t = rng.uniform(0.0, min(0.8, 0.2 * seconds))  # a first call even in a 1-second file
    while t < seconds - 0.3:
        call = render_call(params[primary], rng, sr)
        _syn_place(wave, call * _syn_db(snr + rng.uniform(-3, 3)), int(t * sr))
        t += len(call) / sr + rng.uniform(0.2, 1.5)
    for code in secondary:
        for start in rng.uniform(0.0, max(seconds - 1.0, 0.0), size=rng.integers(1, 4)):
            call = render_call(params[code], rng, sr)
            _syn_place(wave, call * _syn_db(snr - rng.uniform(6.0, 12.0)), int(start * sr))
    return _syn_finish(wave, rng)


# --- soundscapes ----------------------------------------------------------------------------


def soundscape_windows(seconds: float) -> int:
    """Rows of a soundscape of `seconds`: the rule of lib.audio.make_windows."""
    full, tail = divmod(seconds, _SYN_WINDOW_SECONDS)
    return max(int(full) + (1 if tail >= _SYN_MIN_TAIL_SECONDS - 1e-9 else 0), 1)


def _syn_plan_soundscapes(spec: SyntheticSpec) -> list[list[list[str]]]:
    """Species planned per soundscape and window: some windows empty, up to 3 calls in others.

    Species are dealt from shuffled decks of all 2023 species, so each appears about equally
    often and every one appears at least once whenever there are enough windows.
    """
    codes = species_codes(spec.n_species)
    rng = _syn_rng(spec.seed, "soundscape-plan")
    per_file = soundscape_windows(spec.soundscape_seconds)
    total = spec.n_soundscapes * per_file
    counts = rng.choice([1, 2, 3], size=total, p=[0.55, 0.3, 0.15])
    counts[rng.random(total) < _SYN_P_EMPTY_WINDOW] = 0
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
    rng = _syn_rng(spec.seed, "soundscape", index)
    seconds = spec.soundscape_seconds
    wave = _syn_background(int(round(seconds * sr)), rng, sr)
    events = []
    for window, codes in enumerate(plan):
        for code in codes:
            call = render_call(params[code], rng, sr)
            length = len(call) / sr
            shift = rng.uniform(-0.25 * length, _SYN_WINDOW_SECONDS - 0.75 * length)
            start = window * _SYN_WINDOW_SECONDS + shift
            offset = int(round(np.clip(start, 0.0, max(seconds - length, 0.0)) * sr))
            _syn_place(wave, call * _syn_db(rng.uniform(0.0, 18.0)), offset)
            start = offset / sr
            events.append((code, start, start + length))
    return _syn_finish(wave, rng), events


def soundscape_labels(
    events: list[tuple[str, float, float]], seconds: float, codes: list[str]
) -> np.ndarray:
    """0/1 (windows, species): a call counts for a window when 0.5 s of it (or half of a
    shorter call) lies inside the window."""
    labels = np.zeros((soundscape_windows(seconds), len(codes)), dtype=np.int64)
    if not events:
        return labels
    species = np.array([codes.index(code) for code, _, _ in events])
    starts = np.array([start for _, start, _ in events])[:, None]
    ends = np.array([end for _, _, end in events])[:, None]
    w_start = np.arange(len(labels))[None, :] * _SYN_WINDOW_SECONDS
    overlap = np.minimum(ends, w_start + _SYN_WINDOW_SECONDS) - np.maximum(starts, w_start)
    need = np.minimum(_SYN_LABEL_OVERLAP_SECONDS, 0.5 * (ends - starts))
    hits = overlap >= need - 1e-9  # (events, windows)
    for column in np.unique(species):
        labels[:, column] = hits[species == column].any(axis=0)
    return labels


def _syn_soundscape_numbers(spec: SyntheticSpec) -> list[int]:
    """File numbers: the first is 29201 like the real interactive one, the rest random."""
    rng = _syn_rng(spec.seed, "soundscape-names")
    others = rng.choice(np.arange(10000, 99999), size=spec.n_soundscapes, replace=False)
    numbers = [29201] + [int(n) for n in others if n != 29201]
    return numbers[: spec.n_soundscapes]


def _syn_write_soundscapes(comp: Path, solution_path: Path, spec: SyntheticSpec) -> list[str]:
    """Write test_soundscapes/*.ogg and the ground truth; return the stems in file order."""
    codes = species_codes(spec.n_species)
    stems = [f"soundscape_{n}" for n in _syn_soundscape_numbers(spec)]
    frames = []
    for index, (stem, plan) in enumerate(zip(stems, _syn_plan_soundscapes(spec), strict=True)):
        wave, events = render_soundscape(plan, index, spec)
        write_audio(comp / "test_soundscapes" / f"{stem}.ogg", wave, spec.sample_rate)
        labels = soundscape_labels(events, spec.soundscape_seconds, codes)
        frame = pd.DataFrame(labels, columns=codes)
        ends = (np.arange(1, len(labels) + 1) * _SYN_WINDOW_SECONDS).round().astype(int)
        frame.insert(0, "row_id", [f"{stem}_{end}" for end in ends])
        frames.append(frame)
    order = sorted(range(len(stems)), key=lambda k: stems[k])
    solution = pd.concat([frames[k] for k in order], ignore_index=True)
    solution.to_csv(solution_path, index=False)
    return stems


# --- recordings and sources -----------------------------------------------------------------


def _syn_recording_counts(spec: SyntheticSpec) -> np.ndarray:
    """Recordings per 2023 species; `minor_species` of them get only 1-3 (rare classes)."""
    rng = _syn_rng(spec.seed, "counts")
    lo, hi = spec.recordings_per_species
    counts = rng.integers(lo, hi + 1, size=spec.n_species)
    minor = rng.choice(spec.n_species, size=spec.minor_species, replace=False)
    counts[minor] = np.minimum(rng.integers(1, 4, size=len(minor)), counts[minor])
    return counts


def _syn_catalog(spec: SyntheticSpec) -> pd.DataFrame:
    """One row per distinct recording (XC id): the 2023 ones, then the pre-training pool."""
    rng = _syn_rng(spec.seed, "catalog")
    codes, all_codes = species_codes(spec.n_species), spec.all_species
    pool = all_codes if spec.with_pretrain_sources else []
    counts = _syn_recording_counts(spec)
    primary = [*np.repeat(codes, counts).tolist(), *np.repeat(pool, _SYN_PRETRAIN_POOL).tolist()]
    n, n_2023 = len(primary), int(counts.sum())
    in_2023 = np.arange(n) < n_2023
    xc_ids = rng.permutation(100000 + np.cumsum(rng.integers(40, 9000, size=n)))
    has_secondary = rng.random(n) < _SYN_P_SECONDARY
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
        "type": [list(_SYN_TYPES[i]) for i in rng.integers(len(_SYN_TYPES), size=n)],
        "latitude": np.round(rng.uniform(-4.5, 4.5, size=n), 4),
        "longitude": np.round(rng.uniform(34.0, 41.5, size=n), 4),
        "author": rng.choice(_SYN_AUTHORS, size=n), "license": rng.choice(_SYN_LICENSES, size=n),
        "rating": rng.choice([3.0, 3.5, 4.0, 4.5, 5.0], size=n),
        "date": dates, "time": times,
    })  # fmt: skip


def _syn_placements(spec: SyntheticSpec, catalog: pd.DataFrame) -> pd.DataFrame:
    """(xc_id, source) pairs: every 2023 recording in the competition; each pre-training pool
    recording in one source by turn plus each other source with p=0.3 (repeats across sources,
    same XC id and audio); about a quarter of the 2023 recordings (at least 2) also in 1-2
    pre-training sources, as in the real data."""
    rng = _syn_rng(spec.seed, "placements")
    rows = [(xc, _SYN_COMPETITION.folder) for xc in catalog.xc_id[catalog.in_2023]]
    if not spec.with_pretrain_sources:
        return pd.DataFrame(rows, columns=["xc_id", "source"])
    names = [s.folder for s in _SYN_PRETRAIN_SOURCES]
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


def _syn_audio_path(source: _SynSource, code: str, xc_id: int) -> str:
    """Audio path inside the source folder (Xeno-canto extended splits codes A-M / N-Z)."""
    folder = source.audio or ("A-M" if code[0].lower() <= "m" else "N-Z")
    return f"{folder}/{code}/XC{xc_id}{source.suffix}"


def _syn_metadata(
    source: _SynSource, rows: pd.DataFrame, taxonomy: pd.DataFrame, sample_rate: int
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
    columns = {"2023": _SYN_METADATA_2023, "2022": _SYN_METADATA_2022, "2021": _SYN_METADATA_2021}
    frame = frame[columns.get(source.style, _SYN_METADATA_2020)]
    key = "ebird_code" if source.style == "2020" else "primary_label"
    return frame.sort_values([key, "filename"], kind="stable").reset_index(drop=True)


def _syn_write_recordings(
    root: Path, spec: SyntheticSpec, catalog: pd.DataFrame, placements: pd.DataFrame
) -> None:
    """Render each distinct recording once and write it wherever it is placed."""
    sources = {s.folder: s for s in (_SYN_COMPETITION, *_SYN_PRETRAIN_SOURCES)}
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
            path = root / name / _syn_audio_path(source, row.primary_label, row.xc_id)
            write_audio(path, out, rate)


def _syn_claim(root: Path, overwrite: bool) -> None:
    """Refuse to mix a new competition into old files; with overwrite, remove only our own."""
    names = [s.folder for s in (_SYN_COMPETITION, *_SYN_PRETRAIN_SOURCES)]
    targets = [root / n for n in (*names, "solution.csv", "README_synthetic.txt")]
    busy = [t for t in targets if t.is_file() or (t.is_dir() and any(t.iterdir()))]
    if busy and not overwrite:
        listed = ", ".join(str(t) for t in busy)
        raise FileExistsError(
            f"make_competition: {listed} already exist(s) and is not empty; "
            "pass overwrite=True to replace the synthetic competition there"
        )
    for target in busy:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def _syn_readme(spec: SyntheticSpec, stems: list[str]) -> str:
    """What each folder is, for whoever opens the root."""
    lines = [
        "Synthetic BirdCLEF 2023-shaped data made by lib/synthetic.py (not real bird sounds).",
        f"Spec: {spec}",
        "",
        "birdclef-2023/        the competition: train_audio/<label>/XC*.ogg, train_metadata.csv,",
        f"                      test_soundscapes/ ({', '.join(s + '.ogg' for s in stems)}),",
        "                      sample_submission.csv, eBird_Taxonomy_v2021.csv",
        "solution.csv          hidden ground truth of the test soundscapes (row_id + 0/1 per "
        "species)",
    ]
    if spec.with_pretrain_sources:
        lines += [
            "birdsong-recognition/ BirdCLEF 2020: train.csv + train_audio/<ebird_code>/XC*.mp3 "
            "(44.1 kHz)",
            "birdclef-2021/        train_metadata.csv + train_short_audio/<label>/XC*.ogg",
            "birdclef-2022/        train_metadata.csv + train_audio/<label>/XC*.ogg",
            "xeno-canto-extended/  train_extended.csv + A-M|N-Z/<ebird_code>/XC*.mp3",
            "Pre-training sources hold the 2023 species plus "
            f"{spec.pretrain_extra_species} more; recordings repeat across sources and with",
            "birdclef-2023 under the same XC id (de-duplicate by XC id). 2020-style tables name",
            "labels 'Genus species_Common Name' in primary_label/secondary_labels; use ebird_code.",
        ]
    return "\n".join(lines) + "\n"


def _syn_sample_submission(stem: str, spec: SyntheticSpec) -> pd.DataFrame:
    """Like the real one: row_id then sorted species codes, the first soundscape's first rows."""
    rows = min(3, soundscape_windows(spec.soundscape_seconds))
    ends = np.arange(1, rows + 1) * int(_SYN_WINDOW_SECONDS)
    frame = pd.DataFrame(0.0, index=range(len(ends)), columns=species_codes(spec.n_species))
    frame.insert(0, "row_id", [f"{stem}_{end}" for end in ends])
    return frame


def make_competition(
    root: str | Path, spec: SyntheticSpec = SyntheticSpec(), *, overwrite: bool = False
) -> Path:
    """Write the synthetic competition into root/'birdclef-2023' and return that folder.

    Also writes root/'solution.csv' (ground truth of the test soundscapes), the pre-training
    sources (root/'birdsong-recognition', 'birdclef-2021', 'birdclef-2022',
    'xeno-canto-extended') when spec.with_pretrain_sources, and root/'README_synthetic.txt'.
    Raises FileExistsError when any of these already holds files, unless overwrite=True.
    """
    root = Path(root)
    _syn_claim(root, overwrite)
    comp = root / _SYN_COMPETITION.folder
    comp.mkdir(parents=True, exist_ok=True)
    catalog = _syn_catalog(spec)
    placements = _syn_placements(spec, catalog)
    taxonomy = _syn_taxonomy(len(spec.all_species) + 4)  # like eBird's: more species than used
    _syn_write_recordings(root, spec, catalog, placements)
    pretrain = _SYN_PRETRAIN_SOURCES if spec.with_pretrain_sources else ()
    sources = (_SYN_COMPETITION, *pretrain)
    for source in sources:
        rows = catalog[catalog.xc_id.isin(placements.xc_id[placements.source == source.folder])]
        table = _syn_metadata(source, rows, taxonomy, source.sample_rate or spec.sample_rate)
        table.to_csv(root / source.folder / source.table, index=False)
    stems = _syn_write_soundscapes(comp, root / "solution.csv", spec)
    _syn_sample_submission(stems[0], spec).to_csv(comp / "sample_submission.csv", index=False)
    taxonomy.to_csv(comp / "eBird_Taxonomy_v2021.csv", index=False)
    (root / "README_synthetic.txt").write_text(_syn_readme(spec, stems))
    return comp
