"""DeepSpeed example for Trainyard's `command` framework (CPU, gloo backend).

Trainyard runs the job's command once per node; the command is DeepSpeed's own launcher in its
no-SSH mode, so each node starts only its own ranks (job.json):

    deepspeed --hostfile "$TRAINYARD_HOSTFILE" --no_ssh --node_rank "$NODE_RANK" \
              --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" train.py

The hostfile Trainyard writes (`<host> slots=<GPUs per node>` per node, in rank order) is
DeepSpeed's format. The launcher gives each rank RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT; every rank prints `rank R/W allreduce=<sum of all ranks>` (deepspeed.comm, gloo),
then trains a linear model data-parallel, gradients averaged with deepspeed.comm, and prints
`in_sync=True` when its weights equal every other rank's.
"""

import argparse
import json
import os

import deepspeed
import deepspeed.comm as ds_dist
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description="Trainyard DeepSpeed example")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--local_rank", type=int, default=0)  # passed by the deepspeed launcher
    args = parser.parse_args()
    torch.set_num_threads(1)

    deepspeed.init_distributed(dist_backend="gloo")
    rank, world = ds_dist.get_rank(), ds_dist.get_world_size()
    t = torch.tensor([float(rank)])
    ds_dist.all_reduce(t)
    print(f"rank {rank}/{world} allreduce={int(t.item())}", flush=True)

    # Data-parallel SGD on a linear model, gradients averaged with deepspeed.comm (DeepSpeed's
    # collectives). DeepSpeedEngine (deepspeed.initialize) is not used: DeepSpeed 0.16 needs
    # torch >= 2 for it, and the local nodes have Debian's torch 1.13 (README).
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(rank)
    metrics = os.environ.get("TRAINYARD_METRICS_FILE")
    loss = torch.tensor(0.0)
    for step in range(1, args.steps + 1):
        x = torch.randn(8, 4, generator=gen)
        loss = torch.nn.functional.mse_loss(model(x), x.sum(dim=1, keepdim=True))
        opt.zero_grad()
        loss.backward()
        for p in model.parameters():
            ds_dist.all_reduce(p.grad)
            p.grad /= world
        opt.step()
        if rank == 0 and metrics:
            with open(metrics, "a") as f:
                f.write(json.dumps({"step": step, "total_steps": args.steps, "loss": round(loss.item(), 6)}) + "\n")
    # Every rank holds the same weights: the gradients were averaged over all of them.
    w = model.weight.detach().clone()
    ds_dist.all_reduce(w)
    print(f"rank {rank} steps={args.steps} loss={loss.item():.4f} in_sync={torch.allclose(w / world, model.weight)}", flush=True)
    ds_dist.barrier()


if __name__ == "__main__":
    main()
