"""lib.guard: the deadline policy (how many folds the next file may use) and when the budget
began."""

from __future__ import annotations

import time

import pytest

from lib.guard import DeadlineGuard, budget_started_at, process_started_at


def test_guard_policy():
    guard = DeadlineGuard(budget_s=100.0, n_folds=5, workers=2)
    assert guard.choose_folds(0.0, 50, 0.0) == 5  # nothing measured yet: all folds
    guard.observe(windows=10, folds=5, window_s=1.0, fold_s=10.0)  # 0.1 s + 0.2 s per fold
    assert guard.file_cost(5) == pytest.approx(11.0)
    assert guard.choose_folds(10.0, 10, 0.0) == 5  # 10 + 10 * 11 / 2 = 65 <= 100
    assert guard.choose_folds(10.0, 22, 0.0) == 3  # 5, 4 folds -> 131, 109; 3 folds -> 87
    assert guard.choose_folds(10.0, 100, 0.0) == 1  # nothing fits: one fold while one file fits
    assert guard.choose_folds(99.0, 100, 0.0) == 0  # 99 + 3 / 2 > 100: fallback from here
    assert guard.choose_folds(100.0, 1, 0.0) == 0
    assert guard.decisions == {5: 2, 3: 1, 1: 1, 0: 2}


def test_guard_counts_work_in_flight_and_ignores_fallback_files():
    guard = DeadlineGuard(budget_s=100.0, n_folds=3, workers=1)
    assert guard.mean_windows() == 120  # before any measurement: a 10-minute soundscape
    guard.observe(windows=10, folds=0, window_s=5.0, fold_s=0.0)  # fallback rows teach nothing
    assert guard.files == 0 and guard.file_cost(3) == 0.0
    guard.observe(windows=10, folds=1, window_s=1.0, fold_s=2.0)  # 0.1 + 0.2 per fold, 10 windows
    assert guard.file_cost(3, windows=20) == pytest.approx(14.0)
    assert guard.choose_folds(0.0, 1, 0.0) == 3  # 7 s
    assert guard.choose_folds(0.0, 1, 96.0) == 1  # 96 s in flight: only 1 fold (3 s) still fits


def test_budget_starts_with_the_kernel_unless_it_is_an_old_session(monkeypatch):
    assert time.time() - 7 * 24 * 3600 < process_started_at() <= time.time()
    now = time.time()
    monkeypatch.setattr("lib.guard.process_started_at", lambda: now - 30)
    assert budget_started_at() == now - 30  # a fresh kernel: its start counts
    monkeypatch.setattr("lib.guard.process_started_at", lambda: now - 3 * 3600)
    assert budget_started_at() >= now  # an interactive session open for hours: from now


def test_guard_first_estimate_follows_the_test_file_length():
    assert DeadlineGuard(budget_s=100.0, n_folds=3, expected_seconds=60.0).mean_windows() == 12
    assert DeadlineGuard(budget_s=100.0, n_folds=3, expected_seconds=240.0).mean_windows() == 48
