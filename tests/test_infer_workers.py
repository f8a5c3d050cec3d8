"""lib.infer_workers: how many workers and threads fit the cores, and the runners that run a
predictor here or in forked workers (a trivial predictor: no models needed)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

import lib.infer_workers as workers_module
from lib.infer_workers import (
    InlineRunner,
    PoolRunner,
    available_cores,
    plan_workers,
    start_method,
)


class WhereAmI:
    """A predictor that says which process ran the file, with how many torch threads."""

    def __init__(self, tag: str):
        self.tag = tag

    def predict_file(self, index, path, folds):
        if str(path) == "crash":
            os._exit(3)  # a segfault-like death of the worker
        return self.tag, index, folds, os.getpid(), torch.get_num_threads()


def test_plan_workers_never_oversubscribes():
    assert plan_workers(4, 1, cores=2) == (2, 1)
    assert plan_workers(1, 4, cores=2) == (1, 2)
    assert plan_workers(2, 2, cores=2) == (1, 2)
    assert plan_workers(4, 1, cores=4) == (4, 1)
    assert plan_workers(0, 0, cores=4) == (1, 1)
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


def test_available_cores_respects_a_container_quota(monkeypatch):
    class Quota:  # stands in for Path("/sys/fs/cgroup/cpu.max")
        text = "max 100000"

        def __init__(self, path):
            assert str(path) == "/sys/fs/cgroup/cpu.max"

        def read_text(self):
            return Quota.text

    monkeypatch.setattr(workers_module.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(workers_module, "Path", Quota)
    assert available_cores() == 8  # no quota: the affinity
    Quota.text = "250000 100000"
    assert available_cores() == 2  # 2.5 CPUs of quota: 2 whole cores
    Quota.text = "50000 100000"
    assert available_cores() == 1  # never fewer than one


def test_inline_runner_runs_here():
    runner = InlineRunner(WhereAmI, "inline")
    result = runner.submit(3, "a.ogg", 2).result()
    assert result[:4] == ("inline", 3, 2, os.getpid()) and runner.workers == 1
    runner.close()


@pytest.mark.skipif(start_method() != "fork", reason="the notebook's path: fork (Linux)")
def test_pool_runner_makes_its_predictors_in_the_workers_and_survives_a_crash():
    runner = PoolRunner(2, 1, WhereAmI, "pool")
    try:
        results = [runner.submit(k, f"{k}.ogg", 1).result(timeout=60) for k in range(4)]
        assert [r[:3] for r in results] == [("pool", k, 1) for k in range(4)]
        assert all(r[3] != os.getpid() and r[4] == 1 for r in results)  # workers, 1 thread
        from concurrent.futures.process import BrokenProcessPool

        with pytest.raises(BrokenProcessPool):
            runner.submit(9, "crash", 1).result(timeout=60)
        runner.restart()
        assert runner.restarts == 1
        assert runner.submit(5, "5.ogg", 1).result(timeout=60)[:2] == ("pool", 5)
    finally:
        runner.close(kill=True)
    assert "fork" in start_method() or sys.platform != "linux"
