"""The header pass: durations into the table, unreadable files dropped and listed, the list kept
across sessions, and a mostly-broken source stopped with its name and examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.audio import write_audio
from lib.config import Config
from lib.distributed import DistInfo
from lib.train_data import (
    DURATIONS_FILE,
    SKIPPED_FILE,
    BrokenSourceError,
    check_sources,
    header_problems,
    index_recordings,
    skip_log_for,
)

SR = 32000
MAIN = DistInfo()


def good_file(path: Path, seconds: float, seed: int = 0) -> Path:
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * SR)).astype(np.float32)
    write_audio(path, wave, SR)
    return path


def mixed_table(tmp_path: Path) -> pd.DataFrame:
    """Good recordings of two sources, and one bad file of each header-level kind."""
    good = [good_file(tmp_path / f"g{k}.ogg", 2.0 + k, k) for k in range(4)]
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.ogg"
    truncated.write_bytes(good[0].read_bytes()[:1500])  # cut inside the headers
    text = tmp_path / "text.ogg"
    text.write_text("not audio\n" * 50)
    paths = [good[0], empty, good[1], truncated, good[2], text, good[3]]
    sources = ["birdclef-2023", "birdclef-2023", "birdclef-2023", "birdclef-2022",
               "birdclef-2022", "birdclef-2022", "birdclef-2022"]  # fmt: skip
    return pd.DataFrame({"path": [str(p) for p in paths], "primary_label": "aaa",
                         "source": sources})  # fmt: skip


def test_header_pass_adds_durations_and_drops_and_lists_unreadable_files(tmp_path, capsys):
    table = mixed_table(tmp_path)
    run = tmp_path / "run"
    out = index_recordings(table, Config(), run, MAIN, workers=2)
    assert out["path"].tolist() == [table.path[k] for k in (0, 2, 4, 6)]  # order kept
    np.testing.assert_allclose(out["seconds"], [2.0, 3.0, 4.0, 5.0], atol=0.01)
    skipped = pd.read_csv(run / SKIPPED_FILE)
    assert list(skipped.columns) == ["path", "source", "reason"]
    assert sorted(skipped["path"]) == sorted(table.path[k] for k in (1, 3, 5))
    assert skipped.set_index("path").loc[table.path[3], "source"] == "birdclef-2022"
    assert (skipped["reason"].str.len() > 0).all()
    assert (run / DURATIONS_FILE).is_file()  # kept with the run for a resumed session
    assert "3 of 7 recordings unreadable" in capsys.readouterr().out


def test_a_resumed_session_keeps_what_the_loader_listed(tmp_path):
    table = mixed_table(tmp_path)
    run = tmp_path / "run"
    index_recordings(table, Config(), run, MAIN)
    skip_log_for(run).append(table.path[0], "birdclef-2023", "silent (peak below 0.0001)")
    out = index_recordings(table, Config(), run, MAIN)  # the next session
    assert len(out) == 4  # a file the loader skipped stays in the table (same folds, steps)
    listed = skip_log_for(run).read()
    assert len(listed) == 4 and table.path[0] in set(listed["path"])


def test_a_mostly_broken_source_stops_with_its_name_examples_and_the_fix(tmp_path):
    good = [good_file(tmp_path / f"g{k}.ogg", 1.0, k) for k in range(3)]
    broken = []
    for k in range(5):
        path = tmp_path / "xc" / f"XC{k}.mp3"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"<html>404</html>")
        broken.append(path)
    table = pd.DataFrame({
        "path": [str(p) for p in [*good, *broken, good[0]]],
        "primary_label": "aaa",
        "source": ["birdclef-2023"] * 3 + ["xeno-canto-extended"] * 6,
    })  # fmt: skip
    with pytest.raises(BrokenSourceError) as caught:
        index_recordings(table, Config(), tmp_path / "run", MAIN)
    message = str(caught.value)
    assert "'xeno-canto-extended': 5 of its first 6 files cannot be read" in message
    assert "XC0.mp3" in message and "fully downloaded" in message


def test_broken_share_counts_only_the_first_files_in_table_order():
    table = pd.DataFrame({"path": [f"f{k}" for k in range(10)], "source": "s"})
    problems = pd.Series(["", "", "", "bad", "bad", "bad", "bad", "bad", "bad", "bad"])
    check_sources(table, problems, Config(broken_source_sample=4))  # 1 of the first 4
    with pytest.raises(BrokenSourceError, match="'s': 7 of its first 10"):
        check_sources(table, problems, Config(broken_source_sample=10))


def test_header_problems_name_errors_and_empty_durations():
    index = pd.DataFrame({"path": ["a", "b", "c", "d"], "seconds": [3.0, np.nan, 0.0, 2.0],
                          "error": ["", "cannot decode", np.nan, None]})  # fmt: skip
    assert header_problems(index).tolist() == [
        "",
        "cannot decode",
        "no audio samples in the header",
        "",
    ]


def garbage_body(path: Path) -> Path:
    """A real mp3 whose body after its first frames is noise: the header still promises it
    all, the decoder gives up on the way (a corrupted download)."""
    good_file(path, 8.0)
    data = bytearray(path.read_bytes())
    data[6000:] = np.random.default_rng(1).integers(0, 256, len(data) - 6000, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def cut_body(path: Path) -> Path:
    """A real mp3 cut in half: an interrupted download whose header promises 8 s."""
    good_file(path, 8.0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 333])
    return path


def test_decode_failures_are_dropped_and_listed_and_cut_files_kept_inside_their_audio(
    tmp_path, capsys
):
    from lib.audio import load_audio
    from lib.train_data import findings_for

    paths = [garbage_body(tmp_path / "garbage.mp3"), cut_body(tmp_path / "cut.mp3"),
             *(good_file(tmp_path / f"good{k}.ogg", 6.0, k) for k in range(3))]  # fmt: skip
    paths[0], paths[2] = paths[2], paths[0]  # good, cut, garbage, good, good
    table = pd.DataFrame({"path": [str(p) for p in paths], "primary_label": "aaa",
                          "source": "birdsong-recognition"})  # fmt: skip
    run = tmp_path / "run"
    out = index_recordings(table, Config(), run, MAIN, workers=2)
    assert out["path"].tolist() == [str(paths[k]) for k in (0, 1, 3, 4)]
    assert out["seconds"].tolist()[1] == pytest.approx(8.0)  # the header's, for the crop draws
    skipped = skip_log_for(run).read()
    assert skipped["path"].tolist() == [str(paths[2])]
    assert skipped["reason"][0].startswith("cannot decode its last clip")
    real = len(load_audio(paths[1])) / SR
    assert 3.0 < real < 5.0
    known = findings_for(run).read()
    assert known[(str(paths[1]), "decoded_seconds")] == pytest.approx(real, abs=1e-3)
    assert "1 probed recordings end before their header says" in capsys.readouterr().out


def xeno_canto_half(folder: Path, half: str, make) -> Path:
    """One of Kaggle's two Xeno-canto extended datasets: train_extended.csv and <half>/."""
    rows = []
    for k in range(4):
        code = f"{half[0].lower()}bird{k}"
        make(folder / half / code / f"XC{ord(half[0]) * 10 + k}.mp3")
        rows.append({"ebird_code": code, "filename": f"XC{ord(half[0]) * 10 + k}.mp3"})
    pd.DataFrame(rows).to_csv(folder / "train_extended.csv", index=False)
    return folder


