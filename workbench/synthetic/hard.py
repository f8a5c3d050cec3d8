"""The hard setting of the synthetic competition: BirdCLEF's domain shift, so that a score can
move. The default setting is saturated (every fold 1.000); this one is not.

What makes it hard, each part a field of `HardSpec`:
- training recordings are focal: one species loud (`focal_snr_db`), other species faint
  (`faint_snr_db`) and listed in `secondary_labels` only sometimes (`p_other_listed`);
- test soundscapes are long and noisy: a field background whose level drifts, insect bands
  that come and go, wind gusts; distant calls of species outside the competition
  (`distant_snr_db`); target calls in bouts at low, varying SNR (`target_snr_db`), overlapping
  across species, cut at window edges wherever they fall;
- look-alike species pairs (`lookalike_pairs`): the same call 3-5 % higher and with longer or
  shorter pulses; rare species (`rare_species`, 2-5 recordings); species absent from the test
  (`absent_species`); calls drawn anywhere in 1.2-11 kHz, so bands overlap;
- pre-training sources hold `pretrain_shared` of the competition's species and
  `pretrain_extra_species` more, so pre-training can help;
- BirdCLEF 2021-style `train_soundscapes` of field background labelled `nocall`: the noise a
  competitor would mix into training (lib.noise reads them).

SNRs are in-band (above 1 kHz): a call's pulse RMS against the background's in-band RMS
(workbench.synthetic.sounds.background_noise). `seed` draws the world (species, calls,
training data); `test_seed` only the test soundscapes, so one trained model can be scored on
several test draws (the spread of the score). Writing: workbench.synthetic.hard_competition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.synthetic.sounds import (
    CallParams,
    background_noise,
    draw_call,
    finish,
    gain,
    place_call,
    render_call,
)
from workbench.synthetic.spec import species_codes, stream

HARD_CALL_BAND_HZ = (1200.0, 11000.0)  # call centres are drawn log-uniformly in here
HARD_BAND_RATIO = 1.3  # draw_call's spacing: each band spans about +-8 % of its centre
LOOKALIKE_PITCH = (0.03, 0.05)  # a look-alike's call is this much higher or lower
LOOKALIKE_PULSE = (1.2, 1.35)  # and its pulses this much longer (or shorter: 1 / x)
RARE_RECORDINGS = (2, 5)  # a rare species' recordings (inclusive)


@dataclass(frozen=True)
class HardSpec:
    n_species: int = 16
    recordings_per_species: tuple[int, int] = (6, 12)  # non-rare species, inclusive
    recording_seconds: tuple[float, float] = (6.0, 16.0)
    rare_species: int = 3
    lookalike_pairs: int = 3
    absent_species: int = 2  # competition species that never call in the test soundscapes
    pretrain_shared: int = 8  # competition species also recorded in the pre-training sources
    pretrain_extra_species: int = 8  # species only in the pre-training sources
    pretrain_recordings: tuple[int, int] = (6, 10)  # per species in the pre-training pool
    unlisted_species: int = 3  # heard only as distant calls in the soundscapes
    n_soundscapes: int = 24
    soundscape_seconds: float = 120.0
    target_snr_db: tuple[float, float] = (-3.0, 12.0)  # per bout, +-3 dB per call (clipped)
    distant_snr_db: tuple[float, float] = (-12.0, -3.0)
    focal_snr_db: tuple[float, float] = (10.0, 25.0)
    faint_snr_db: tuple[float, float] = (-6.0, 3.0)  # other species in a training recording
    p_other_species: float = 0.5  # recordings in which 1-2 other species call faintly
    p_other_listed: float = 0.4  # each such species is in secondary_labels with this p
    n_noise_soundscapes: int = 6  # birdclef-2021 train_soundscapes (field background, nocall)
    noise_soundscape_seconds: float = 60.0
    sample_rate: int = 32000
    seed: int = 0
    test_seed: int = 0

    def __post_init__(self) -> None:
        """Reject specs that cannot give every role its species, naming the field."""
        special = self.rare_species + 2 * self.lookalike_pairs + self.absent_species
        checks = {
            "n_species must be >= rare_species + 2 * lookalike_pairs + absent_species + 1":
                self.n_species > special,
            "recordings_per_species must be 6 <= lo <= hi (rare species have 2-5)":
                6 <= self.recordings_per_species[0] <= self.recordings_per_species[1],
            "recording_seconds must be 5 <= lo <= hi":
                5.0 <= self.recording_seconds[0] <= self.recording_seconds[1],
            "pretrain_shared must be in [0, n_species]":
                0 <= self.pretrain_shared <= self.n_species,
            "pretrain_recordings must be 1 <= lo <= hi":
                1 <= self.pretrain_recordings[0] <= self.pretrain_recordings[1],
            "soundscape_seconds must be >= 30": self.soundscape_seconds >= 30.0,
            "n_soundscapes must be >= 1": self.n_soundscapes >= 1,
            "sample_rate must be >= 32000": self.sample_rate >= 32000,
            "seed and test_seed must be >= 0": min(self.seed, self.test_seed) >= 0,
        }  # fmt: skip
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid HardSpec: {'; '.join(failed)} (got {self})")


@dataclass(frozen=True)
class SpeciesRoles:
    """Who is who. `competition`: the 2023 species (sorted); `pretrain_extra` and `unlisted`
    are never competition species; `lookalikes` pairs (original, look-alike)."""

    competition: tuple[str, ...]
    rare: tuple[str, ...]
    lookalikes: tuple[tuple[str, str], ...]
    absent: tuple[str, ...]
    pretrain_shared: tuple[str, ...]
    pretrain_extra: tuple[str, ...]
    unlisted: tuple[str, ...]

    @property
    def in_test(self) -> tuple[str, ...]:
        return tuple(c for c in self.competition if c not in self.absent)

    @property
    def pretrain_species(self) -> tuple[str, ...]:
        return tuple(sorted((*self.pretrain_shared, *self.pretrain_extra)))

    @property
    def distant(self) -> tuple[str, ...]:
        """Species whose calls are heard far away in the soundscapes, never scored."""
        return tuple(sorted((*self.pretrain_extra, *self.unlisted)))


def species_roles(spec: HardSpec) -> SpeciesRoles:
    """Deal the roles from one shuffle of the competition species: rare, look-alike pairs and
    absent species are disjoint; the shared pre-training species include a rare one and one
    side of a look-alike pair whenever there is room."""
    n, extra = spec.n_species, spec.pretrain_extra_species
    competition = species_codes(n)
    pretrain_extra = sorted(set(species_codes(n + extra)) - set(competition))
    unlisted = sorted(set(species_codes(n + extra + spec.unlisted_species))
                      - set(competition) - set(pretrain_extra))  # fmt: skip
    rng = stream(spec.seed, "hard-roles")
    order = [competition[k] for k in rng.permutation(n)]
    rare = order[: spec.rare_species]
    paired = order[spec.rare_species : spec.rare_species + 2 * spec.lookalike_pairs]
    pairs = tuple((paired[2 * k], paired[2 * k + 1]) for k in range(spec.lookalike_pairs))
    cut = spec.rare_species + 2 * spec.lookalike_pairs
    absent = order[cut : cut + spec.absent_species]
    first = [*rare[:1], *(p[1] for p in pairs[:1])]  # share a rare one and one look-alike
    rest = [c for c in order if c not in first]
    shared = (first + rest)[: spec.pretrain_shared]
    return SpeciesRoles(
        tuple(competition), tuple(sorted(rare)), pairs, tuple(sorted(absent)),
        tuple(sorted(shared)), tuple(pretrain_extra), tuple(unlisted),
    )  # fmt: skip


def lookalike_call(p: CallParams, rng: np.random.Generator) -> CallParams:
    """The same call 3-5 % higher or lower, with pulses 1.2-1.35 x longer or shorter (the
    gaps take up the difference, so the call lasts about as long)."""
    pitch = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(*LOOKALIKE_PITCH)
    stretch = rng.uniform(*LOOKALIKE_PULSE)
    stretch = stretch if rng.random() < 0.5 else 1.0 / stretch
    pulse = p.pulse_seconds * stretch
    gap = max(p.gap_seconds + p.pulse_seconds - pulse, 0.02)
    return CallParams(
        band=(p.band[0] * pitch, p.band[1] * pitch),
        f_start=p.f_start * pitch,
        f_end=p.f_end * pitch,
        vibrato_hz=p.vibrato_hz,
        vibrato_depth=p.vibrato_depth * pitch,
        pulse_seconds=float(pulse),
        gap_seconds=float(gap),
        n_pulses=p.n_pulses,
        harmonic=p.harmonic,
    )


def hard_call_params(spec: HardSpec, roles: SpeciesRoles) -> dict[str, CallParams]:
    """Every species' call (competition, pre-training-only, unlisted): centres log-uniform
    over 1.2-11 kHz, so bands may overlap; a look-alike copies its original's call."""
    rng = stream(spec.seed, "hard-calls")
    codes = sorted({*roles.competition, *roles.pretrain_extra, *roles.unlisted})
    lo, hi = np.log(HARD_CALL_BAND_HZ)
    params = {c: draw_call(float(np.exp(rng.uniform(lo, hi))), HARD_BAND_RATIO, rng) for c in codes}
    for original, twin in roles.lookalikes:
        params[twin] = lookalike_call(params[original], rng)
    return params


