import numpy as np
import pytest
import soundfile as sf

from lib.audio import AudioError, crop_or_pad, load_audio, make_windows, write_audio

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