def test_a_broken_xeno_canto_half_is_judged_on_its_own_and_named(tmp_path):
    """Table order puts every A-M file first: judged as one source, the first files were all
    good and the N-Z half (decodes failing behind intact headers) went unnoticed."""
    from lib.sources import read_source

    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        good_file(path, 6.0)

    def broken(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        (garbage_body if path.stem.endswith(("0", "1")) else cut_body)(path)

    am = xeno_canto_half(tmp_path / "xeno-canto-extended-a-m", "A-M", make)
    nz = xeno_canto_half(tmp_path / "xeno-canto-extended-n-z", "N-Z", broken)
    table = read_source("xeno-canto-extended", [am, nz])
    assert table["root"].tolist() == [str(am)] * 4 + [str(nz)] * 4
    with pytest.raises(BrokenSourceError) as caught:
        index_recordings(table, Config(broken_source_sample=4), tmp_path / "run", MAIN)
    message = str(caught.value)
    assert f"'xeno-canto-extended at {nz}': 4 of its first 4 files cannot be read" in message
    assert "cannot decode its last clip" in message or "cut:" in message
    index_recordings(table[table["root"] == str(am)], Config(broken_source_sample=4),
                     tmp_path / "run2", MAIN)  # the good half alone passes  # fmt: skip
