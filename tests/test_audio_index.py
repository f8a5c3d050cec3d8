import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import lib.audio_index as audio_index
from lib.audio_index import load_or_build_index, read_durations

SR = 32000


def write_wave(path, seconds, sr=SR, channels=1):
    wave = np.zeros((int(seconds * sr), channels), dtype=np.float32)
    wave[::100] = 0.1
    sf.write(path, wave, sr)
    return path


@pytest.fixture
def corpus(tmp_path):
    """Good files of known lengths, then one bad file of each kind."""
    good = [
        write_wave(tmp_path / "a.wav", 1.5),
        write_wave(tmp_path / "b.flac", 0.25, 44100, 2),
        write_wave(tmp_path / "c.ogg", 3.0),
    ]
    (tmp_path / "empty.ogg").write_bytes(b"")
    (tmp_path / "text.mp3").write_bytes(b"not audio at all " * 50)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "a.wav").read_bytes()[:30])  # header cut
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), SR)
    bad = {
        "empty.ogg": "0 bytes",
        "text.mp3": "not audio",
        "cut.wav": "not audio",
        "zero.wav": "no audio samples",
        "missing.ogg": "missing",
    }
    return good, [tmp_path / name for name in bad], bad


def counting_reads(monkeypatch):
    calls = []
    real = audio_index.header_seconds

    def counted(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(audio_index, "header_seconds", counted)
    return calls


@pytest.mark.parametrize("workers", [1, 3])
def test_read_durations_lengths_and_reasons(corpus, workers):
    good, bad, reasons = corpus
    table = read_durations(good + bad, workers=workers)
    assert list(table.columns) == ["path", "seconds", "error"]
    assert list(table.path) == [str(p) for p in good + bad]  # order kept
    assert np.allclose(table.seconds[:3], [1.5, 0.25, 3.0])
    assert (table.error[:3] == "").all()
    for path, row in zip(bad, list(table.itertuples())[3:], strict=True):
        assert reasons[path.name] in row.error, (path.name, row.error)
        assert row.seconds == 0.0


def test_index_is_read_once_then_reused(corpus, tmp_path, monkeypatch):
    good, bad, _ = corpus
    paths = good + bad
    index_file = tmp_path / "run" / "durations.csv"
    calls = counting_reads(monkeypatch)
    first = load_or_build_index(paths, index_file, workers=2)
    assert len(calls) == len(paths) and index_file.exists()
    calls.clear()
    again = load_or_build_index(list(reversed(paths)), index_file, workers=2)
    assert calls == []  # no header read again
    assert list(again.path) == [str(p) for p in reversed(paths)]
    pd.testing.assert_frame_equal(again.iloc[::-1].reset_index(drop=True), first, check_dtype=True)
    assert list(again.error).count("") == 3


def test_replaced_file_is_read_again(corpus, tmp_path, monkeypatch):
    good, _, _ = corpus
    index_file = tmp_path / "durations.csv"
    load_or_build_index(good, index_file)
    write_wave(good[0], 4.0)  # same path, new content
    stat = os.stat(good[0])
    os.utime(good[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    calls = counting_reads(monkeypatch)
    table = load_or_build_index(good, index_file)
    assert calls == [str(good[0])]
    assert table.seconds[0] == pytest.approx(4.0)


def test_new_paths_only_are_read_and_other_rows_kept(corpus, tmp_path, monkeypatch):
    good, bad, _ = corpus
    index_file = tmp_path / "durations.csv"
    load_or_build_index(good[:2], index_file)
    calls = counting_reads(monkeypatch)
    table = load_or_build_index(good[1:] + bad[:1], index_file)
    assert calls == [str(good[2]), str(bad[0])]
    assert list(table.path) == [str(p) for p in good[1:] + bad[:1]]
    calls.clear()
    load_or_build_index(good, index_file)  # good[0] still stored from the first call
    assert calls == []


def test_damaged_index_file_is_rebuilt(corpus, tmp_path):
    good, _, _ = corpus
    index_file = tmp_path / "durations.csv"
    index_file.write_text('garbage,\n"unclosed')
    table = load_or_build_index(good, index_file)
    assert np.allclose(table.seconds, [1.5, 0.25, 3.0])
    assert list(pd.read_csv(index_file).columns) == ["path", "size", "mtime_ns", "seconds", "error"]


def test_loader_findings_survive_a_new_session_and_forget_a_replaced_file(tmp_path):
    from lib.audio_index import DECODED_SECONDS, SILENT, LoaderFindings

    first, second = tmp_path / "a.mp3", tmp_path / "b.ogg"
    first.write_bytes(b"x" * 100)
    second.write_bytes(b"y" * 100)
    log = tmp_path / "run" / "loader_findings.csv"
    LoaderFindings(log).append(str(first), DECODED_SECONDS, 70.25)
    LoaderFindings(log).append(str(second), SILENT, 1.0)
    log.write_text(log.read_text() + "path,size,mtime_ns,finding,value\n")  # two writers' header
    LoaderFindings(log).append(str(first), DECODED_SECONDS, 70.5)  # the last word counts
    again = LoaderFindings(log).read()  # the next session
    assert again == {(str(first), DECODED_SECONDS): 70.5, (str(second), SILENT): 1.0}
    second.write_bytes(b"a longer replacement file")  # a new download: judged afresh
    assert LoaderFindings(log).read() == {(str(first), DECODED_SECONDS): 70.5}
    assert LoaderFindings(tmp_path / "none.csv").read() == {}
