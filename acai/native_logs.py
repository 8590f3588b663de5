"""Keeps TensorFlow's native log lines off the terminal: a filter process between the command
and its stderr that forwards everything else."""

from __future__ import annotations

import os
import re
import signal
import sys

# TensorFlow's native log lines (glog format, "I0000 00:00:1795975659.029364  7034 x.cc:31] ...")
# and absl's notice before its logging starts; its fatal lines (F...) are not matched.
NATIVE_LOG_LINE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] )"
)


def quiet() -> tuple[int, int] | None:
    """Sends file descriptor 2 through a filter process that drops TensorFlow's native logs.

    TensorFlow writes start-up and graph-optimizer notes from C++ straight to file descriptor
    2, some before TF_CPP_MIN_LOG_LEVEL is read. Everything else written there (our errors,
    Python tracebacks, a crash's last words) still reaches the terminal: the filter is a
    separate process, so it forwards what it was sent even if this one dies.

    Returns:
      (the filter's process id, a copy of the original stderr), for `restore`; None
      where fork is unavailable.
    """
    if not hasattr(os, "fork"):
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filter: forward every line but TensorFlow's native logs, until EOF
        os.close(write_end)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command, not for us
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not NATIVE_LOG_LINE.match(line):
                    os.write(2, line)
        os._exit(0)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    return pid, saved


def restore(pid: int, saved: int) -> None:
    """Points file descriptor 2 back at `saved` and waits for the filter to forward the rest."""
    sys.stderr.flush()
    os.dup2(saved, 2)  # the filter's pipe closes: it reads to the end and exits
    os.close(saved)
    os.waitpid(pid, 0)
