"""The plan's arithmetic on hand-made figures: hours per epoch and stage, sessions packed like
the deadline does, the bottleneck and what the cache would buy, and the printed text."""

from __future__ import annotations

import math

import pytest

from lib.plan import StageFigures, TrainingPlan, mean_fold_clips

# 17,000 recordings, 5 folds: 13,600 train + 3,400 valid clips per epoch.
FINETUNE = StageFigures("fine-tune", 17_000, 264, 13_600, 3_400, epochs=50, folds=5,
                        loader_clips_per_s_per_core=100.0)  # fmt: skip
PRETRAIN = StageFigures("pre-train", 153_400, 800, 150_000, 3_400, epochs=50, folds=1,
                        loader_clips_per_s_per_core=100.0)  # fmt: skip


def plan(*stages: StageFigures, **changes) -> TrainingPlan:
    """2 GPUs x batch 32 at 3 steps/s = 192 clips/s; validation 2 x 300; 4 loader cores."""
    values = dict(stages=stages or (FINETUNE,), batch_size=32, processes=2, loader_cores=4,
                  overlapped=True, train_steps_per_s=3.0, valid_clips_per_s=300.0,
                  session_hours=11.0, export_minutes=10.0, device_name="2 x Tesla T4")  # fmt: skip
    return TrainingPlan(**{**values, **changes})


def test_device_bound_fine_tuning_hours_and_one_session():
    p = plan()
    assert p.device_train_clips_per_s == 192.0 and p.loader_clips_per_s(FINETUNE) == 400.0
    times = p.stage_times(FINETUNE)
    assert times.train_seconds == pytest.approx(13_600 / 192)  # 70.83 s: the device's pace
    assert times.valid_seconds == pytest.approx(3_400 / 400)  # 8.5 s: the loader's pace
    assert times.bottleneck == "device" and times.device_idle_share == 0.0
    assert p.stage_hours(FINETUNE) == pytest.approx(250 * (13_600 / 192 + 8.5) / 3600)  # 5.51 h
    assert p.total_hours() == pytest.approx(5.509259 + 10 / 60, abs=1e-5)
    assert p.sessions() == 1 and p.loader_bound == []


def test_loader_bound_stage_reports_idle_share_and_the_cache_gain():
    slow = StageFigures(**{**FINETUNE.__dict__, "loader_clips_per_s_per_core": 40.0,
                           "cached_clips_per_s_per_core": 80.0})  # fmt: skip
    p = plan(slow)
    times = p.stage_times(slow)
    assert times.bottleneck == "loader"
    assert times.train_seconds == pytest.approx(85.0)  # 13,600 / 160
    assert times.valid_seconds == pytest.approx(21.25)  # 3,400 / 160
    assert times.device_idle_share == pytest.approx(1 - 160 / 192)
    assert p.stage_hours(slow) == pytest.approx(250 * 106.25 / 3600)  # 7.38 h
    cached = p.stage_times(slow, cached=True)  # 320 clips/s: the device bounds training again
    assert cached.train_seconds == pytest.approx(13_600 / 192)
    assert cached.valid_seconds == pytest.approx(3_400 / 320)
    text = p.text()
    assert (
        "WARNING: fine-tune: the loader (160 clips/s on 4 core(s)) is slower than the device "
        "(192 clips/s): the GPU waits 17% of the time" in text
    )
    assert "would take 5.7 h instead of 7.4 h" in text
    unmeasured = plan(StageFigures(**{**slow.__dict__, "cached_clips_per_s_per_core": None}))
    assert "cache would buy was not measured" in unmeasured.text()


def test_without_workers_loading_and_training_add_up():
    p = plan(overlapped=False)
    assert p.stage_times(FINETUNE).train_seconds == pytest.approx(13_600 / 400 + 13_600 / 192)


