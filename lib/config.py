"""One configuration object for every knob of the recipe.

Defaults are the 24th-place BirdCLEF 2023 recipe (see shared/birdclef2023.md). Notebooks and
tests change fields with `Config.from_dict(...)` or `cfg.replace(...)`; nobody copies code to
change a number. The config is saved as JSON beside every checkpoint and exported model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    # --- audio ---------------------------------------------------------------------------
    sample_rate: int = 32000
    clip_seconds: float = 5.0
    min_tail_seconds: float = 0.5  # a soundscape tail shorter than this gets no window

    # --- log-mel features ----------------------------------------------------------------
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 320
    f_min: float = 20.0
    f_max: float = 14000.0
    n_mels: int = 256
    top_db: float = 80.0

    # --- model ---------------------------------------------------------------------------
    backbone: str = "efficientnet_b0"
    pretrained: bool = True
    in_channels: int = 1
    dropout: float = 0.5
    # Which output scores a 5-second window (validation and the exported graph): "clip",
    # "frame_max" or "mean" (lib.model.window_probabilities).
    window_output: str = "clip"

    # --- data and folds ------------------------------------------------------------------
    n_folds: int = 5
    minor_class_threshold: int = 5  # classes with <= this many recordings train in every fold
    use_secondary_labels: bool = False
    secondary_label_weight: float = 0.5

    # --- training data at scale: crops, decoded cache, bad files, the plan -----------------
    # Each epoch's 5-s crop is decoded straight from the file (seek + read, lib.audio), from
    # durations read once from the headers (run folder: durations index). The decoded cache is
    # an optional speed-up: whole recordings as memory-mapped .npy, written only while the
    # folder holds under cache_budget_gb AND the disk keeps cache_min_free_gb free; past that,
    # one warning with the numbers and crops are decoded directly. 0 = no cache (default).
    # float16 at 32 kHz is 64 KB per second of audio: the 2023 data alone are tens of GB.
    cache_budget_gb: float = 0.0
    cache_min_free_gb: float = 2.0  # never fill the disk: stop caching below this much free
    cache_dtype: str = "float16"  # decoded-audio cache: float16 or float32
    # A recording whose whole decoded peak is below this is silent: skipped and listed
    # (runs/<stage>/skipped_files.csv) like an unreadable one.
    silent_peak: float = 1e-4
    # A source (table column `source`) stops the run when more than this share of its first
    # broken_source_sample files (table order) cannot be read: a wrong path, not bad luck.
    broken_source_sample: int = 200
    broken_source_share: float = 0.5
    # The plan printed before training (lib.plan): seconds of loader sampling per stage, and
    # uncounted warm-up training steps that time the device (0: the device is not timed).
    plan_loader_seconds: float = 5.0
    plan_warmup_steps: int = 20
    plan_header_files: int = 200  # headers timed to project the header pass (0: not timed)

    # --- loss ----------------------------------------------------------------------------
    label_smoothing: float = 0.1
    clip_loss_weight: float = 1.0
    frame_loss_weight: float = 0.5

    # --- optimisation --------------------------------------------------------------------
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-2
    scheduler: str = "cosine"  # cosine annealing, no warm-up
    min_lr: float = 1e-6
    epochs: int = 50
    batch_size: int = 32
    num_workers: int = 2
    amp: bool = False  # the recipe trains in fp32
    seed: int = 42
    stage: str = "finetune"  # "pretrain" (union of species) or "finetune" (2023 species)
    # The competition's metric (a key of lib.metric.METRICS): validation, the out-of-fold
    # summary and the per-species report follow it. A year's profile sets it
    # (lib.competitions.profile_settings): "roc_auc" for 2024-2026.
    metric: str = "padded_cmap"
    folds: tuple[int, ...] = ()  # folds to train; empty means all

    # --- waveform augmentations (probability, range) -------------------------------------
    mixup_p: float = 0.5
    mixup_alpha: float = 0.4
    gaussian_noise_p: float = 0.3
    gaussian_noise_snr_db: tuple[float, float] = (10.0, 40.0)
    uniform_noise_p: float = 0.2
    uniform_noise_snr_db: tuple[float, float] = (10.0, 40.0)
    pitch_shift_p: float = 0.2
    pitch_shift_semitones: tuple[float, float] = (-2.0, 2.0)
    background_noise_p: float = 0.3
    background_noise_snr_db: tuple[float, float] = (3.0, 30.0)

    # --- spectrogram augmentation (SpecAugment) ------------------------------------------
    specaug_p: float = 0.5
    time_mask_max: int = 40  # frames
    time_masks: int = 2
    freq_mask_max: int = 24  # mel bins
    freq_masks: int = 2

    # --- inference -----------------------------------------------------------------------
    infer_processes: int = 4  # Kaggle's 4 cores; capped at the cores found (lib.infer_workers)
    infer_threads: int = 1  # onnxruntime intra-op threads per process
    infer_batch_size: int = 1  # windows per onnxruntime call: 1 ran fastest, least memory
    time_budget_minutes: float = 110.0
    # Length of a hidden test file (the profile's test_file_seconds): the rows of a file that
    # cannot be read (600 s -> 120 rows; a 1-minute year: 12) and the guard's first estimate.
    test_file_seconds: float = 600.0
    fallback_probability: float = 0.0
    max_probability: float = 0.999  # submissions must stay below 1.0

    # ---------------------------------------------------------------------------------------
    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def n_frames(self) -> int:
        """Log-mel frames of one clip (centred STFT)."""
        return self.clip_samples // self.hop_length + 1

    def replace(self, **changes) -> Config:
        return Config.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """Build from a dict, rejecting unknown keys (a typo must not silently do nothing)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise KeyError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        converted = {}
        for name, value in values.items():
            default = known[name].default
            # JSON has no tuples: restore them where the default is one.
            converted[name] = tuple(value) if isinstance(default, tuple) else value
        return cls(**converted)

    @classmethod
    def from_env(cls, base: dict | None = None, variable: str = "BIRDCLEF_CONFIG") -> Config:
        """`base` overridden by the JSON object in environment variable `variable`, if set.

        Lets a user (or the local rehearsal) change a notebook's settings without editing it.
        """
        text = os.environ.get(variable, "").strip()
        try:
            overrides = json.loads(text) if text else {}
        except json.JSONDecodeError as err:
            raise ValueError(f"${variable} is not a JSON object: {err}") from err
        if not isinstance(overrides, dict):
            raise ValueError(f"${variable} must be a JSON object, got {type(overrides).__name__}")
        return cls.from_dict({**(base or {}), **overrides})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Config:
        return cls.from_dict(json.loads(Path(path).read_text()))
