"""Bring-your-own-launcher example for Trainyard's `command` framework (torch, CPU, gloo).

Trainyard runs this once per node; the script starts its own ranks (one per GPU slot) with
torch.multiprocessing and forms one process group from the environment every node gets:

    NODE_RANK, NNODES, GPUS_PER_NODE, WORLD_SIZE (= NNODES x GPUS_PER_NODE),
    MASTER_ADDR, MASTER_PORT, MASTER_ENDPOINT (host:port), TRAINYARD_HOSTFILE,
    TRAINYARD_METRICS_FILE (progress lines from global rank 0)

Every rank prints `rank R/W allreduce=<sum of all ranks>`, the proof that they formed one group.
"""

import argparse
import json
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(local_rank: int, steps: int) -> None:
    torch.set_num_threads(1)
    node_rank = int(os.environ["NODE_RANK"])
    per_node = int(os.environ["GPUS_PER_NODE"])
    world = int(os.environ["WORLD_SIZE"])
    rank = node_rank * per_node + local_rank
    dist.init_process_group("gloo", init_method=f"tcp://{os.environ['MASTER_ENDPOINT']}", rank=rank, world_size=world)
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    print(f"rank {rank}/{world} allreduce={int(t.item())}", flush=True)

    torch.manual_seed(1)
    w = torch.zeros(4, requires_grad=True)
    target = torch.ones(4)
    metrics = os.environ.get("TRAINYARD_METRICS_FILE")
    for step in range(1, steps + 1):
        loss = ((w - target) ** 2).mean()
        loss.backward()
        dist.all_reduce(w.grad)
        with torch.no_grad():
            w -= 0.1 * w.grad / world
            w.grad.zero_()
        if rank == 0 and metrics:
            with open(metrics, "a") as f:
                f.write(json.dumps({"step": step, "total_steps": steps, "loss": round(loss.item(), 6)}) + "\n")
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description="Trainyard command-framework example")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    hostfile = os.environ.get("TRAINYARD_HOSTFILE")
    if os.environ.get("NODE_RANK") == "0" and hostfile:
        with open(hostfile) as f:
            print("hostfile:", " | ".join(line.strip() for line in f), flush=True)
    mp.spawn(worker, args=(args.steps,), nprocs=int(os.environ["GPUS_PER_NODE"]))


if __name__ == "__main__":
    main()
