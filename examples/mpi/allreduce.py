"""mpi4py all-reduce across every rank of a Trainyard `horovod` job with `"launcher": "mpirun"`.

Trainyard's head node runs `mpirun --hostfile … --mca plm_rsh_agent "ssh -F <attempt ssh config>"
--app …`, which starts each node's ranks over SSH with a key made for this attempt only. Every rank
contributes its rank; the sum is 0+1+…+(N-1) only if all ranks are one MPI_COMM_WORLD.
"""

import os
import pwd
import socket
import sys

from mpi4py import MPI


def main() -> int:
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    total = comm.allreduce(rank, op=MPI.SUM)
    # A second collective with data: every rank must see rank 0's payload.
    payload = comm.bcast({"from": socket.gethostname(), "job": os.environ.get("TRAINYARD_JOB_ID")} if rank == 0 else None, root=0)
    node = os.environ.get("TRAINYARD_NODE_RANK", "?")
    user = pwd.getpwuid(os.getuid()).pw_name
    print(f"rank {rank}/{size} node {node} user {user} allreduce={total} bcast_job={payload['job']}", flush=True)
    comm.Barrier()
    return 0 if total == size * (size - 1) // 2 else 1


if __name__ == "__main__":
    sys.exit(main())
