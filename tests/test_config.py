import json

import pytest

from lib.config import Config


def test_defaults_are_the_recipe():
    cfg = Config()
    assert (cfg.sample_rate, cfg.clip_seconds) == (32000, 5.0)
    assert (cfg.n_fft, cfg.win_length, cfg.hop_length) == (1024, 1024, 320)
    assert (cfg.f_min, cfg.f_max, cfg.n_mels, cfg.top_db) == (20, 14000, 256, 80)
    assert cfg.backbone == "efficientnet_b0" and cfg.n_folds == 5
    assert cfg.minor_class_threshold == 5 and cfg.label_smoothing == 0.1
    assert (cfg.clip_loss_weight, cfg.frame_loss_weight) == (1.0, 0.5)
    assert (cfg.optimizer, cfg.scheduler, cfg.epochs, cfg.amp) == ("adamw", "cosine", 50, False)
    assert cfg.clip_samples == 160000 and cfg.n_frames == 501


def test_override_from_dict_and_replace():
    cfg = Config.from_dict({"epochs": 3, "backbone": "resnet18"})
    assert cfg.epochs == 3 and cfg.backbone == "resnet18" and cfg.n_mels == 256
    assert cfg.replace(n_mels=64).n_mels == 64 and cfg.n_mels == 256  # frozen, copied


def test_unknown_field_is_an_error_naming_it():
    with pytest.raises(KeyError, match="epoch_count"):
        Config.from_dict({"epoch_count": 3})


def test_json_round_trip_keeps_tuples(tmp_path):
    cfg = Config(folds=(0, 2), pitch_shift_semitones=(-1.0, 1.0))
    cfg.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["folds"] == [0, 2]
    assert Config.load(tmp_path / "config.json") == cfg


def test_from_env_overrides_base(monkeypatch):
    monkeypatch.setenv("BIRDCLEF_CONFIG", '{"epochs": 2, "folds": [1]}')
    cfg = Config.from_env({"epochs": 7, "n_mels": 64})
    assert (cfg.epochs, cfg.folds, cfg.n_mels) == (2, (1,), 64)
    monkeypatch.setenv("BIRDCLEF_CONFIG", "[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        Config.from_env()
    monkeypatch.setenv("BIRDCLEF_CONFIG", "{epochs: 2")
    with pytest.raises(ValueError, match="BIRDCLEF_CONFIG"):
        Config.from_env()
