import numpy as np
import pytest
import soundfile as sf

from lib.audio import (
    AudioError,
    AudioInfo,
    audio_info,
    crop_or_pad,
    load_audio,
    make_windows,
    write_audio,
)

SR = 32000


def tone(seconds, freq=1000.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".ogg", ".mp3", ".wav", ".flac"])
def test_formats_round_trip_to_mono_32k(tmp_path, suffix):
    path = tmp_path / f"a{suffix}"
    write_audio(path, tone(2.0), SR)
    wave = load_audio(path, SR)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 2 * SR) < 0.05 * SR  # mp3 may add encoder padding
    peak = np.argmax(np.abs(np.fft.rfft(wave)))
    assert abs(peak * SR / len(wave) - 1000.0) < 5.0


def test_resamples_and_downmixes(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 2000 * t), np.sin(2 * np.pi * 2000 * t)], axis=1) * 0.4
    sf.write(tmp_path / "s.wav", stereo.astype(np.float32), sr)
    wave = load_audio(tmp_path / "s.wav", SR)
    assert len(wave) == SR  # 1 s at 32 kHz
    peak = np.argmax(np.abs(np.fft.rfft(wave)))
    assert abs(peak * SR / len(wave) - 2000.0) < 3.0
    assert 0.35 < np.abs(wave).max() < 0.45  # averaged, not summed


def test_non_finite_samples_become_zero(tmp_path):
    wave = tone(1.0)
    wave[100:200] = np.nan
    wave[300] = np.inf
    sf.write(tmp_path / "n.wav", wave, SR, subtype="FLOAT")
    loaded = load_audio(tmp_path / "n.wav")
    assert np.isfinite(loaded).all() and loaded[150] == 0


@pytest.mark.parametrize(
    "name, content",
    [("missing.ogg", None), ("corrupt.ogg", b"OggS not really"), ("empty.wav", b"")],
)
def test_bad_files_raise_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=name):
        load_audio(path)


def test_zero_sample_file_raises(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="no audio"):
        load_audio(tmp_path / "zero.wav")


def test_crop_or_pad():
    wave = np.arange(10, dtype=np.float32)
    assert np.array_equal(crop_or_pad(wave, 4), [0, 1, 2, 3])
    assert np.array_equal(crop_or_pad(wave, 12)[-2:], [0, 0])
    rng = np.random.default_rng(0)
    starts = {crop_or_pad(wave, 4, rng)[0] for _ in range(50)}
    assert len(starts) > 3 and max(starts) <= 6  # random, always inside the recording


@pytest.mark.parametrize(
    "seconds, count, last_end",
    [(600.0, 120, 600), (598.0, 120, 600), (600.2, 120, 600), (601.0, 121, 605), (3.0, 1, 5)],
)
def test_make_windows_counts_and_ends(seconds, count, last_end):
    wave = np.ones(int(seconds * SR), dtype=np.float32)
    windows, ends = make_windows(wave, SR)
    assert windows.shape == (count, 5 * SR)
    assert ends[0] == 5 and ends[-1] == last_end and np.all(np.diff(ends) == 5)
    assert windows.sum() == pytest.approx(min(len(wave), count * 5 * SR))  # zero padding only


def test_make_windows_keeps_sample_order():
    wave = np.arange(12 * SR, dtype=np.float32)
    windows, _ = make_windows(wave, SR)
    assert windows[1, 0] == 5 * SR and windows[2, 2 * SR - 1] == 12 * SR - 1


# --- window count, never-raising decoding and fallback rows (moved from lib.guard) -----------
# (imports inside the tests keep this block apart from the file's head, edited elsewhere)


def test_window_count_rule():
    from lib.audio import window_count

    assert [window_count(int(s * SR)) for s in (0, 0.4, 0.5, 5.0, 5.4, 5.5, 600.0)] == [
        1, 1, 1, 1, 1, 2, 120,
    ]  # fmt: skip
    assert window_count(int(600.01 * SR)) == 120  # a tail under 0.5 s adds no row


def test_window_ends_match_make_windows():
    from lib.audio import window_count, window_ends

    for seconds in (0.1, 0.4, 3.0, 5.0, 5.3, 5.6, 12.3, 598.0, 600.0, 600.01):
        samples = int(seconds * SR)
        _, ends = make_windows(np.zeros(samples, np.float32), SR)
        np.testing.assert_array_equal(window_ends(samples, SR), ends)
        assert len(ends) == window_count(samples, SR)


