"""The source of `_peak_mib()`, put at the top of the `python -c` children of the memory benches: the
child's own peak RSS in MiB."""

PEAK_MIB = r'''
import resource


def _peak_mib():
    # VmHWM is this process's own peak; ru_maxrss also counts the parent's pages at fork/exec
    # (make bench runs every bench in one process, which grows).
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
'''
