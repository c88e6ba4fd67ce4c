#!/usr/bin/env python3
"""Peak memory of a receiver and of the processes it forks, while it works.

A single-process receiver (telerad, storescp without --fork) is measured
exactly by the kernel: VmHWM in /proc/PID/status is its resident set's
high-water mark. `storescp --fork` instead serves each association in a
child process that exits when the association ends, taking its VmHWM with
it. So this sampler polls, every INTERVAL_MS:

  - the root's VmHWM (exact, kernel-maintained; last value read),
  - each direct child's VmHWM (the largest seen; exact for a child only if
    it was read after the child's peak, i.e. sampled),
  - the sum of VmRSS over root + children (the memory the receiver holds
    at one instant; its peak is sampled, so it can only under-estimate).

It polls /proc/PID/task/PID/children rather than scanning /proc, to cost
little CPU on a 2-core machine; it runs beside every receiver, telerad
included, so that its cost is the same for all.

Usage: rss_sampler.py PID INTERVAL_MS READY_FILE. READY_FILE is created
once the sampler is watching, so that the caller starts work only then. Stops when PID exits or on
SIGTERM/SIGINT, then prints one line, in kB:
  root_hwm_kb  max_child_hwm_kb  peak_tree_rss_kb  children_seen
"""

import signal
import sys
import time


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return None


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def main():
    root = int(sys.argv[1])
    interval = int(sys.argv[2]) / 1000
    ready_file = sys.argv[3]
    stop = False

    def on_signal(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    peaks = {"root_hwm": 0, "child_hwm": 0, "tree": 0}
    seen = set()

    def sample():
        """One look at the process tree; False once the root has exited."""
        hwm = status_kb(root, "VmHWM")
        if hwm is None:
            return False
        peaks["root_hwm"] = max(peaks["root_hwm"], hwm)
        tree = status_kb(root, "VmRSS") or 0
        for child in children(root):
            seen.add(child)
            peaks["child_hwm"] = max(peaks["child_hwm"], status_kb(child, "VmHWM") or 0)
            tree += status_kb(child, "VmRSS") or 0
        peaks["tree"] = max(peaks["tree"], tree)
        return True

    sample()
    open(ready_file, "w").close()
    while not stop and sample():
        time.sleep(interval)
    sample()  # a last look: the root's VmHWM as the run ends
    print(peaks["root_hwm"], peaks["child_hwm"], peaks["tree"], len(seen), flush=True)


if __name__ == "__main__":
    main()
