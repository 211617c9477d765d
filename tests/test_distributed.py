"""Distributed stages: the launch decision of ``run_stage``, the nproc check, the rank split of
batches, and (slow tier) the gloo checks of :mod:`tests.distributed_checks`."""

from __future__ import annotations

import os

import numpy as np
import pytest

from selm_lib.config import ParamsError, cli
from selm_lib.config import distributed as D
from selm_lib.selm.train import rank_batches


def test_balanced_spreads_by_cost_and_keeps_order():
    parts = D.balanced([5, 1, 4, 2, 3], 2)
    assert sorted(i for p in parts for i in p) == [0, 1, 2, 3, 4]
    loads = [sum([5, 1, 4, 2, 3][i] for i in p) for p in parts]
    assert abs(loads[0] - loads[1]) <= 1 and all(p == sorted(p) for p in parts)
    assert D.balanced([1, 1, 1], 1) == [[0, 1, 2]]
    assert D.balanced([3], 2) == [[0], []]


def test_rank_batches_cover_each_global_batch_once_and_pad_empty_shares():
    batches = [np.arange(0, 4), np.arange(4, 5)]
    shares = [rank_batches(iter(batches), D.Dist(r, 2, r)) for r in range(2)]
    (s0, live0), (s1, live1) = shares
    assert np.concatenate([s0[0], s1[0]]).tolist() == [0, 2, 1, 3]
    assert s0[1].tolist() == [4] and live0 == [True, True]
    assert s1[1].tolist() == [4] and live1 == [True, False]  # no item left: weight 0


def test_nproc_above_the_devices_is_refused_with_their_count():
    with pytest.raises(ParamsError, match=rf"{os.cpu_count()} CPU core\(s\).*common.nproc"):
        D.check_nproc((os.cpu_count() or 1) + 1, "cpu")
    with pytest.raises(ParamsError, match="use 1 or more"):
        D.check_nproc(0, "cpu")
    D.check_nproc(1, "cpu")


def stage(params):
    calls = []

    def work(p, args):
        calls.append(D.context())
        return "done"

    return calls, work


def test_run_stage_relaunches_under_torchrun_when_nproc_is_above_one(monkeypatch, capsys):
    params = {"common": {"nproc": 2, "device": "cpu"}}
    monkeypatch.setattr(cli, "load_params", lambda path: params)
    monkeypatch.delenv("RANK", raising=False)
    launched = []
    monkeypatch.setattr(D, "launch", lambda m, argv, n: launched.append((m, argv, n)) or 7)
    calls, work = stage(params)
    status = cli.run_stage(
        "selm_lib.stages.x", None, ["--params", "p.yaml"], work, distributed=True
    )
    assert status == 7 and calls == []  # torchrun's status; the work ran in its processes
    assert launched == [("selm_lib.stages.x", ["--params", "p.yaml"], 2)]
    # one process, or a stage that is not distributed: the work runs here
    params["common"]["nproc"] = 1
    assert cli.run_stage("selm_lib.stages.x", None, [], work, distributed=True) == 0
    params["common"]["nproc"] = 2
    assert cli.run_stage("selm_lib.stages.x", None, [], work) == 0
    assert len(calls) == 2 and "done" in capsys.readouterr().out


def test_run_stage_with_too_many_processes_is_an_input_error(monkeypatch, capsys):
    params = {"common": {"nproc": (os.cpu_count() or 1) + 1, "device": "cpu"}}
    monkeypatch.setattr(cli, "load_params", lambda path: params)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(D, "launch", lambda *a: pytest.fail("must not launch"))
    calls, work = stage(params)
    assert cli.run_stage("selm_lib.stages.x", None, [], work, distributed=True) == 2
    assert "common.nproc" in capsys.readouterr().err and calls == []


@pytest.mark.slow
def test_gloo_checks_hold():
    """Features, DDP training, probes and a failing rank under torchrun with 2 gloo processes
    (164 s on the idle 2-core machine)."""
    from tests import distributed_checks

    assert distributed_checks.main(["--nproc", "2"]) == 0
