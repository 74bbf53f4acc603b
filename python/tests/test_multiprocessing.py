"""Bulk jobs: a Blender built in each worker process (multiprocessing with spawn; Ray Data when
ray is installed) gives the numbers of a single process."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import numpy as np
import pytest

import mp_workers
from conftest import load, model_dir

PROMPTS = [f"prompt number {i}" for i in range(12)]
CANDS = [[f"answer {i}", f"reply {i} {i}", "fixed answer"] for i in range(12)]


def test_spawned_pool_workers_each_build_a_blender() -> None:
    want = load(threads=1).rank(PROMPTS, CANDS, return_scores=True)
    chunks = [(PROMPTS[i : i + 3], CANDS[i : i + 3]) for i in range(0, len(PROMPTS), 3)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, initializer=mp_workers.init, initargs=(model_dir("tiny-original"),)) as pool:
        got = pool.map(mp_workers.rank, chunks)
    assert np.concatenate(got).tobytes() == want.tobytes()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method here")
def test_a_blender_inherited_through_fork_says_what_to_do(monkeypatch: Any) -> None:
    blender = load()
    blender.rank(["x"], [["a", "b"]])  # the engine's threads exist in this process only
    monkeypatch.setattr(mp_workers, "_blender", blender)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        message = pool.apply(mp_workers.use_inherited)
    assert "inherited through fork" in message and "Build a Blender in each worker process" in message
    assert blender.rank(["x"], [["a", "b"]]).shape == (1, 2)  # still fine in its own process


def test_ray_data_map_batches() -> None:
    ray = pytest.importorskip("ray", reason="ray not installed: the Ray Data example (docs/python.md) is not run")
    want = load(threads=1).rank(PROMPTS, CANDS, return_scores=True)
    # Ray's workers import RayScorer from mp_workers: give them this folder on their path.
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        ds = ray.data.from_items([{"prompt": p, "candidates": c} for p, c in zip(PROMPTS, CANDS)])
        out = ds.map_batches(
            mp_workers.RayScorer,
            fn_constructor_args=(model_dir("tiny-original"),),
            batch_size=4,
            concurrency=2,
        ).take_all()
    finally:
        ray.shutdown()
    got = {row["prompt"]: np.asarray(row["scores"], dtype=np.float32) for row in out}
    assert np.stack([got[p] for p in PROMPTS]).tobytes() == want.tobytes()