# --- sounds -----------------------------------------------------------------------------------


def _smooth_envelope(n: int, step: int, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of `values` placed every `step` samples, length n."""
    knots = np.arange(len(values)) * step
    return np.interp(np.arange(n), knots, values)


def _band_noise(n: int, rng: np.random.Generator, sr: int, lo: float, hi: float) -> np.ndarray:
    """White noise kept between lo and hi Hz (FFT mask), RMS 1. For short stretches."""
    size = 1 << max(int(n - 1).bit_length(), 4)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    spectrum[(freqs < lo) | (freqs > hi)] = 0.0
    wave = np.fft.irfft(spectrum, size)[:n]
    return wave / max(float(np.sqrt(np.mean(wave**2))), 1e-12)


def _insect_band(n: int, rng: np.random.Generator, sr: int, centre: float) -> np.ndarray:
    """A drone 10 % wide around `centre`, RMS 1: a 4-s band-noise block repeated (insects are
    repetitive; one FFT over a whole long soundscape costs ~30x more)."""
    block = _band_noise(1 << 17, rng, sr, 0.95 * centre, 1.05 * centre)
    return np.resize(np.roll(block, int(rng.integers(len(block)))), n)


def field_background(seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Field-like background (float64), in-band RMS about 1 on average: coloured noise whose
    level drifts +-4 dB over seconds, 0-2 insect bands (3-9 kHz) that fade in and out, and
    low-frequency wind gusts of 1-4 s that spill into the lowest call bands."""
    n = int(round(seconds * sr))
    step = 5 * sr
    drift = rng.uniform(-4.0, 4.0, size=n // step + 2)
    wave = background_noise(n, rng, sr) * 10.0 ** (_smooth_envelope(n, step, drift) / 20.0)
    for _ in range(int(rng.integers(0, 3))):
        centre = float(np.exp(rng.uniform(np.log(3000.0), np.log(9000.0))))
        band = _insect_band(n, rng, sr, centre)
        on = (rng.random(n // (2 * step) + 2) < 0.5).astype(float)  # knots every 10 s
        wave += band * gain(rng.uniform(-8.0, 2.0)) * _smooth_envelope(n, 2 * step, on)
    for start in rng.uniform(0.0, seconds, size=int(rng.poisson(seconds / 20.0))):
        first = int(start * sr)
        length = min(int(rng.uniform(1.0, 4.0) * sr), n - first)
        if length < 16:
            continue
        gust = _band_noise(length, rng, sr, 20.0, 1500.0) * np.hanning(length)
        wave[first : first + length] += gust * gain(rng.uniform(6.0, 16.0))
    return wave


def focal_recording(
    primary: str,
    others: tuple[str, ...],
    seconds: float,
    rng: np.random.Generator,
    params: dict[str, CallParams],
    spec: HardSpec,
) -> tuple[np.ndarray, float]:
    """A focal Xeno-canto-like recording: `primary` loud (one SNR per recording, +-3 dB per
    call), gaps of 0.3-3 s (a 5-s crop may hold only part of a call), and 1-3 faint calls of
    each of `others`. Returns (float32 wave, the recording's SNR in dB)."""
    sr = spec.sample_rate
    wave = background_noise(int(round(seconds * sr)), rng, sr)
    snr = float(rng.uniform(*spec.focal_snr_db))
    t = rng.uniform(0.0, min(1.5, 0.2 * seconds))
    while t < seconds - 0.3:
        call = render_call(params[primary], rng, sr)
        place_call(wave, call * gain(snr + rng.uniform(-3.0, 3.0)), int(t * sr))
        t += len(call) / sr + rng.uniform(0.3, 3.0)
    for code in others:
        for start in rng.uniform(0.0, max(seconds - 1.0, 0.0), size=int(rng.integers(1, 4))):
            call = render_call(params[code], rng, sr)
            place_call(wave, call * gain(rng.uniform(*spec.faint_snr_db)), int(start * sr))
    return finish(wave, rng), snr


Event = tuple[str, float, float, float, str]  # species, start s, end s, SNR dB, kind


def plan_activity(spec: HardSpec, roles: SpeciesRoles) -> list[list[str]]:
    """Species active per test soundscape (3-6, like a site's birds): dealt from shuffled decks
    of the species in the test, so each is active about equally often and at least once
    whenever there are enough slots."""
    rng = stream(spec.test_seed, "hard-activity", spec.seed)
    present = list(roles.in_test)
    sizes = rng.integers(3, 7, size=spec.n_soundscapes)
    decks = -(-int(sizes.sum()) // len(present)) + 1
    dealt = [present[k] for _ in range(decks) for k in rng.permutation(len(present))]
    plans, used = [], 0
    for size in sizes:
        chosen: list[str] = []
        while len(chosen) < min(size, len(present)):
            code = dealt[used]
            used += 1
            if code not in chosen:
                chosen.append(code)
        plans.append(sorted(chosen))
    return plans


def render_test_soundscape(
    active: list[str],
    index: int,
    params: dict[str, CallParams],
    roles: SpeciesRoles,
    spec: HardSpec,
) -> tuple[np.ndarray, list[Event]]:
    """One test soundscape and every call in it. Each active species sings 1 + Poisson(seconds
    / 60) bouts of 1-3 calls (0.3-3 s apart) at one SNR per bout +-3 dB per call (many short,
    independent bouts: the score depends less on a few long ones); distant species call alone
    (one every ~10 s on average). Calls fall anywhere: across window edges, over each other,
    cut by the end."""
    sr, seconds = spec.sample_rate, spec.soundscape_seconds
    rng = stream(spec.test_seed, "hard-soundscape", spec.seed, index)
    wave = field_background(seconds, rng, sr)
    events: list[Event] = []

    def add(code: str, start: float, snr: float, kind: str) -> float:
        call = render_call(params[code], rng, sr)
        place_call(wave, call * gain(snr), int(start * sr))
        end = min(start + len(call) / sr, seconds)
        events.append((code, float(start), float(end), float(snr), kind))
        return end

    lo, hi = spec.target_snr_db
    for code in active:
        for _ in range(1 + int(rng.poisson(seconds / 60.0))):
            snr = rng.uniform(lo, hi)
            t = rng.uniform(0.0, seconds - 2.0)
            for _ in range(int(rng.integers(1, 4))):
                if t >= seconds - 0.5:
                    break
                call_snr = float(np.clip(snr + rng.uniform(-3.0, 3.0), lo, hi))
                t = add(code, t, call_snr, "target") + rng.uniform(0.3, 3.0)
    if roles.distant:
        for start in rng.uniform(0.0, seconds - 0.5, size=int(rng.poisson(seconds / 10.0))):
            code = roles.distant[int(rng.integers(len(roles.distant)))]
            add(code, float(start), rng.uniform(*spec.distant_snr_db), "distant")
    events.sort(key=lambda e: (e[1], e[0]))
    return finish(wave, rng), events
