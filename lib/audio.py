"""Audio in and out: decode to mono float32 at the model's rate, crop/pad, cut windows.

Decoding goes through soundfile (libsndfile: ogg vorbis, mp3, wav, flac) and resampling through
soxr; librosa is avoided on this path because its first `load` costs ~17 s of compilation in
every fresh process (notebook start, each worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioError(RuntimeError):
    """A file that cannot give usable audio; the message names the file."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: length, native rate and channel count (nothing decoded)."""

    seconds: float
    sample_rate: int
    channels: int
    frames: int


# Decoded on each side of a crop before resampling, so that soxr's filter sees the same
# neighbourhood as in a whole-file decode (its HQ filter reaches ~1 ms; 20 ms is ample).
RESAMPLE_MARGIN_SECONDS = 0.02


def audio_info(path: str | Path) -> AudioInfo:
    """Read `path`'s header only (no decoding): CPU ~0.06 ms per mp3 with a Xing/LAME header,
    ~0.5 ms per ogg (libsndfile reads the last page for the length).

    Raises AudioError naming the file when it is missing, 0 bytes, not audio or unreadable.
    mp3 lengths come from the Xing/LAME frame count (exact, gapless, in every file measured
    here, all written by libsndfile/LAME); mp3s without that header were not measured. A header
    that overstates the length never fails a crop: past the decoded end a crop is zero-padded.
    """
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as audio:  # sf.info also formats a log: slower
            frames, rate, channels = max(int(audio.frames), 0), audio.samplerate, audio.channels
    except Exception as err:
        raise AudioError(f"{path}: cannot read the audio header ({err})") from err
    return AudioInfo(
        seconds=frames / rate if rate else 0.0,
        sample_rate=int(rate),
        channels=int(channels),
        frames=frames,
    )


def load_audio(
    path: str | Path,
    sample_rate: int = 32000,
    offset: float | None = None,
    duration: float | None = None,
) -> np.ndarray:
    """Decode `path` to a mono float32 array at `sample_rate` (channels are averaged).

    With `offset` and/or `duration` (seconds) only that span is decoded: seek, read, resample
    the span alone (a 5-s crop of a 3-minute file costs 1/20-1/26 of decoding it whole). For
    ogg/flac/wav the cost does not grow with the file's length; an mp3 seek parses the frame
    headers from the start (mpg123, to seek exactly): ~0.06 ms CPU more per second of offset
    (5-s crop of a 10-minute 44.1 kHz stereo mp3: 9 ms at the start, 43 ms at the end; about
    0.6 ms extra at the median recording).

    With `duration` the result has exactly `round(duration * sample_rate)` samples, zero-padded
    past the end of the file; an offset at or beyond the end gives all zeros. A caller that must
    know whether the zeros are the file's end or a header that overstates the length (a cut
    download) uses `load_crop`. A negative offset or a non-positive duration is a caller's bug:
    ValueError. The span equals a whole-file decode sliced at `round(offset * sample_rate)`
    within the per-codec tolerance measured in tests/test_audio.py (<= 3.3e-7; 0 without
    resampling).

    Raises AudioError naming the file when it is missing, unreadable, corrupt or empty.
    Non-finite samples are replaced by 0 so one bad sample cannot poison a whole window.
    """
    if offset is None and duration is None:
        return _load_whole(Path(path), sample_rate)
    return load_crop(path, sample_rate, offset or 0.0, duration).wave


@dataclass(frozen=True)
class Crop:
    """A decoded span, and the file's real length when its audio ended before its header said
    (an interrupted download: the header promises 180 s, the data end at 70 s)."""

    wave: np.ndarray  # (samples,) float32 mono, zero-padded past the end of the audio
    decoded_seconds: float | None  # the audio's real length; None: no read came back short


