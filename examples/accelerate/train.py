"""HF Accelerate example for Trainyard's `command` framework (CPU, gloo).

Trainyard runs the job's command once per node; the command is `accelerate launch` with the
machine layout taken from the environment every node of a `command` job gets (job.json):

    accelerate launch --multi_gpu --num_machines "$NNODES" --machine_rank "$NODE_RANK" \
        --num_processes "$WORLD_SIZE" --main_process_ip "$MASTER_ADDR" \
        --main_process_port "$MASTER_PORT" train.py

It starts GPUS_PER_NODE processes on each node (WORLD_SIZE in all). Without CUDA, Accelerate
runs them as MULTI_CPU over gloo. Every process prints `process P/N allreduce=<sum of process
indices>`, then trains a linear model through `accelerator.prepare` (DDP), and prints
`in_sync=True` when its weights equal every other process's.
"""

import argparse
import json
import os

import torch
from accelerate import Accelerator


def main() -> None:
    parser = argparse.ArgumentParser(description="Trainyard Accelerate example")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    rank, world = accelerator.process_index, accelerator.num_processes
    total = accelerator.reduce(torch.tensor([float(rank)], device=accelerator.device), reduction="sum")
    print(f"process {rank}/{world} type={accelerator.distributed_type.value} allreduce={int(total.item())}", flush=True)

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model, opt = accelerator.prepare(model, opt)
    gen = torch.Generator().manual_seed(rank)
    metrics = os.environ.get("TRAINYARD_METRICS_FILE")
    loss = torch.tensor(0.0)
    for step in range(1, args.steps + 1):
        x = torch.randn(8, 4, generator=gen).to(accelerator.device)
        loss = torch.nn.functional.mse_loss(model(x), x.sum(dim=1, keepdim=True))
        opt.zero_grad()
        accelerator.backward(loss)
        opt.step()
        if accelerator.is_main_process and metrics:
            with open(metrics, "a") as f:
                f.write(json.dumps({"step": step, "total_steps": args.steps, "loss": round(loss.item(), 6)}) + "\n")
    # DDP averaged the gradients, so every process holds the same weights.
    w = accelerator.unwrap_model(model).weight.detach()
    mean = accelerator.reduce(w.clone(), reduction="mean")
    print(f"process {rank} steps={args.steps} loss={loss.item():.4f} in_sync={torch.allclose(mean, w)}", flush=True)
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main()
