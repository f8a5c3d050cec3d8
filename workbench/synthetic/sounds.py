"""The sounds: each species' call (a train of chirped pulses in its own band), coloured-noise
backgrounds, and Xeno-canto-like recordings of one species with quieter others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.synthetic.spec import SyntheticSpec, stream

CALL_BAND_HZ = (1200.0, 11000.0)  # centre frequencies of the species' calls are spread here


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


def draw_call(centre: float, ratio: float, rng: np.random.Generator) -> CallParams:
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
    rng = stream(spec.seed, "calls")
    lo, hi = CALL_BAND_HZ
    ratio = (hi / lo) ** (1.0 / (len(codes) - 1)) if len(codes) > 1 else 2.0
    centres = lo * ratio ** rng.permutation(len(codes)) if len(codes) > 1 else np.array([3000.0])
    return {code: draw_call(float(c), ratio, rng) for code, c in zip(codes, centres, strict=True)}


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


def background_noise(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Coloured noise (1/f^alpha, alpha 0.6-1.4: between white-ish and brown-ish), scaled so its
    RMS above 1 kHz (where the calls live) is 1: SNRs are then in-band SNRs."""
    alpha = rng.uniform(0.6, 1.4)
    size = 1 << max(int(n - 1).bit_length(), 4)  # a power of two: odd lengths FFT ~10x slower
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    spectrum *= np.where(freqs < 20.0, 0.0, np.maximum(freqs, 20.0) ** (-alpha / 2))
    in_band = np.sum(np.abs(spectrum[freqs >= 1000.0]) ** 2) * 2 / size**2  # Parseval
    return np.fft.irfft(spectrum, size)[:n] / np.sqrt(max(in_band, 1e-20))


def place_call(wave: np.ndarray, call: np.ndarray, start: int) -> None:
    """Add `call` into `wave` at sample `start`, cut at the end of `wave`."""
    start = max(start, 0)
    stop = min(len(wave), start + len(call))
    if stop > start:
        wave[start:stop] += call[: stop - start]


def gain(snr_db: float) -> float:
    return float(10.0 ** (snr_db / 20.0))


def finish(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Peak-normalise to a random level below clipping; float32 for writing."""
    peak = float(np.max(np.abs(wave))) or 1.0
    return (wave * (rng.uniform(0.3, 0.8) / peak)).astype(np.float32)


def render_recording(
    primary: str, secondary: tuple[str, ...], seconds: float, xc_id: int, spec: SyntheticSpec
) -> np.ndarray:
    """A Xeno-canto-like recording: the primary species calls with gaps of 0.2-1.5 s (so any
    5-second crop holds a call), plus 1-3 calls 6-12 dB quieter of each secondary species."""
    params, sr = call_params(spec), spec.sample_rate
    rng = stream(spec.seed, "recording", xc_id)
    wave = background_noise(int(round(seconds * sr)), rng, sr)
    snr = rng.uniform(3.0, 20.0)
    t = rng.uniform(0.0, min(0.8, 0.2 * seconds))  # a first call even in a 1-second file
    while t < seconds - 0.3:
        call = render_call(params[primary], rng, sr)
        place_call(wave, call * gain(snr + rng.uniform(-3, 3)), int(t * sr))
        t += len(call) / sr + rng.uniform(0.2, 1.5)
    for code in secondary:
        for start in rng.uniform(0.0, max(seconds - 1.0, 0.0), size=rng.integers(1, 4)):
            call = render_call(params[code], rng, sr)
            place_call(wave, call * gain(snr - rng.uniform(6.0, 12.0)), int(start * sr))
    return finish(wave, rng)