def load_crop(path: str | Path, sample_rate: int, offset: float, duration: float | None) -> Crop:
    """load_audio's span decode, plus what a short read revealed: when the file's data end
    before the header's length and this read reached that point, `decoded_seconds` is the
    exact length of the audio that decodes (found by a few probe reads when the span lay wholly
    past it). Raises AudioError naming the file, ValueError for a negative offset or a
    non-positive duration."""
    path = Path(path)
    offset = float(offset)
    if offset < 0:
        raise ValueError(f"{path}: offset must be >= 0 seconds, got {offset}")
    if duration is not None and not duration > 0:
        raise ValueError(f"{path}: duration must be > 0 seconds, got {duration}")
    try:
        with sf.SoundFile(str(path)) as audio:
            crop = _read_span(audio, sample_rate, offset, duration)
    except AudioError:
        raise
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, OSError...
        raise AudioError(f"{path}: cannot decode audio ({err})") from err
    if crop is None:
        raise AudioError(f"{path}: file holds no audio samples")
    return crop


def _load_whole(path: Path, sample_rate: int) -> np.ndarray:
    try:
        wave, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, OSError...
        raise AudioError(f"{path}: cannot decode audio ({err})") from err
    if wave.shape[0] == 0:
        raise AudioError(f"{path}: file holds no audio samples")
    wave = _finite(_to_mono(wave))  # (samples, channels) -> (samples,)
    if file_rate != sample_rate:
        wave = soxr.resample(wave, file_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(wave, dtype=np.float32)


def _finite(wave: np.ndarray) -> np.ndarray:
    """Non-finite samples -> 0. One sum tells whether any exists (NaN/inf propagate; float32
    audio cannot overflow a sum), so clean audio skips `nan_to_num`'s ~0.2 ms per 5 s."""
    if np.isfinite(wave.sum()):
        return wave
    return np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)


def _to_mono(wave: np.ndarray) -> np.ndarray:
    """(samples, channels) -> (samples,). Stereo by one add and a halving: on 5 s of 44.1 kHz
    stereo `mean(axis=1)` took 3.6 ms here, this 0.09 ms, bit-identical."""
    if wave.shape[1] == 1:
        return wave[:, 0]
    if wave.shape[1] == 2:
        return (wave[:, 0] + wave[:, 1]) * np.float32(0.5)
    return wave.mean(axis=1)


# libsndfile 1.2.2 seeks wrongly into an ogg vorbis file's last page (shifted or garbled
# samples, errors up to 0.5, measured on files written by libsndfile itself; seeks elsewhere in
# a freshly opened file were exact, but seeking a handle that has already been read garbled up
# to 1024 samples: open a fresh handle per crop). So every ogg vorbis crop first looks up where
# the last pages start (~0.03 ms: the file's last few KB).
_OGG_MAX_PAGE_BYTES = 65307


def _ogg_safe_seek_limit(path: str, total: int) -> int:
    """First sample of the ogg page before the last: seeking at or before it decodes exactly.

    Reads the granule positions (bytes 6-14 of each `OggS` page header) in the file's tail,
    16 KB first, then up to three maximal pages; 0 (decode from the start: slow, never wrong)
    when fewer than three pages are found.
    """
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        for tail_bytes in (16384, 3 * _OGG_MAX_PAGE_BYTES + 1024):
            handle.seek(max(size - tail_bytes, 0))
            tail = handle.read()
            granules = []
            at = tail.find(b"OggS")
            while at >= 0 and at + 14 <= len(tail):
                granule = int.from_bytes(tail[at + 6 : at + 14], "little", signed=True)
                if tail[at + 4] == 0 and 0 <= granule <= total:  # version 0: a page header
                    granules.append(granule)
                at = tail.find(b"OggS", at + 4)
            if len(granules) >= 3 or tail_bytes >= size:
                break
    return granules[-3] if len(granules) >= 3 else 0


# mpg123 (in libsndfile 1.2.2) garbles up to ~510 samples after a seek in mono MPEG-2 mp3s
# (11.025-24 kHz; errors up to 0.29, in a third of the seeks at 22.05 kHz); MPEG-1 rates and
# stereo files seeked exactly. Starting two MPEG-1 frames earlier made every seek exact.
MP3_SEEK_PREROLL = 2304


