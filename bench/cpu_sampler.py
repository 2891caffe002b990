#!/usr/bin/python3
"""CPU time and context switches of each side of a bench/gateway.sh run, from /proc.

    bench/cpu_sampler.py OUT [PHASE ...] -- COMMAND ...

PHASE is wrk or pgbench (default: both, in that order); COMMAND is a bench/gateway.sh run of one
route at one connection count, long enough for the window (for example BENCH_ROUTES=share
BENCH_CONNS=16 bench/cpu_sampler.py out.txt -- bash bench/gateway.sh 20). While COMMAND runs, for
each phase it waits until that client runs, lets DFD_SAMPLE_WARMUP seconds pass (default 4), then
adds up the CPU seconds and the voluntary and involuntary context switches of every thread of
wrk, pgbench, the gateway and the PostgreSQL server processes over the next DFD_SAMPLE_WINDOW
seconds (default 10), and writes them to OUT. Divided by the requests of the window (the run's
rate times the window) they give CPU and switches per request on each side (docs/benchmarks.md,
"Where the time goes"). Measures only. Exits with COMMAND's status, or 1 if a phase never came.
"""
import os
import re
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
WARMUP_S = float(os.environ.get("DFD_SAMPLE_WARMUP", "4"))
WINDOW_S = float(os.environ.get("DFD_SAMPLE_WINDOW", "10"))


def processes():
    """pid -> (comm, command line) of every process still there."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        out[int(pid)] = (comm, cmd)
    return out


def side(comm, cmd):
    if comm in ("wrk", "pgbench"):
        return comm
    if "defendable-gateway" in cmd:
        return "gateway"
    if comm == "postgres" and cmd.startswith("postgres:"):
        return "server"  # backends and the server's own processes, not the postmaster
    return None


def totals():
    """side -> [CPU seconds, voluntary switches, involuntary switches], summed over threads."""
    out = {}
    for pid, (comm, cmd) in processes().items():
        name = side(comm, cmd)
        if name is None:
            continue
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    stat = f.read()
                fields = stat[stat.rindex(")") + 2:].split()
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    status = f.read()
                acc = out.setdefault(name, [0.0, 0, 0])
                acc[0] += (int(fields[11]) + int(fields[12])) / HZ  # utime + stime
                acc[1] += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
                acc[2] += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        except (OSError, AttributeError, ValueError):
            continue  # a thread or process that ended while being read
    return out


def running(comm):
    return any(c == comm for c, _ in processes().values())


def sample(log, phases, child):
    """Writes one block per phase; False when the command ended before a phase began."""
    for phase in phases:
        while not running(phase):
            if child.poll() is not None:
                log.write("phase %s: never ran\n" % phase)
                return False
            time.sleep(0.05)
        time.sleep(WARMUP_S)
        before, t0 = totals(), time.time()
        time.sleep(WINDOW_S)
        after, t1 = totals(), time.time()
        log.write("phase %s, window %.2f s\n" % (phase, t1 - t0))
        for name in sorted(after):
            if name in before:
                cpu, vol, invol = (a - b for a, b in zip(after[name], before[name]))
                log.write("  %-8s cpu %.3f s  voluntary %d  involuntary %d\n" % (name, cpu, vol, invol))
        log.flush()
        while running(phase) and child.poll() is None:
            time.sleep(0.1)
    return True


def main():
    args = sys.argv[1:]
    if "--" not in args or args.index("--") < 1 or args.index("--") == len(args) - 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cut = args.index("--")
    out, phases, command = args[0], args[1:cut] or ["wrk", "pgbench"], args[cut + 1:]
    if any(p not in ("wrk", "pgbench") for p in phases):
        print("cpu_sampler: a phase is wrk or pgbench", file=sys.stderr)
        return 2
    child = subprocess.Popen(command)
    with open(out, "w") as log:
        complete = sample(log, phases, child)
    rc = child.wait()
    return rc if rc != 0 or complete else 1


if __name__ == "__main__":
    sys.exit(main())