def test_decode_matches_load_audio_and_reports(tmp_path):
    from lib.audio import decode_soundscape

    path = tmp_path / "st.wav"
    stereo = np.stack([tone(7.0, sr=44100), tone(7.0, 700.0, sr=44100)], axis=1)
    sf.write(str(path), stereo, 44100)
    decoded = decode_soundscape(path, 32000)
    np.testing.assert_array_equal(decoded.wave, load_audio(path, 32000))
    assert any("2 channels" in n for n in decoded.warnings)
    assert any("44100 Hz" in n for n in decoded.warnings)


def test_decode_never_raises_and_says_why(tmp_path):
    from lib.audio import decode_soundscape

    (tmp_path / "garbage.ogg").write_bytes(np.random.default_rng(0).bytes(5000))
    decoded = decode_soundscape(tmp_path / "garbage.ogg", SR)
    assert decoded.wave is None and "garbage.ogg: cannot decode" in decoded.warnings[0]
    loud = tone(5.0)
    loud[:100] = 4.0
    loud[100:110] = np.nan
    sf.write(str(tmp_path / "loud.wav"), loud, SR, subtype="FLOAT")
    decoded = decode_soundscape(tmp_path / "loud.wav", SR)
    assert np.isfinite(decoded.wave).all() and np.abs(decoded.wave).max() <= 1.0
    assert any("10 NaN/inf" in n for n in decoded.warnings)
    assert any("100 samples beyond" in n for n in decoded.warnings)


def test_expected_ends_from_the_header_else_ten_minutes(tmp_path):
    from lib.audio import expected_ends

    write_audio(tmp_path / "a.wav", tone(12.3), SR)
    np.testing.assert_array_equal(expected_ends(tmp_path / "a.wav", SR), [5, 10, 15])
    (tmp_path / "bad.ogg").write_bytes(b"not audio")
    assert len(expected_ends(tmp_path / "bad.ogg", SR)) == 120  # the hidden test's 600 s


def test_silent_windows():
    from lib.audio import silent_windows

    windows = np.zeros((3, 100), np.float32)
    windows[1, 5] = 1e-3
    np.testing.assert_array_equal(silent_windows(windows), [True, False, True])


# --- crop decoding (offset / duration) and header info --------------------------------------

# Max |crop - whole-file decode sliced| over 45 offsets (start, middle, last 0.1 s) of 30-s
# files at 32/44.1/48/22.05 kHz, mono and stereo, measured with soundfile 0.14 / libsndfile
# 1.2.2: 0 at the native rate, <= 3.3e-7 (float rounding inside soxr) when resampling, for
# every codec, once load_audio works around two libsndfile seek faults: ogg vorbis seeks into
# the last page and mono MPEG-2 mp3 (11.025-24 kHz) seeks garbled samples (errors up to 0.5).
# mp3 lengths and positions are exact (gapless, with the LAME/Xing header libsndfile writes).
CROP_TOLERANCE = {".ogg": 1e-6, ".mp3": 1e-6, ".flac": 1e-6, ".wav": 1e-6}
_FORMATS = {
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".flac": ("FLAC", "PCM_16"),
    ".wav": ("WAV", "PCM_16"),
}