def _read_span(
    audio: sf.SoundFile, sample_rate: int, offset: float, duration: float | None
) -> Crop | None:
    """Decode the span [offset, offset + duration) of an open file at `sample_rate`, mono.

    Returns None for a file with no samples. Without resampling: seek and read exactly the
    span. With resampling: read from an input sample where the input and output sample grids
    coincide (a multiple of file_rate / gcd, so the span's output samples fall on the same
    instants as in a whole-file decode), with RESAMPLE_MARGIN_SECONDS more on each side, then
    drop the margin from the resampled span. A read that returns fewer frames than the header
    promised marks the file as cut: its real length goes into the Crop.
    """
    file_rate, total = audio.samplerate, audio.frames
    if total <= 0:
        return None
    out_start = int(round(offset * sample_rate))
    if duration is None:
        out_count = max(int(np.ceil(total * sample_rate / file_rate)) - out_start, 0)
    else:
        out_count = int(round(duration * sample_rate))
    out = np.zeros(out_count, dtype=np.float32)
    if file_rate == sample_rate:
        first, last = out_start, min(out_start + out_count, total)
        skip = 0
    else:
        step = file_rate // gcd(file_rate, sample_rate)  # input samples per grid coincidence
        margin = int(np.ceil(RESAMPLE_MARGIN_SECONDS * file_rate))
        want_first = out_start * file_rate / sample_rate - margin
        first = max(int(want_first // step) * step, 0)
        last = min(int(np.ceil((out_start + out_count) * file_rate / sample_rate)) + margin, total)
        skip = out_start - first * sample_rate // file_rate  # output samples before the span
    if first >= last:
        return Crop(out, None)  # the span starts at or past the end of the file
    seek_to = first
    if audio.format == "MP3":
        seek_to = max(first - MP3_SEEK_PREROLL, 0)
    if (audio.format, audio.subtype) == ("OGG", "VORBIS"):
        seek_to = min(first, _ogg_safe_seek_limit(audio.name, total))
    audio.seek(seek_to)
    raw = audio.read(last - seek_to, dtype="float32", always_2d=True)
    decoded = None
    if len(raw) < last - seek_to:  # the data end before the header's length: a cut file
        end = seek_to + len(raw) if len(raw) else _decodable_frames(audio, seek_to)
        decoded = end / file_rate
    wave = _finite(_to_mono(raw[first - seek_to :]))
    if file_rate != sample_rate and len(wave):
        wave = soxr.resample(wave, file_rate, sample_rate, quality="HQ")
    wave = wave[skip : skip + out_count]
    out[: len(wave)] = wave
    return Crop(out, decoded)


_END_PROBE_FRAMES = 4096


def _decodable_frames(audio: sf.SoundFile, below: int) -> int:
    """How many frames of a cut file decode, knowing none do from frame `below` on: a binary
    search by short reads (~12 reads for 3 minutes at 44.1 kHz; an mp3 seek parses frame
    headers from the start, so ~0.1 s once per cut file)."""
    lo, hi = 0, below  # frames before lo decode; none from hi on
    while True:
        at = lo if hi - lo <= _END_PROBE_FRAMES else (lo + hi) // 2
        try:
            audio.seek(at)
            got = len(audio.read(_END_PROBE_FRAMES, dtype="float32", always_2d=True))
        except Exception:  # a seek past the data may fail instead of reading nothing
            got = 0
        if at == lo or 0 < got < _END_PROBE_FRAMES:
            return at + got
        if got == 0:
            hi = at
        else:
            lo = at + got


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


# --- inference's decoding: never raises, says what was odd -----------------------------------

# 2023's hidden test files are 10 minutes: the default rows of an unreadable one. A year with
# other test files passes its profile's length (Config.test_file_seconds) as expected_seconds.
EXPECTED_SOUNDSCAPE_SECONDS = 600.0
SILENCE_PEAK = 1e-7  # a window whose peak |sample| is below this holds no sound (-140 dBFS)


def window_ends(
    n_samples: int,
    sample_rate: int = 32000,
    window_seconds: float = 5.0,
    min_tail_seconds: float = 0.5,
) -> np.ndarray:
    """(count,) int end seconds of the windows make_windows cuts from `n_samples` samples,
    without the samples (the row ids of a file that gets fallback rows)."""
    count = window_count(n_samples, sample_rate, window_seconds, min_tail_seconds)
    return (np.arange(1, count + 1) * window_seconds).round().astype(int)


def expected_ends(
    path: str | Path,
    sample_rate: int = 32000,
    window_seconds: float = 5.0,
    min_tail_seconds: float = 0.5,
    expected_seconds: float = EXPECTED_SOUNDSCAPE_SECONDS,
) -> np.ndarray:
    """Row ends for a file that gets fallback rows: its header's length, else
    `expected_seconds` (the competition's test file length: 600 s -> 120 rows, 60 s -> 12)."""
    try:
        info = audio_info(path)
        samples = int(np.ceil(info.frames * sample_rate / info.sample_rate))
    except Exception:  # unreadable header: the hidden test's files are expected_seconds long
        samples = 0
    if samples <= 0:
        samples = int(expected_seconds * sample_rate)
    return window_ends(samples, sample_rate, window_seconds, min_tail_seconds)


def silent_windows(windows: np.ndarray) -> np.ndarray:
    """(n, samples) -> (n,) bool. A silent window's log-mel is degenerate (ref=max turns
    all-zero power into an all-ones image), so its prediction is meaningless: use the fallback."""
    return np.abs(windows).max(axis=1) < SILENCE_PEAK


@dataclass
class Decoded:
    """A decoded soundscape (None if nothing could be read) and what was odd about it."""

    wave: np.ndarray | None  # (samples,) float32 mono at the model's rate
    warnings: list[str]


def decode_soundscape(path: str | Path, sample_rate: int) -> Decoded:
    """Decode like load_audio (mono mean, soxr HQ to `sample_rate`) but never raise, and say
    what was wrong: unreadable or empty file, channels, rate, NaN/inf samples (set to 0),
    samples beyond [-1, 1] (clipped: huge values would overflow the power spectrum to inf),
    length not a multiple of 5 s. load_audio hides these, so the notebook could not warn."""
    path = Path(path)
    notes: list[str] = []
    try:
        wave, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # LibsndfileError, RuntimeError, OSError, MemoryError...
        return Decoded(None, [f"{path.name}: cannot decode ({err}); fallback rows"])
    if wave.shape[0] == 0:
        return Decoded(None, [f"{path.name}: holds no audio samples; fallback rows"])
    if wave.shape[1] != 1:
        notes.append(f"{path.name}: {wave.shape[1]} channels averaged to mono")
    wave = wave.mean(axis=1)  # (samples, channels) -> (samples,)
    bad = int(np.count_nonzero(~np.isfinite(wave)))
    if bad:
        notes.append(f"{path.name}: {bad} NaN/inf samples set to 0")
        wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
    loud = int(np.count_nonzero(np.abs(wave) > 1.0))
    if loud:
        notes.append(f"{path.name}: {loud} samples beyond [-1, 1] clipped")
        wave = np.clip(wave, -1.0, 1.0)
    if file_rate != sample_rate:
        notes.append(f"{path.name}: {file_rate} Hz resampled to {sample_rate} Hz")
        wave = soxr.resample(wave, file_rate, sample_rate, quality="HQ")
    seconds = len(wave) / sample_rate
    if abs(seconds / 5 - round(seconds / 5)) * 5 > 1e-3:
        notes.append(f"{path.name}: {seconds:.2f} s is not a multiple of 5 s")
    return Decoded(np.ascontiguousarray(wave, dtype=np.float32), notes)
