"""Scale benchmark: decoding and indexing a corpus shaped like Kaggle's, on ONE core.

    python benchmarks/bench_scale.py --corpus /tmp/birdclef-scale-corpus      # full (~10 min)
    python benchmarks/bench_scale.py --corpus /tmp/scale-quick --quick       # < 1 minute

The synthetic corpus (>= 2,000 files by default, cached in --corpus so reruns reuse it) mixes
ogg vorbis 32 kHz mono (BirdCLEF 2021-2023: ~17k + 62k + 15k files) and mp3 44.1 kHz stereo
(BirdCLEF 2020 + Xeno-canto extended: ~21k + 45k) in the real proportions, with a long-tailed
spread of durations (log-normal, median 25 s, clipped to 1 s-10 min: most 10-60 s, some minutes).
Encoding mp3 runs at only ~10-20x real time here, so each codec gets a pool of distinct encoded
recordings at the quantiles of the duration spread, and every corpus file is a byte copy of one
of them (its own file on disk: header reads, disk use and decode cost are those of a real file).

Measured per codec, one core (process pinned to one CPU, BLAS/OpenMP/torch threads 1): 5-s crop
decoding (`load_audio(offset, duration)`) vs whole-file decoding in clips/s, header index time
per file (`lib.audio_index`), peak memory (ru_maxrss; VmHWM of fresh processes at two corpus
sizes) and disk used. Then the augmented loader (scale_loader.py): the real ClipDataset
(train=True) and WaveAugment with a background-noise bank, timed by
lib.throughput.measure_loader on CPU time, for crop decoding, whole-file decoding and the
decoded cache; the real corpus's mix projected onto Kaggle's 4 cores against 2 x T4 (an ASSUMED
~100 clips/s per T4, not measured). "Clips/s per core" is 1 / this process's CPU time per clip;
wall rates are printed beside it. The corpus is in the page cache (just written or read), so
disk latency is not measured.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # AudioCache.warm's bar would bury the table

import argparse  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.atomic import atomic_write  # noqa: E402
from lib.audio import load_audio  # noqa: E402
from lib.audio_index import load_or_build_index, read_durations  # noqa: E402

SAMPLE_RATE = 32000
CLIP_SECONDS = 5.0
T4_CLIPS_PER_S = 100.0  # ASSUMED, not measured: effnet_b0 fp32 256x501 training, per T4
KAGGLE_CORES = 4
FINE_TUNE_FILES, PRE_TRAIN_FILES = 17_000, 150_000
# Real corpus shares per stage: 2021-2023 ogg ~94k (2023 ~17k), 2020 + Xeno-canto mp3 ~66k.
STAGES = {
    "fine-tune (2023 ogg)": {"ogg": 1.0},
    "pre-train (77k ogg + 66k mp3)": {"ogg": 77 / 143, "mp3": 66 / 143},
    "all sources (94k ogg + 66k mp3)": {"ogg": 94 / 160, "mp3": 66 / 160},
}


@dataclass(frozen=True)
class Codec:
    name: str  # "ogg" / "mp3"
    suffix: str
    sample_rate: int
    channels: int
    format: str
    subtype: str
    real_files: int  # files of this kind in the real corpus (thousands don't matter: a ratio)


CODECS = (
    Codec("ogg", ".ogg", 32000, 1, "OGG", "VORBIS", 17_000 + 62_000 + 15_000),
    Codec("mp3", ".mp3", 44100, 2, "MP3", "MPEG_LAYER_III", 21_000 + 45_000),
)


@dataclass(frozen=True)
class Settings:
    """What a run measures; --quick shrinks everything to finish in well under a minute."""

    files: int = 2000
    pool_per_codec: int = 24
    max_seconds: float = 600.0
    reference_seconds: float = 180.0  # the "3-minute file" of the targets
    crop_samples: int = 1500  # crops timed per codec
    whole_samples: int = 40  # whole-file decodes timed per codec (over the corpus spread)
    reference_repeats: int = 7
    accuracy_files: int = 8  # files per codec compared crop by crop with a whole decode
    loader_seconds: float = 8.0  # CPU seconds of augmented clips per codec and mode
    cache_files: int = 150  # files per codec decoded into the cache for its measurement
    loader_batch: int = 32
    loader_batches: int = 4  # batches through make_loader, end to end
    memory_sizes: tuple[int, ...] = (500, 2000)  # corpus sizes of the memory probes
    memory_items: int = 40  # augmented clips each memory probe draws
    augment_repeats: int = 30  # timings per augmentation alone

    @staticmethod
    def quick() -> Settings:
        return Settings(
            files=60,
            pool_per_codec=4,
            max_seconds=20.0,
            reference_seconds=20.0,
            crop_samples=60,
            whole_samples=6,
            reference_repeats=3,
            accuracy_files=2,
            loader_seconds=0.3,
            cache_files=3,
            loader_batch=8,
            loader_batches=1,
            memory_sizes=(20, 60),
            memory_items=5,
            augment_repeats=3,
        )


# --- the corpus ---------------------------------------------------------------------------


def duration_pool(count: int, max_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Durations and their sampling weights: `count` equal-weight quantiles of log-normal
    (median 25 s, sigma 1) plus the extremes 1 s and `max_seconds` at 0.5 % each."""
    from statistics import NormalDist

    quantiles = (np.arange(count) + 0.5) / count
    z = np.array([NormalDist().inv_cdf(q) for q in quantiles])
    seconds = np.round(np.clip(25.0 * np.exp(z), 1.0, max_seconds), 2)
    seconds = np.concatenate([[1.0], seconds, [max_seconds]])
    weights = np.concatenate([[0.005], np.full(count, 0.99 / count), [0.005]])
    return seconds, weights


