"""NCCL DDP job for scripts/gpu-check.sh: every rank on its own GPU, all-reduce over NCCL.

Started by Trainyard's torchrun (framework `pytorch`), one rank per GPU of the node
(CUDA_VISIBLE_DEVICES = the GPUs Trainyard reserved; LOCAL_RANK picks one of them). Each rank
prints `rank R/W allreduce=<sum of ranks> backend=nccl gpu=<name>` (the proof NCCL formed one
group), then trains a matmul-heavy MLP for --seconds so the monitor samples real utilisation,
memory and power, and writes progress lines to TRAINYARD_METRICS_FILE.
"""

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP


def main() -> None:
    parser = argparse.ArgumentParser(description="Trainyard GPU check: NCCL DDP")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to train")
    parser.add_argument("--width", type=int, default=8192)
    args = parser.parse_args()

    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", local)
    t = torch.tensor([float(rank)], device=device)
    dist.all_reduce(t)
    name = torch.cuda.get_device_name(device)
    print(f"rank {rank}/{world} allreduce={int(t.item())} backend={dist.get_backend()} gpu={name}", flush=True)

    model = DDP(
        torch.nn.Sequential(
            torch.nn.Linear(args.width, args.width), torch.nn.ReLU(), torch.nn.Linear(args.width, args.width)
        ).to(device),
        device_ids=[local],
    )
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(1024, args.width, device=device)
    metrics = os.environ.get("TRAINYARD_METRICS_FILE")
    start = time.monotonic()
    step = 0
    loss = torch.tensor(0.0)
    while time.monotonic() - start < args.seconds:
        step += 1
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            torch.cuda.synchronize()
            if rank == 0 and metrics:
                with open(metrics, "a") as f:
                    f.write(json.dumps({"step": step, "loss": round(loss.item(), 6)}) + "\n")
    torch.cuda.synchronize()
    elapsed = time.monotonic() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    print(f"rank {rank} steps={step} seconds={elapsed:.1f} steps_per_s={step / elapsed:.1f} peak_mem_gib={peak:.1f}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
