"""The GIL is released while the engine works, and Ctrl-C (SIGINT) interrupts a long call.

The workloads are far longer than the tests wait (minutes of forward passes); each test stops
its call as soon as the call has shown progress, and waits for the end with a bounded timeout.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
from typing import Any, List

import pytest

from conftest import load, model_dir

#: 300 distinct candidates: 89,700 forward passes, minutes even with a release build (the child
#: process below builds the same list).
LONG = [[f"candidate {i} " + "word " * (i % 11) for i in range(300)]]


def test_other_python_threads_run_while_the_engine_works() -> None:
    blender = load(threads=1)
    started, stop = threading.Event(), threading.Event()
    outcome: List[Any] = []

    def progress(done: int, total: int) -> None:
        if done > 0:
            started.set()
        if stop.is_set():
            raise InterruptedError("stopped by the main thread")

    def work() -> None:
        try:
            blender.engine.rank(["prompt"], LONG, progress=progress)
            outcome.append("finished")
        except InterruptedError as e:
            outcome.append(e)

    worker = threading.Thread(target=work)
    worker.start()
    assert started.wait(timeout=120), "no progress within 120 s"
    # This thread runs Python code while the engine call is still in flight (it cannot finish
    # before `stop` is set): the call does not hold the GIL.
    assert worker.is_alive()
    stop.set()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], InterruptedError)


CHILD = textwrap.dedent(
    """
    import signal, sys, pairrm
    # Python's own Ctrl-C handler, even when this process was started with SIGINT ignored (as
    # background jobs of a non-interactive shell are).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker(sys.argv[1], threads=1)
    state = {"announced": False, "done": 0}
    def progress(done, total):
        state["done"] = done
        if done > 0 and not state["announced"]:
            state["announced"] = True
            print("started", total, flush=True)
    long = [[f"candidate {i} " + "word " * (i % 11) for i in range(300)]]
    try:
        blender.engine.rank(["prompt"], long, progress=progress)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted after", state["done"], flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX only")
def test_ctrl_c_interrupts_a_long_call() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, model_dir("tiny-original")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 120)
        assert ready, "the child showed no progress within 120 s"
        first = child.stdout.readline().split()
        assert first[:1] == ["started"], (first, child.stderr.read() if child.stderr else "")
        total = int(first[1])
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    words = out.split()
    assert words[:2] == ["interrupted", "after"], out
    assert int(words[2]) < total
