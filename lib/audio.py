"""Audio in and out: decode to mono float32 at the model's rate, crop/pad, cut windows.

Decoding goes through soundfile (libsndfile: ogg vorbis, mp3, wav, flac) and resampling through
soxr; librosa is avoided on this path because its first `load` costs ~17 s of compilation in
every fresh process (notebook start, each worker).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioError(RuntimeError):
    """A file that cannot give usable audio; the message names the file."""


def load_audio(path: str | Path, sample_rate: int = 32000) -> np.ndarray:
    """Decode `path` to a mono float32 array at `sample_rate` (stereo is averaged).

    Raises AudioError naming the file when it is missing, unreadable, corrupt or empty.
    Non-finite samples are replaced by 0 so one bad sample cannot poison a whole window.
    """
    path = Path(path)
    try:
        wave, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, OSError...
        raise AudioError(f"{path}: cannot decode audio ({err})") from err
    if wave.shape[0] == 0:
        raise AudioError(f"{path}: file holds no audio samples")
    wave = wave.mean(axis=1)  # (samples, channels) -> (samples,)
    wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
    if file_rate != sample_rate:
        wave = soxr.resample(wave, file_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(wave, dtype=np.float32)


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = 32000) -> None:
    """Write mono audio; format from the suffix (.ogg vorbis, .mp3, .wav, .flac).

    Written in 10-second chunks: one long `write` of ogg vorbis crashed libsndfile 1.2.2.
    """
    path = Path(path)
    formats = {".ogg": ("OGG", "VORBIS"), ".mp3": ("MP3", "MPEG_LAYER_III")}
    fmt, subtype = formats.get(path.suffix.lower(), (None, None))
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = 10 * sample_rate
    with sf.SoundFile(
        str(path), "w", samplerate=sample_rate, channels=1, format=fmt, subtype=subtype
    ) as out:
        for start in range(0, len(wave), chunk):
            out.write(np.asarray(wave[start : start + chunk], dtype=np.float32))


def crop_or_pad(
    wave: np.ndarray, length: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Return exactly `length` samples: a random crop (rng) or the start, zero-padded at the end."""
    if len(wave) > length:
        start = int(rng.integers(0, len(wave) - length + 1)) if rng is not None else 0
        return wave[start : start + length]
    if len(wave) < length:
        return np.pad(wave, (0, length - len(wave)))
    return wave


def window_count(
    n_samples: int,
    sample_rate: int = 32000,
    window_seconds: float = 5.0,
    min_tail_seconds: float = 0.5,
) -> int:
    """How many rows (5-second windows) a file of `n_samples` samples gets: the one home of
    this rule (make_windows, the inference guard's fallback rows, the synthetic generator).

    Full windows, plus one for a tail of at least `min_tail_seconds` (a 600.01 s file must not
    grow a 121st row), and never fewer than one.
    """
    size = int(round(window_seconds * sample_rate))
    full, tail = divmod(max(int(n_samples), 0), size)
    return max(full + (1 if tail >= min_tail_seconds * sample_rate else 0), 1)


def make_windows(
    wave: np.ndarray,
    sample_rate: int = 32000,
    window_seconds: float = 5.0,
    min_tail_seconds: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a soundscape into consecutive windows and their end seconds.

    A 600 s file gives 120 windows ending at 5, 10, ..., 600; a 598 s file also gives 120 (the
    last zero-padded). A tail shorter than `min_tail_seconds` is dropped (a 600.01 s file must
    not grow a 121st row), but every file gets at least one window.
    Returns windows (n, window_samples) float32 and end_seconds (n,) int.
    """
    size = int(round(window_seconds * sample_rate))
    count = window_count(len(wave), sample_rate, window_seconds, min_tail_seconds)
    padded = np.zeros(count * size, dtype=np.float32)
    used = min(len(wave), count * size)
    padded[:used] = wave[:used]
    windows = padded.reshape(count, size)  # (n, size)
    ends = (np.arange(1, count + 1) * window_seconds).round().astype(int)
    return windows, ends
