import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_scale_benchmark_runs_and_prints_its_table(tmp_path):
    # a subprocess: the benchmark pins its process to one CPU
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_scale.py"),
            "--quick",
            "--corpus",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "| what | codec | figure |" in lines
    for expected in ["5-s crop decode, median | ogg", "5-s crop decode, median | mp3", "ms/file"]:
        assert any(expected in line for line in lines), expected
    table = [line for line in lines if line.startswith("| ") and "clips/s per core" in line]
    assert len(table) >= 6 and all(" 0 clips/s" not in line for line in table)
    assert len(list((tmp_path / "files").rglob("XC*"))) == 60  # the corpus is cached there
