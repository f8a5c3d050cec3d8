"""The training plan: how long the recipe takes on this machine, printed before training.

Pure arithmetic on figures measured elsewhere (lib.throughput): clips per epoch per stage, the
loader's clips/s per core, the device's training steps/s and validation clips/s. From them:
hours per epoch (training + validation) per stage, hours for the whole recipe (pre-training,
every fine-tuning fold, export), how many sessions of `session_hours` that is, and which side
is the bottleneck. Kept free of measurement so its sums can be checked by hand (tests).

Model of an epoch: with loader workers (num_workers > 0) decoding overlaps the device, so an
epoch runs at the slower of the two rates; without workers the main process does both in turn,
so their times add. The loader's rate is per core times the cores that feed it
(min(workers x processes, CPU cores)). Several GPUs are assumed to scale linearly unless a
speed-up was measured (`multi_gpu_speedup`), and the text says which. Each stage starts with the
header pass over its recordings (lib.train_data: one header read per file, ~0.3-0.56 ms per
file on a local disk, so ~1 minute per 150k files; timed on the stage's first files when
`header_ms_per_file` is given), which the projected hours and sessions count. Validation clips
are decoded at the training loader's rate (a conservative bound: they skip augmentation).
Sessions are packed like lib.train_folds's deadline: an epoch starts only if it ends before the
session's budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageFigures:
    """One training stage: what it trains on and how fast its data load."""

    name: str  # "pre-train", "fine-tune"
    recordings: int
    species: int
    train_clips: int  # per epoch: one crop per training recording (mean over folds)
    valid_clips: int  # per epoch: the first clip of every validation recording
    epochs: int
    folds: int  # folds trained in this stage (pre-training: 1)
    loader_clips_per_s_per_core: float | None  # measured on this stage's data, augmented
    cached_clips_per_s_per_core: float | None = None  # estimate with the decoded cache


@dataclass(frozen=True)
class StageTimes:
    """Projected seconds of one epoch and the hours of the stage, and what bounds it."""

    train_seconds: float
    valid_seconds: float
    bottleneck: str  # "loader" or "device"
    device_idle_share: float  # of the training time, when the loader is the bottleneck

    @property
    def epoch_seconds(self) -> float:
        return self.train_seconds + self.valid_seconds


@dataclass(frozen=True)
class TrainingPlan:
    """The recipe's projected duration; `text()` renders it for the notebook."""

    stages: tuple[StageFigures, ...]
    batch_size: int  # per process
    processes: int  # DDP processes, one per GPU (1 on the CPU)
    loader_cores: int  # cores feeding the loader
    overlapped: bool  # loader workers (num_workers > 0) decode while the device trains
    train_steps_per_s: float | None  # per process, device only (None: not timed)
    valid_clips_per_s: float | None  # per process, forward only
    session_hours: float = 11.0  # usable hours of one session (the notebook's time budget)
    export_minutes: float = 10.0  # ONNX export + parity check of every fold (estimate)
    device_name: str = "device"
    notes: tuple[str, ...] = field(default_factory=tuple)
    header_ms_per_file: float | None = None  # one header read, one thread (None: not timed)
    header_files_timed: int = 0  # how many files that was timed on
    multi_gpu_speedup: float | None = None  # measured pace of `processes` GPUs over one

    # --- arithmetic -----------------------------------------------------------------------------
    @property
    def gpu_speedup(self) -> float:
        """Pace of all processes over one: measured, else assumed linear (= processes)."""
        return self.multi_gpu_speedup if self.multi_gpu_speedup else float(self.processes)

    @property
    def device_train_clips_per_s(self) -> float | None:
        if self.train_steps_per_s is None:
            return None
        return self.train_steps_per_s * self.batch_size * self.gpu_speedup

    @property
    def device_valid_clips_per_s(self) -> float | None:
        if self.valid_clips_per_s is None:
            return None
        return self.valid_clips_per_s * self.gpu_speedup

    def header_seconds(self, stage: StageFigures) -> float:
        """The stage's header pass: one header read per recording (0 when not timed)."""
        if self.header_ms_per_file is None:
            return 0.0
        return stage.recordings * self.header_ms_per_file / 1000.0

    def loader_clips_per_s(self, stage: StageFigures, cached: bool = False) -> float | None:
        rate = stage.cached_clips_per_s_per_core if cached else stage.loader_clips_per_s_per_core
        return None if rate is None else rate * self.loader_cores

    def _seconds(self, clips: int, loader: float | None, device: float | None) -> float:
        if device is None or loader is None:
            return math.nan
        if self.overlapped:
            return clips / min(loader, device)
        return clips / loader + clips / device

    def stage_times(self, stage: StageFigures, cached: bool = False) -> StageTimes:
        loader = self.loader_clips_per_s(stage, cached)
        device = self.device_train_clips_per_s
        train = self._seconds(stage.train_clips, loader, device)
        valid = self._seconds(stage.valid_clips, loader, self.device_valid_clips_per_s)
        bound = (
            "loader"
            if loader is not None and device is not None and loader < device
            else ("device")
        )
        idle = 1.0 - loader / device if bound == "loader" else 0.0
        return StageTimes(train, valid, bound, idle)

    def stage_hours(self, stage: StageFigures, cached: bool = False) -> float:
        """The header pass, then every epoch of every fold."""
        epochs = stage.epochs * stage.folds
        seconds = self.stage_times(stage, cached).epoch_seconds * epochs
        return (self.header_seconds(stage) + seconds) / 3600.0

    def total_hours(self, cached: bool = False) -> float:
        stages = sum(self.stage_hours(s, cached) for s in self.stages)
        return stages + self.export_minutes / 60.0

    def sessions(self, cached: bool = False) -> int | None:
        """Sessions of session_hours the recipe needs; None if unknown or an epoch is longer
        than a session (it could never finish)."""
        budget = self.session_hours * 3600.0
        epochs = [
            self.stage_times(s, cached).epoch_seconds
            for s in self.stages
            for _ in range(s.epochs * s.folds)
        ]
        if any(not math.isfinite(e) or e > budget for e in epochs):
            return None
        count, used = 1, 0.0
        for stage in self.stages:
            used += self.header_seconds(stage)  # runs whatever the deadline
            for _ in range(stage.epochs * stage.folds):
                seconds = self.stage_times(stage, cached).epoch_seconds
                if used + seconds > budget:  # lib.train_folds stops before a late epoch
                    count, used = count + 1, 0.0
                used += seconds
        if used + self.export_minutes * 60.0 > budget:
            count += 1
        return count

    @property
    def loader_bound(self) -> list[str]:
        return [s.name for s in self.stages if self.stage_times(s).bottleneck == "loader"]

    # --- rendering ------------------------------------------------------------------------------
    def text(self) -> str:
        """The plan as the notebook prints it."""
        lines = [
            f"Training plan ({self.device_name}; {self.processes} process(es) x batch "
            f"{self.batch_size}; loader on {self.loader_cores} core(s)"
            f"{'' if self.overlapped else ', no workers: loading and training alternate'})"
        ]
        device = self.device_train_clips_per_s
        if device is None:
            lines.append("  device: not timed (plan_warmup_steps = 0): no hours projected")
        else:
            lines.append(
                f"  device: {_rate(self.train_steps_per_s)} training steps/s per process = "
                f"{_rate(device)} clips/s; validation {_rate(self.device_valid_clips_per_s)} "
                "clips/s"
            )
        header = (
            f"  {'stage':<10} {'recordings':>10} {'species':>7} {'clips/epoch':>15} "
            f"{'loader clips/s':>14} {'min/epoch':>9} {'epochs':>9} {'hours':>7}  bound by"
        )
        lines.append(header)
        for stage in self.stages:
            times = self.stage_times(stage)
            loader = self.loader_clips_per_s(stage)
            loader_text = _rate(loader) if loader is not None else "?"
            lines.append(
                f"  {stage.name:<10} {stage.recordings:>10,} {stage.species:>7,} "
                f"{f'{stage.train_clips:,}+{stage.valid_clips:,}':>15} "
                f"{loader_text:>14} {_num(times.epoch_seconds / 60, 1):>9} "
                f"{f'{stage.epochs}x{stage.folds}':>9} {_num(self.stage_hours(stage), 1):>7}  "
                f"{times.bottleneck if math.isfinite(times.epoch_seconds) else '?'}"
            )
        sessions = self.sessions()
        lines.append(
            f"  export (estimate): {self.export_minutes:.0f} min; whole recipe: "
            f"{_num(self.total_hours(), 1)} h = "
            f"{sessions if sessions is not None else '?'} session(s) of {self.session_hours:g} h"
        )
        lines.extend(self._assumptions())
        lines.extend(self._warnings())
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def _assumptions(self) -> list[str]:
        """The header pass and the GPU scaling, each said measured or assumed."""
        files = sum(s.recordings for s in self.stages)
        if self.header_ms_per_file is None:
            header = (f"  header pass: {files:,} files, not timed (about 1 min per 150k "
                      "files on a local disk; slower on a network mount): not in the hours "
                      "above")  # fmt: skip
        else:
            minutes = sum(self.header_seconds(s) for s in self.stages) / 60
            header = (f"  header pass: {files:,} files x {self.header_ms_per_file:.2f} ms "
                      f"(timed on {self.header_files_timed} files, one thread) = "
                      f"{minutes:.1f} min, counted above; a resumed session reads "
                      "durations.csv instead")  # fmt: skip
        lines = [header]
        if self.processes > 1:
            if self.multi_gpu_speedup:
                how = f"measured {self.multi_gpu_speedup:.2f}x one GPU"
            else:
                how = (f"assumed {float(self.processes):.1f}x one GPU: not measured (DDP's "
                       "gradient all-reduce and the shared CPUs cost some of it)")  # fmt: skip
            lines.append(f"  {self.processes} GPUs {how}")
        return lines

    def _warnings(self) -> list[str]:
        out = []
        budget = self.session_hours * 3600.0
        for stage in self.stages:
            times = self.stage_times(stage)
            if times.epoch_seconds > budget:
                out.append(
                    f"  WARNING: one {stage.name} epoch ({times.epoch_seconds / 3600:.1f} h) "
                    f"is longer than a session: it can never finish"
                )
            if times.bottleneck != "loader":
                continue
            loader, device = self.loader_clips_per_s(stage), self.device_train_clips_per_s
            line = (
                f"  WARNING: {stage.name}: the loader ({_rate(loader)} clips/s on "
                f"{self.loader_cores} core(s)) is slower than the device ({_rate(device)} "
                f"clips/s): the GPU waits {times.device_idle_share:.0%} of the time."
            )
            if stage.cached_clips_per_s_per_core is None:
                line += " What the decoded cache would buy was not measured."
            else:
                cached = self.stage_hours(stage, cached=True)
                line += (
                    f" With the decoded cache (cache_budget_gb, est. "
                    f"{self.loader_clips_per_s(stage, True):,.0f} clips/s) the stage would take "
                    f"{cached:.1f} h instead of {self.stage_hours(stage):.1f} h, if its budget "
                    "holds the stage's audio."
                )
            out.append(line)
        return out


def _rate(value: float) -> str:
    """Three significant figures without exponents: 192, 31.4, 0.32."""
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:,.{digits}f}"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return f"{value:,.{digits}f}"


def mean_fold_clips(recordings: int, fold_sizes: dict[int, int]) -> tuple[int, int]:
    """(train clips, valid clips) per epoch averaged over the folds trained: validation is the
    fold's recordings, training every other row of the table (fold -1 included)."""
    if not fold_sizes:
        return recordings, 0
    valid = sum(fold_sizes.values()) / len(fold_sizes)
    return round(recordings - valid), round(valid)