def test_sessions_are_packed_epoch_by_epoch_like_the_deadline():
    """1-hour sessions: pre-train epochs of 789.75 s (4 per session: 13 sessions, 2 epochs in
    the last), 25 fine-tune epochs of 238/3 s fill that one, 45 per session for the other 225
    (5 sessions, 3570 s each), and the 10-minute export needs one more."""
    p = plan(PRETRAIN, FINETUNE, session_hours=1.0)
    assert p.stage_times(PRETRAIN).epoch_seconds == pytest.approx(789.75)
    assert p.stage_times(FINETUNE).epoch_seconds == pytest.approx(238 / 3)
    assert p.sessions() == 19
    assert plan(PRETRAIN, FINETUNE).sessions() == 2  # 11 h: all pre-training fits in one


def test_an_epoch_longer_than_a_session_can_never_finish():
    p = plan(PRETRAIN, session_hours=0.2)
    assert p.sessions() is None
    assert "is longer than a session: it can never finish" in p.text()


def test_an_untimed_device_projects_nothing_but_says_so():
    p = plan(train_steps_per_s=None, valid_clips_per_s=None)
    assert math.isnan(p.total_hours()) and p.sessions() is None
    assert "not timed" in p.text() and "? session(s)" in p.text()


def test_text_shows_every_stage_and_the_whole_recipe():
    text = plan(PRETRAIN, FINETUNE).text()
    assert "2 x Tesla T4; 2 process(es) x batch 32; loader on 4 core(s)" in text
    assert "3.00 training steps/s per process = 192 clips/s; validation 600 clips/s" in text
    pre, fine = (next(line for line in text.splitlines() if name in line)
                 for name in ("pre-train ", "fine-tune "))  # fmt: skip
    assert "153,400" in pre and "150,000+3,400" in pre and "50x1" in pre and "11.0" in pre
    assert "17,000" in fine and "264" in fine and "50x5" in fine and "5.5" in fine
    assert "whole recipe: 16.6 h = 2 session(s) of 11 h" in text


def test_mean_fold_clips():
    assert mean_fold_clips(17_000, {k: 3_400 for k in range(5)}) == (13_600, 3_400)
    assert mean_fold_clips(27, {0: 10, 1: 12}) == (16, 11)  # 5 rows always train
    assert mean_fold_clips(7, {}) == (7, 0)


def test_the_header_pass_is_counted_and_said():
    """0.45 ms per header over 153,400 + 17,000 files: 69.0 s + 7.65 s before the epochs."""
    timed = plan(PRETRAIN, FINETUNE, header_ms_per_file=0.45, header_files_timed=200)
    untimed = plan(PRETRAIN, FINETUNE)
    assert timed.header_seconds(PRETRAIN) == pytest.approx(69.03)
    extra = timed.total_hours() - untimed.total_hours()
    assert extra == pytest.approx((153_400 + 17_000) * 0.45e-3 / 3600)
    assert ("header pass: 170,400 files x 0.45 ms (timed on 200 files, one thread) = 1.3 min, "
            "counted above") in timed.text()  # fmt: skip
    assert "header pass: 170,400 files, not timed" in untimed.text()
    # 1-hour sessions hold 4 pre-train epochs of 789.75 s: 50 = 12 x 4 + 2, and the export
    # fits beside the last 2 (13 sessions). A 35-minute header pass leaves room for 2 in the
    # first session: 2 + 12 x 4, and the export needs a 14th.
    assert plan(PRETRAIN, session_hours=1.0).sessions() == 13
    slow = plan(PRETRAIN, session_hours=1.0, header_ms_per_file=2100 / 153_400 * 1000)
    assert slow.sessions() == 14


def test_two_gpus_say_whether_their_speed_up_was_measured():
    assumed = plan()
    assert "2 GPUs assumed 2.0x one GPU: not measured" in assumed.text()
    measured = plan(multi_gpu_speedup=1.6)
    assert measured.device_train_clips_per_s == pytest.approx(3.0 * 32 * 1.6)
    assert "2 GPUs measured 1.60x one GPU" in measured.text()
    assert measured.stage_hours(FINETUNE) > assumed.stage_hours(FINETUNE)
    assert "GPUs" not in plan(processes=1).text().split("\n", 1)[1]  # one GPU: nothing to say
