"""Training across processes on PyTorch's own engine: torchrun + DistributedDataParallel.

`Cluster` is the one place that knows whether we run alone or as one rank of many (and
`launched_as_main` says which rank this is before a Cluster is made). Alone, every
method is a no-op, so the training loop reads the same either way. Under torchrun (WORLD_SIZE > 1)
it joins the process group (NCCL with one GPU per rank when CUDA is present, gloo on CPU), wraps
the model in DDP, and gives the loop the few collective operations it needs: agree on stopping,
average the loss for the log, and gather the carried recurrent state for a checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn as nn


def launched_as_main() -> bool:
    """Whether this process is rank 0 of a torchrun job (RANK, as torchrun sets it), or runs alone:
    known before the process group is joined, so a launcher can decide who owns the run's files."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Cluster:
    """This process's place among the training processes: its rank, their number, its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls, device: torch.device) -> "Cluster":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(0, 1, device)
        import torch.distributed as dist

        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), device)

    def close(self) -> None:
        """Leave the process group once every rank has finished: a rank that exits while another's gloo
        threads still talk to it can abort ("terminate called without an active exception")."""
        if not self.active:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP averages gradients across ranks during backward; rank 0's initial weights win."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def rows(self, per_rank: int) -> slice:
        """This rank's streams of the global batch."""
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def agree(self, flag: bool) -> bool:
        """True on every rank if it is true on any: ranks stop on the same step."""
        if not self.active:
            return flag
        import torch.distributed as dist

        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def mean(self, value: torch.Tensor) -> float:
        """The value averaged over ranks (the loss of the global batch)."""
        if not self.active:
            return value.item()
        import torch.distributed as dist

        value = value.detach().clone().reshape(1)
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value.item() / self.world

    def gather_rows(self, tensors: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, ...] | None:
        """Carried state (L, b, H) of every rank, concatenated along the batch: (L, world·b, H)."""
        if not self.active or tensors is None:
            return tensors
        import torch.distributed as dist

        gathered = []
        for tensor in tensors:
            parts = [torch.empty_like(tensor) for _ in range(self.world)]
            dist.all_gather(parts, tensor.contiguous())
            gathered.append(torch.cat(parts, dim=1))
        return tuple(gathered)