def write_test_file(path, seconds, sr, channels, seed=0):
    """A chirp plus noise per channel, written in 10-s chunks (one long ogg write crashes)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    wave = np.stack(
        [
            0.3 * np.sin(2 * np.pi * (300 + 200 * c) * t * (1 + t / 60))
            + 0.05 * rng.standard_normal(n)
            for c in range(channels)
        ],
        axis=1,
    ).astype(np.float32)
    fmt, subtype = _FORMATS[path.suffix]
    with sf.SoundFile(path, "w", sr, channels, subtype, format=fmt) as out:
        for start in range(0, n, 10 * sr):
            out.write(wave[start : start + 10 * sr])
    return path


def crop_of_whole(whole, offset, duration, sr=SR):
    start, count = int(round(offset * sr)), int(round(duration * sr))
    expected = np.zeros(count, dtype=np.float32)
    part = whole[start : start + count]
    expected[: len(part)] = part
    return expected


@pytest.mark.parametrize("suffix", [".ogg", ".mp3", ".flac", ".wav"])
@pytest.mark.parametrize(
    "sr, channels", [(32000, 1), (44100, 2), (48000, 1), (22050, 2), (22050, 1)]
)
def test_crop_equals_whole_decode_sliced(tmp_path, suffix, sr, channels):
    path = write_test_file(tmp_path / f"c{suffix}", 12.0, sr, channels)
    whole = load_audio(path, SR)
    offsets = [0.0, 0.001, 0.37, 3.3137, 6.0, 9.99, 11.0, 11.9, 11.999]
    for offset in offsets:
        crop = load_audio(path, SR, offset=offset, duration=2.0)
        assert crop.dtype == np.float32 and crop.shape == (2 * SR,)
        err = np.abs(crop - crop_of_whole(whole, offset, 2.0)).max()
        assert err <= CROP_TOLERANCE[suffix], (suffix, sr, channels, offset, err)


@pytest.mark.parametrize("sr", [22050, 24000, 11025])
def test_mono_mpeg2_mp3_crop_is_exact_at_the_native_rate(tmp_path, sr):
    # without the seek pre-roll, mpg123 garbled up to ~510 samples after a third of the seeks
    path = write_test_file(tmp_path / "m.mp3", 10.0, sr, 1)
    whole = load_audio(path, sr)
    for offset in np.random.default_rng(0).uniform(0, 9.9, 40):
        crop = load_audio(path, sr, offset=offset, duration=0.05)
        err = np.abs(crop - crop_of_whole(whole, offset, 0.05, sr)).max()
        assert err <= CROP_TOLERANCE[".mp3"], (offset, err)


def test_ogg_crop_in_the_last_page_is_exact(tmp_path):
    # libsndfile alone returned shifted/garbled samples here (errors up to 0.5)
    path = write_test_file(tmp_path / "tail.ogg", 30.0, 44100, 2)
    whole = load_audio(path, SR)
    for offset in [29.5, 29.8, 29.95, 29.99]:
        crop = load_audio(path, SR, offset=offset, duration=0.5)
        assert np.abs(crop - crop_of_whole(whole, offset, 0.5)).max() <= CROP_TOLERANCE[".ogg"]


@pytest.mark.parametrize("suffix", [".ogg", ".mp3"])
def test_crop_past_the_end_is_zero_padded(tmp_path, suffix):
    path = write_test_file(tmp_path / f"p{suffix}", 3.0, 44100, 1)
    whole = load_audio(path, SR)
    crop = load_audio(path, SR, offset=2.0, duration=5.0)
    assert crop.shape == (5 * SR,)
    assert np.abs(crop[: SR - 10] - whole[2 * SR : 3 * SR - 10]).max() < 1e-6
    assert not crop[SR + 10 :].any()  # past the end: zeros
    beyond = load_audio(path, SR, offset=60.0, duration=5.0)
    assert beyond.shape == (5 * SR,) and not beyond.any()


def test_crop_length_is_exact_and_offset_only_reads_to_the_end(tmp_path):
    path = write_test_file(tmp_path / "l.flac", 4.0, 48000, 2)
    for duration in [0.1, 1.23456, 5.0]:
        assert len(load_audio(path, SR, offset=0.5, duration=duration)) == round(duration * SR)
    tail = load_audio(path, SR, offset=1.0)
    assert len(tail) == 3 * SR
    head = load_audio(path, SR, duration=1.0)
    assert np.abs(head - load_audio(path, SR)[:SR]).max() < 1e-6


def test_crop_rejects_negative_offset_and_empty_duration(tmp_path):
    path = write_test_file(tmp_path / "n.wav", 1.0, SR, 1)
    with pytest.raises(ValueError, match="offset"):
        load_audio(path, SR, offset=-0.1, duration=1.0)
    with pytest.raises(ValueError, match="duration"):
        load_audio(path, SR, offset=0.0, duration=0.0)


def test_crop_non_finite_samples_become_zero(tmp_path):
    wave = tone(2.0)
    wave[SR + 100 : SR + 200] = np.nan
    wave[SR + 300] = np.inf
    sf.write(tmp_path / "n.wav", wave, SR, subtype="FLOAT")
    crop = load_audio(tmp_path / "n.wav", SR, offset=1.0, duration=0.5)
    assert np.isfinite(crop).all() and crop[150] == 0 and crop[300] == 0
    resampled = load_audio(tmp_path / "n.wav", 22050, offset=0.9, duration=0.5)
    assert np.isfinite(resampled).all()


@pytest.mark.parametrize(
    "name, content",
    [("missing.ogg", None), ("corrupt.ogg", b"OggS not really"), ("empty.wav", b"")],
)
def test_crop_bad_files_raise_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=name):
        load_audio(path, SR, offset=1.0, duration=5.0)


@pytest.mark.parametrize("suffix", [".ogg", ".mp3", ".flac", ".wav"])
def test_crop_truncated_file_reads_what_survives_then_zeros(tmp_path, suffix):
    """A download cut in half: crops of the surviving half are the intact file's samples, the
    lost half reads as zeros (ogg, mp3, wav) or raises naming the file (flac loses sync)."""
    intact = write_test_file(tmp_path / f"t{suffix}", 20.0, SR, 1)
    whole = load_audio(intact, SR)
    data = intact.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])  # about 10 s survive
    head = load_audio(cut, SR, offset=2.0, duration=5.0)
    assert np.abs(head - crop_of_whole(whole, 2.0, 5.0)).max() <= 1e-6
    try:
        tail = load_audio(cut, SR, offset=15.0, duration=5.0)
        edge = load_audio(cut, SR, offset=8.0, duration=4.0)
    except AudioError as err:
        assert suffix == ".flac" and f"cut{suffix}" in str(err)
        return
    assert tail.shape == (5 * SR,) and not tail.any()  # the lost half: zeros, never noise
    # across the cut: the intact samples up to where the file ends, zeros after
    expected = crop_of_whole(whole, 8.0, 4.0)
    survived = int(np.argmax(np.abs(edge - expected) > 1e-6))
    assert survived >= SR and not edge[survived:].any(), survived


def test_crop_of_a_header_only_file_raises_naming_it(tmp_path):
    path = write_test_file(tmp_path / "t.ogg", 2.0, SR, 1)
    (tmp_path / "head.wav").write_bytes(path.read_bytes()[:20])
    with pytest.raises(AudioError, match="head.wav"):
        load_audio(tmp_path / "head.wav", SR, offset=0.0, duration=1.0)


def test_crop_of_zero_sample_file_raises(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="no audio"):
        load_audio(tmp_path / "zero.wav", SR, offset=0.0, duration=1.0)


def test_audio_info_reads_the_header(tmp_path):
    path = write_test_file(tmp_path / "i.mp3", 3.0, 44100, 2)
    info = audio_info(path)
    assert info == AudioInfo(seconds=3.0, sample_rate=44100, channels=2, frames=3 * 44100)
    ogg = audio_info(write_test_file(tmp_path / "i.ogg", 2.5, SR, 1))
    assert (ogg.frames, ogg.channels, ogg.seconds) == (80000, 1, 2.5)


@pytest.mark.parametrize("name, content", [("empty.ogg", b""), ("text.mp3", b"hello " * 99)])
def test_audio_info_bad_files_name_the_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(AudioError, match=name):
        audio_info(tmp_path / name)
    with pytest.raises(AudioError, match="missing.flac"):
        audio_info(tmp_path / "missing.flac")


def _median_cpu_ms(call, repeats):
    import time

    times = []
    for _ in range(repeats):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return 1000 * float(np.median(times))


@pytest.mark.parametrize("suffix, sr, channels", [(".ogg", 32000, 1), (".mp3", 44100, 2)])
def test_crop_costs_a_fraction_of_a_whole_decode(tmp_path, suffix, sr, channels):
    # CPU time (not wall time: the test machine is shared). The target is < 1/5 of a
    # whole decode for a 3-minute file (measured 1/20-1/27); for this 60-s file the crop measured
    # 6-10x cheaper under load, so the bound is 1/4 to keep the test from flaking.
    path = write_test_file(tmp_path / f"long{suffix}", 60.0, sr, channels)
    whole = _median_cpu_ms(lambda: load_audio(path, SR), 3)
    offsets = iter(np.random.default_rng(0).uniform(0, 55, 30))
    crop = _median_cpu_ms(lambda: load_audio(path, SR, offset=next(offsets), duration=5.0), 30)
    assert crop < whole / 4, (crop, whole)


def test_expected_ends_of_an_unreadable_file_follow_the_years_test_length(tmp_path):
    from lib.audio import expected_ends
    from lib.competitions import PROFILES
    from lib.config import Config

    (tmp_path / "bad.ogg").write_bytes(b"not audio")
    rows = {
        slug: len(expected_ends(tmp_path / "bad.ogg", SR, expected_seconds=prof.test_file_seconds))
        for slug, prof in PROFILES.items()
    }
    assert rows == {"birdclef-2023": 120, "birdclef-2024": 48, "birdclef-2025": 12,
                    "birdclef-2026": 12}  # fmt: skip
    one_minute = Config().replace(test_file_seconds=60)
    ends = expected_ends(tmp_path / "bad.ogg", SR, expected_seconds=one_minute.test_file_seconds)
    np.testing.assert_array_equal(ends, np.arange(5, 65, 5))
