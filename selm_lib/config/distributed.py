"""Several processes for one stage, through ``torch.distributed`` and ``torchrun``.

``common.nproc`` (1 = one process, as without this module) is the number of processes a
distributed stage (``features@NAME``, ``train_selm``, ``serevals_probe@NAME``) runs on this node.
The stage's command stays ``python -m selm_lib.stages.X``: with ``nproc > 1`` and no torchrun
around it, :func:`selm_lib.config.cli.run_stage` starts
``python -m torch.distributed.run --standalone --nproc-per-node N -m selm_lib.stages.X ...`` and
returns its exit status; under torchrun (``RANK`` set: that launch, or ``srun torchrun`` on a
cluster, several nodes included) the stage joins the process group instead and
``common.nproc`` is not consulted. One process per GPU with NCCL on CUDA; gloo processes on the
CPU (the checks run that way).

A rank that fails ends the stage: torchrun stops the other ranks and reports the failing rank's
error; outputs are written by rank 0 once every rank is done, so no partial output is left where
a later stage would read it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from selm_lib.config.params import ParamsError


@dataclass(frozen=True)
class Dist:
    """This process's place: ``rank`` of ``world`` (``local_rank`` on its node)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def context() -> Dist:
    """The torchrun environment of this process (one process when not under torchrun)."""
    if "RANK" not in os.environ:
        return Dist()
    return Dist(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    )


def under_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def available(device: str) -> tuple[int, str]:
    """How many processes ``common.device`` can host on this node, and of what."""
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        return torch.cuda.device_count(), "GPU(s)"
    return os.cpu_count() or 1, "CPU core(s)"


def check_nproc(nproc: int, device: str) -> None:
    """``common.nproc`` must be at least 1 and at most the devices there are."""
    if nproc < 1:
        raise ParamsError(f"params.yaml 'common.nproc' is {nproc}; use 1 or more processes")
    count, kind = available(device)
    if nproc > count:
        raise ParamsError(
            f"params.yaml 'common.nproc' is {nproc}, but this machine has {count} {kind} for "
            f"common.device '{device}'; set common.nproc to at most {count}"
        )


def launch(module: str, argv: Sequence[str], nproc: int) -> int:
    """Run ``python -m module argv`` under torchrun with ``nproc`` processes on this node;
    returns torchrun's exit status (non-zero when any rank failed)."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        module,
        *argv,
    ]
    print(f"{module}: {nproc} processes under torchrun", file=sys.stderr, flush=True)
    return subprocess.run(command, check=False).returncode


def init(device: str) -> Dist:
    """Join the process group (NCCL on CUDA, gloo on the CPU) and pin this rank's GPU."""
    dist = context()
    if not dist.active or torch.distributed.is_initialized():
        return dist
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if dist.local_rank >= torch.cuda.device_count():
            raise ParamsError(
                f"rank {dist.rank} has local rank {dist.local_rank}, but this node has "
                f"{torch.cuda.device_count()} GPU(s): start at most that many processes per node "
                "(torchrun --nproc-per-node, or params.yaml 'common.nproc')"
            )
        torch.cuda.set_device(dist.local_rank)
    torch.distributed.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    return dist


def initialized() -> bool:
    """Whether this process is in a process group (a rank of a distributed stage)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def finish() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def broadcast_object(value: Any, source: int = 0) -> Any:
    """``value`` of rank ``source`` on every rank (itself when not distributed)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=source)
    return box[0]


def gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank (``[value]`` alone)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [value]
    out: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(out, value)
    return out


def balanced(costs: Sequence[float], world: int) -> list[list[int]]:
    """Items spread over ``world`` ranks by cost: longest first, each to the least loaded rank
    (ties to the lowest rank), each rank's items back in their original order. Deterministic."""
    loads = [0.0] * world
    parts: list[list[int]] = [[] for _ in range(world)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        rank = min(range(world), key=lambda r: (loads[r], r))
        parts[rank].append(index)
        loads[rank] += costs[index]
    return [sorted(p) for p in parts]