def synth_wave(seconds: float, sample_rate: int, channels: int, seed: int) -> np.ndarray:
    """Bird-like chirps over a low noise floor, (samples, channels) float32."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    base = rng.uniform(1500, 6000)
    chirp = 0.3 * np.sin(2 * np.pi * base * t * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t)))
    gate = (np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t) > 0.3).astype(np.float32)
    mono = chirp * gate
    wave = np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1)
    wave += 0.02 * rng.standard_normal((n, channels))
    return wave.astype(np.float32)


def encode(path: Path, wave: np.ndarray, codec: Codec) -> None:
    """Write in 10-s chunks: one long ogg vorbis `write` crashed libsndfile 1.2.2."""

    def write(tmp: Path) -> None:
        with sf.SoundFile(
            tmp, "w", codec.sample_rate, codec.channels, codec.subtype, format=codec.format
        ) as out:
            for start in range(0, len(wave), 10 * codec.sample_rate):
                out.write(wave[start : start + 10 * codec.sample_rate])

    atomic_write(path, write)


def build_corpus(folder: Path, settings: Settings, seed: int = 0) -> pd.DataFrame:
    """The corpus table (path, codec, seconds), generating what `folder` does not hold yet."""
    manifest = folder / f"manifest-{settings.files}-{settings.pool_per_codec}-{seed}.csv"
    if manifest.exists():
        table = pd.read_csv(manifest)
        if all(Path(p).exists() for p in table.path):
            return table
    rng = np.random.default_rng(seed)
    weights = np.array([c.real_files for c in CODECS], dtype=float)
    counts = np.floor(settings.files * weights / weights.sum()).astype(int)
    counts[0] += settings.files - counts.sum()
    rows = []
    for codec, count in zip(CODECS, counts, strict=True):
        pool = []
        durations, weights = duration_pool(settings.pool_per_codec, settings.max_seconds)
        for i, seconds in enumerate(durations):
            path = folder / "pool" / f"{codec.name}-{i:03d}-{seconds:g}s{codec.suffix}"
            if not path.exists():
                encode(path, synth_wave(seconds, codec.sample_rate, codec.channels, i), codec)
            pool.append((path, seconds))
        for j in range(count):
            k = int(rng.choice(len(pool), p=weights))
            source, seconds = pool[k]
            path = folder / "files" / codec.name / f"XC{j:06d}-{k:03d}{codec.suffix}"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, path)
            rows.append((str(path), codec.name, float(seconds)))
    table = pd.DataFrame(rows, columns=["path", "codec", "seconds"])
    atomic_write(manifest, lambda tmp: table.to_csv(tmp, index=False))
    return table


def reference_file(folder: Path, codec: Codec, seconds: float) -> Path:
    """One file of `seconds` (the 3-minute file of the targets) per codec."""
    path = folder / "reference" / f"{codec.name}-{seconds:g}s{codec.suffix}"
    if not path.exists():
        encode(path, synth_wave(seconds, codec.sample_rate, codec.channels, 999), codec)
    return path


# --- measurements -------------------------------------------------------------------------


def pin_to_one_core() -> str:
    """Pin this process to one CPU (the first it may use); returns a description."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def timed_ms(call, repeats: int) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) per call. CPU time is this process's own: on a shared machine it is
    the honest 'per core' cost, wall time also counts waiting for the core."""
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        times.append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
    return times


def rates(times: list[tuple[float, float]]) -> str:
    """'CPU-time rate (wall-time rate)' from the medians."""
    wall = statistics.median(t[0] for t in times)
    cpu = statistics.median(t[1] for t in times)
    return f"{1000 / cpu:.0f} clips/s per core (wall {1000 / wall:.0f})"


def peak_memory_mb() -> float:
    """Peak RSS of this process (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@dataclass
class Row:
    what: str
    codec: str
    figure: str


def measure_crops(table: pd.DataFrame, codec: Codec, settings: Settings, rng) -> list[Row]:
    """Random 5-s crops over the corpus spread of this codec (as a training epoch draws them)."""
    files = table[table.codec == codec.name].reset_index(drop=True)
    crops = []
    for _ in range(settings.crop_samples):
        row = files.iloc[int(rng.integers(len(files)))]
        offset = float(rng.uniform(0, max(row.seconds - CLIP_SECONDS, 0)))
        crops += timed_ms(
            lambda row=row, offset=offset: load_audio(
                row.path, SAMPLE_RATE, offset=offset, duration=CLIP_SECONDS
            ),
            1,
        )
    crop_cpu_mean = len(crops) * 1000 / sum(t[1] for t in crops)
    return [
        Row("5-s crop decode, median", codec.name, rates(crops)),
        Row("5-s crop decode, mean", codec.name, f"{crop_cpu_mean:.0f} clips/s per core"),
    ]


def measure_wholes(table: pd.DataFrame, codec: Codec, settings: Settings, rng) -> Row:
    """Whole-file decodes (then a crop) over the corpus spread: the mean, since long files
    dominate the cost, as they would in training."""
    files = table[table.codec == codec.name].reset_index(drop=True)
    wholes = []
    for i in rng.choice(len(files), size=min(settings.whole_samples, len(files)), replace=False):
        wholes += timed_ms(lambda i=i: load_audio(files.path[i], SAMPLE_RATE), 1)
    whole_cpu = len(wholes) * 1000 / sum(t[1] for t in wholes)
    whole_wall = len(wholes) * 1000 / sum(t[0] for t in wholes)
    return Row(
        "whole-file decode + crop (corpus spread), mean",
        codec.name,
        f"{whole_cpu:.1f} clips/s per core (wall {whole_wall:.1f})",
    )


def measure_reference(folder: Path, codec: Codec, settings: Settings, rng) -> list[Row]:
    """Crop vs whole decode of one long file: the targets' '< a fifth of a 3-minute decode'."""
    path = reference_file(folder, codec, settings.reference_seconds)
    whole = timed_ms(lambda: load_audio(path, SAMPLE_RATE), settings.reference_repeats)
    span = settings.reference_seconds - CLIP_SECONDS
    offsets = iter(rng.uniform(0, span, size=max(settings.crop_samples // 2, 20)))
    crop = timed_ms(
        lambda: load_audio(path, SAMPLE_RATE, offset=next(offsets), duration=CLIP_SECONDS),
        max(settings.crop_samples // 2, 20),
    )
    whole_cpu = statistics.median(t[1] for t in whole)
    crop_cpu = statistics.median(t[1] for t in crop)
    seconds = f"{settings.reference_seconds:g}-s file"
    return [
        Row(
            f"{seconds}: whole decode, median",
            codec.name,
            f"{whole_cpu:.1f} ms CPU (wall {statistics.median(t[0] for t in whole):.1f})",
        ),
        Row(
            f"{seconds}: 5-s crop, median",
            codec.name,
            f"{crop_cpu:.2f} ms CPU = {rates(crop)}, 1/{whole_cpu / crop_cpu:.0f} of whole",
        ),
    ]


def measure_accuracy(table: pd.DataFrame, codec: Codec, files: int, rng) -> Row:
    """Max |crop - whole-file decode sliced| over crops at random offsets and at the very end."""
    paths = table[table.codec == codec.name].drop_duplicates("seconds").path.to_numpy()
    worst = 0.0
    for path in rng.choice(paths, size=min(files, len(paths)), replace=False):
        whole = load_audio(path, SAMPLE_RATE)
        seconds = len(whole) / SAMPLE_RATE
        ends = [max(seconds - d, 0.0) for d in (0.05, 1.0, CLIP_SECONDS)]
        for offset in list(rng.uniform(0, seconds, size=12)) + ends:
            crop = load_audio(path, SAMPLE_RATE, offset=offset, duration=CLIP_SECONDS)
            start = int(round(offset * SAMPLE_RATE))
            expected = np.zeros_like(crop)
            part = whole[start : start + len(crop)]
            expected[: len(part)] = part
            worst = max(worst, float(np.abs(crop - expected).max()))
    return Row("max abs(crop - whole decode sliced)", codec.name, f"{worst:.1e}")


def measure_index(table: pd.DataFrame, folder: Path) -> list[Row]:
    """Header pass over the whole corpus: one thread, four threads, then the saved index."""
    paths = list(table.path)
    rows = []
    for workers in (1, 4):
        ((wall, cpu),) = timed_ms(lambda w=workers: read_durations(paths, workers=w), 1)
        rows.append(
            Row(
                f"index headers, {workers} thread{'s' if workers > 1 else ''}",
                "all",
                f"{cpu / len(paths):.3f} ms/file CPU (wall {wall / len(paths):.3f})",
            )
        )
    durations = read_durations(paths, workers=1)
    for codec in CODECS:
        some = [p for p, c in zip(table.path, table.codec, strict=True) if c == codec.name]
        ((wall, cpu),) = timed_ms(lambda some=some: read_durations(some, workers=1), 1)
        rows.append(
            Row(
                "index headers, 1 thread",
                codec.name,
                f"{cpu / len(some):.3f} ms/file CPU (wall {wall / len(some):.3f})",
            )
        )
    bad = int((durations.error != "").sum())
    off = np.abs(durations.seconds.to_numpy() - table.seconds.to_numpy())
    rows.append(
        Row("index: unreadable files / max |header - written| s", "all", f"{bad} / {off.max():.3f}")
    )
    index_file = folder / "index-bench.csv"
    index_file.unlink(missing_ok=True)
    load_or_build_index(paths, index_file, workers=4)
    ((wall, cpu),) = timed_ms(lambda: load_or_build_index(paths, index_file, workers=4), 1)
    rows.append(
        Row(
            "index reloaded from the run folder (stat + CSV)",
            "all",
            f"{cpu / len(paths):.3f} ms/file CPU (wall {wall / len(paths):.3f})",
        )
    )
    return rows


def mix_rate(rates: dict[str, float], shares: dict[str, float]) -> float:
    """Clips/s of a mix: the time per clip is the share-weighted mean of per-codec times."""
    return 1 / sum(shares[c] / rates[c] for c in shares)


def projection_rows(rates: dict[tuple[str, str, str], float], index_ms: float) -> list[Row]:
    """The real corpus from the measured per-core rates: Kaggle's 4 cores (assumed to scale
    linearly) vs 2 x T4 (ASSUMED ~100 clips/s each, not measured), hours, indexing."""
    gpus = 2 * T4_CLIPS_PER_S
    rows = []
    for label, probs in dict.fromkeys((k[0], k[1]) for k in rates):
        cores = {
            stage: KAGGLE_CORES * mix_rate({c: rates[(label, probs, c)] for c in shares}, shares)
            for stage, shares in STAGES.items()
        }
        figure = " / ".join(
            f"{stage.split(' (')[0]} {rate:.0f} ({'loader' if rate < gpus else 'GPU'}-bound)"
            for stage, rate in cores.items()
        )
        what = (
            f"Kaggle {KAGGLE_CORES} cores vs 2 x T4 ({gpus:.0f} clips/s, assumed): {label}, {probs}"
        )
        rows.append(Row(what, "mix", figure))
        fine, pre = cores["fine-tune (2023 ogg)"], cores["pre-train (77k ogg + 66k mp3)"]
        rows.append(
            Row(
                f"hours at min(loader, 2 x T4): {label}, {probs}",
                "mix",
                f"fine-tune 5 folds x 50 epochs x 17k clips "
                f"{5 * 50 * FINE_TUNE_FILES / min(fine, gpus) / 3600:.1f} h; "
                f"one pre-train epoch (150k) {PRE_TRAIN_FILES / min(pre, gpus) / 3600:.2f} h",
            )
        )
    files = FINE_TUNE_FILES + PRE_TRAIN_FILES
    rows.append(
        Row(
            "header index of 167k files, one core (page cache; Kaggle's mount not measured)",
            "all",
            f"{index_ms * files / 1000:.0f} s = {index_ms * files / 3.6e6:.3f} h",
        )
    )
    return rows


def measure_loader(
    table: pd.DataFrame, folder: Path, settings: Settings, index_ms: float
) -> list[Row]:
    """Augmented clips/s per core through the real dataset and loader (scale_loader.py):
    crop decoding vs whole-file decoding vs the decoded cache, per codec; the real corpus's mix
    projected onto Kaggle's 4 cores vs 2 x T4; one end-to-end make_loader run."""
    # imported here: torch and the library's training modules would set the peak memory of
    # the decoding rows above (importing torch alone is ~500 MiB RSS)
    from scale_loader import augmentation_cost_rows, loader_rows, make_loader_row

    index_file = folder / "index-bench.csv"
    figures, rates = loader_rows(table, index_file, settings.loader_seconds, settings.cache_files)
    figures += augmentation_cost_rows(table, settings.augment_repeats)
    figures.append(
        make_loader_row(table, index_file, settings.loader_batch, settings.loader_batches)
    )
    return [Row(*figure) for figure in figures] + projection_rows(rates, index_ms)


def corpus_rows(table: pd.DataFrame) -> list[Row]:
    sizes = sum(Path(p).stat().st_size for p in table.path)
    seconds = table.seconds
    return [
        Row(
            "files (ogg / mp3)",
            "all",
            " / ".join(str((table.codec == c.name).sum()) for c in CODECS),
        ),
        Row(
            "durations: median / mean / share 10-60 s / max",
            "all",
            f"{seconds.median():.0f} s / {seconds.mean():.0f} s / "
            f"{((seconds >= 10) & (seconds <= 60)).mean():.0%} / {seconds.max():.0f} s",
        ),
        Row(
            "disk used",
            "all",
            f"{sizes / 2**20:.0f} MiB ({sizes / seconds.sum() / 1024:.1f} KiB per audio second)",
        ),
    ]


def run(folder: Path, settings: Settings, seed: int = 0) -> list[Row]:
    folder.mkdir(parents=True, exist_ok=True)
    table = build_corpus(folder, settings, seed)
    rows = corpus_rows(table)
    rows.append(Row("peak memory before indexing", "all", f"{peak_memory_mb():.0f} MiB"))
    index_rows = measure_index(table, folder)
    index_ms = float(index_rows[0].figure.split()[0])  # 1 thread, all files, CPU
    rows += index_rows
    rows.append(Row("peak memory after indexing", "all", f"{peak_memory_mb():.0f} MiB"))
    rng = np.random.default_rng(seed)
    crop_rates = {}
    for codec in CODECS:
        crops = measure_crops(table, codec, settings, rng)
        crop_rates[codec.name] = float(crops[1].figure.split()[0])  # mean: throughput
        rows += crops
    rows.append(Row("peak memory after crop decoding", "all", f"{peak_memory_mb():.0f} MiB"))
    for codec in CODECS:
        rows.append(measure_accuracy(table, codec, settings.accuracy_files, rng))
    for codec in CODECS:
        rows.append(measure_wholes(table, codec, settings, rng))
        rows += measure_reference(folder, codec, settings, rng)
    for stage, shares in STAGES.items():
        rows.append(
            Row(
                f"5-s crop decode, {stage}",
                "mix",
                f"{mix_rate(crop_rates, shares):.0f} clips/s per core",
            )
        )
    rows.append(Row("peak memory after whole-file decoding", "all", f"{peak_memory_mb():.0f} MiB"))
    rows += measure_loader(table, folder, settings, index_ms)
    return rows


def memory_rows(args: argparse.Namespace, settings: Settings) -> list[Row]:
    """Peak RSS of fresh processes (pinned like this one) that index N files, build the training
    dataset and draw augmented clips, at two corpus sizes: memory flat in the file count."""
    peaks = {}
    for files in settings.memory_sizes:
        probe = [
            sys.executable,
            __file__,
            "--memory-probe",
            str(files),
            "--corpus",
            str(args.corpus),
        ]
        probe += ["--quick"] * args.quick + ["--files", str(settings.files)]
        done = subprocess.run(probe, check=True, capture_output=True, text=True)
        peaks[files] = float(done.stdout.split("peak MiB")[-1])
    (small, low), (large, high) = sorted(peaks.items())
    per_file = (high - low) * 1024 / (large - small)
    return [
        Row(
            f"peak memory, fresh process: torch + index + dataset + {settings.memory_items} "
            f"clips, {small} / {large} files",
            "all",
            f"{low:.0f} / {high:.0f} MiB ({per_file:.2f} KiB per file; "
            f"167k files: +{per_file * 167_000 / 1024:.0f} MiB)",
        )
    ]


def print_table(rows: list[Row]) -> None:
    print("| what | codec | figure |")
    print("| --- | --- | ---: |")
    for row in rows:
        print(f"| {row.what} | {row.codec} | {row.figure} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/birdclef-scale-corpus"))
    parser.add_argument("--quick", action="store_true", help="tiny corpus, < 1 minute")
    parser.add_argument("--files", type=int, default=None, help="corpus size (default 2000)")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-probe", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    if args.files:
        settings = Settings(**{**settings.__dict__, "files": args.files})
    if args.generate_only:
        build_corpus(args.corpus, settings)
        for codec in CODECS:
            reference_file(args.corpus, codec, settings.reference_seconds)
        return
    if args.memory_probe:
        from scale_loader import memory_probe

        table = build_corpus(args.corpus, settings)
        peak = memory_probe(table, args.memory_probe, settings.memory_items)
        print(f"peak MiB {peak:.1f}")
        return
    # generate in a child process: synthesising a 10-minute file would set this one's peak memory
    start = time.perf_counter()
    generate = [sys.executable, __file__, "--generate-only", "--corpus", str(args.corpus)]
    generate += ["--quick"] * args.quick + ["--files", str(settings.files)]
    subprocess.run(generate, check=True)
    generated = time.perf_counter() - start
    pinned = pin_to_one_core()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench_scale: {pinned}, load average {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    print(f"corpus generated or reused in {generated:.0f} s (a child process)", flush=True)
    rows = run(args.corpus, settings) + memory_rows(args, settings)
    print_table(rows)
    end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {end_load:.1f}")


if __name__ == "__main__":
    main()
