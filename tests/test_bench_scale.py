import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOADER_MODES = [
    "crop decoding, all augmentations p=1",
    "crop decoding, recipe augmentation p",
    "whole-file decode + crop, all augmentations p=1",
    "decoded cache (warm), all augmentations p=1",
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `--quick` run (~45 s here) shared by the tests; a subprocess: the benchmark pins its
    process to one CPU."""
    corpus = tmp_path_factory.mktemp("scale-corpus")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--quick",
         "--corpus", str(corpus)],
        capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return corpus, done.stdout.splitlines()


def test_quick_scale_benchmark_runs_and_prints_its_table(quick_run):
    corpus, lines = quick_run
    assert "| what | codec | figure |" in lines
    for expected in ["5-s crop decode, median | ogg", "5-s crop decode, median | mp3", "ms/file"]:
        assert any(expected in line for line in lines), expected
    table = [line for line in lines if line.startswith("| ") and "clips/s per core" in line]
    assert len(table) >= 6 and all(" 0 clips/s" not in line for line in table)
    assert len(list((corpus / "files").rglob("XC*"))) == 60  # the corpus is cached there


def figure(lines: list[str], what: str, codec: str) -> list[str]:
    """The figure column of the row `what` for `codec`, split in words."""
    (line,) = [x for x in lines if x.startswith(f"| {what} | {codec} |")]
    return line.split("|")[3].split()


def test_quick_scale_benchmark_measures_the_augmented_loader(quick_run):
    _, lines = quick_run
    assert not any("not filled in" in line for line in lines)
    rates = {}
    for mode in LOADER_MODES:
        for codec in ("ogg", "mp3"):
            words = figure(lines, f"loader, {mode}", codec)
            assert words[1:4] == ["clips/s", "per", "core"], words
            rates[(mode, codec)] = float(words[0])
    crop, recipe, whole, cached = LOADER_MODES
    for codec in ("ogg", "mp3"):
        # every augmentation on every clip costs more than the recipe's p
        assert rates[(crop, codec)] < rates[(recipe, codec)], rates
        # decoding the whole file costs more than the crop; the cache skips the decode
        assert rates[(whole, codec)] < rates[(crop, codec)] < rates[(cached, codec)], rates
        crop_alone = float(figure(lines, "5-s crop decode, median", codec)[0])
        whole_alone = float(
            figure(lines, "whole-file decode + crop (corpus spread), mean", codec)[0]
        )
        assert crop_alone > 1.5 * whole_alone, (codec, crop_alone, whole_alone)
    assert figure(lines, "noise bank (background noise)", "ogg")[0] != "0"
    warm = [line for line in lines if line.startswith("| decoded cache: warm-up")]
    assert len(warm) == 2
    for line in warm:  # float16 at 32 kHz: 62.5 KiB per second of audio, plus .npy headers
        assert 62.4 < float(line.split("disk ")[1].split()[0]) < 64, line
    end_to_end = [line for line in lines if "make_loader (0 workers)" in line]
    assert len(end_to_end) == 1 and "clips/s per core" in end_to_end[0]
    for expected in ["Kaggle 4 cores vs 2 x T4", "hours at min(loader", "header index of 167k"]:
        assert any(expected in line for line in lines), expected
    assert any("peak memory, fresh process" in line and " MiB" in line for line in lines)


# The real corpus's mix per stage (shares of ogg / mp3 files) and the projection's labels.
STAGE_SHARES = {
    "fine-tune": {"ogg": 1.0},
    "pre-train": {"ogg": 77 / 143, "mp3": 66 / 143},
    "all sources": {"ogg": 94 / 160, "mp3": 66 / 160},
}
PROJECTED = dict(zip(["crop decoding, p=1", "crop decoding, recipe",
                      "whole-file decode + crop, p=1", "decoded cache (warm), p=1"],
                     LOADER_MODES, strict=True))  # fmt: skip
GPUS = 200.0  # 2 x T4, assumed 100 clips/s each


def test_quick_scale_benchmark_projects_kaggle_from_its_measured_rates(quick_run):
    """Kaggle's 4 cores and hours, recomputed here from the printed per-core loader rates: a
    mix takes the share-weighted mean of the per-clip times; hours run at min(loader, GPUs)."""
    _, lines = quick_run
    for label, mode in PROJECTED.items():
        rates = {c: float(figure(lines, f"loader, {mode}", c)[0]) for c in ("ogg", "mp3")}
        (row,) = [x for x in lines if x.startswith(f"| Kaggle 4 cores vs 2 x T4 (200 clips/s, "
                                                   f"assumed): {label} | mix |")]  # fmt: skip
        found = re.findall(r"(fine-tune|pre-train|all sources) (\d+) \((loader|GPU)-bound\)", row)
        projected = {}
        for stage, value, bound in found:
            shares = STAGE_SHARES[stage]
            expected = 4 / sum(share / rates[c] for c, share in shares.items())
            assert float(value) == pytest.approx(expected, rel=0.02), (label, stage, row)
            assert bound == ("GPU" if float(value) >= GPUS else "loader"), row
            projected[stage] = float(value)
        assert set(projected) == set(STAGE_SHARES), row
        (hours,) = [x for x in lines if x.startswith(f"| hours at min(loader, 2 x T4): {label} |")]
        fine_h, pre_h = map(float, re.findall(r"([\d.]+) h", hours))
        expected_fine = 5 * 50 * 17_000 / min(projected["fine-tune"], GPUS) / 3600
        expected_pre = 150_000 / min(projected["pre-train"], GPUS) / 3600
        assert abs(fine_h - expected_fine) <= 0.05 + 0.02 * expected_fine, hours
        assert abs(pre_h - expected_pre) <= 0.005 + 0.02 * expected_pre, hours
