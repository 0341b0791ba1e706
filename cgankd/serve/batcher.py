"""Dynamic batching: concurrent requests gathered into one ``session.run``.

While the model is idle (fewer than ``parallel`` calls running), a request runs at once: a lone
client waits for nothing. While it is busy, arriving inputs are gathered until a call finishes,
the gathered batch holds ``max_batch`` inputs, or ``max_wait_s`` has passed since the first of
them arrived; then one onnxruntime call runs them all (in the thread pool, off the event loop), and
each request gets its own rows back. So the batch grows with the load, and the wait is bounded.
A request of ``max_batch`` inputs or more runs alone at once. The queue is bounded without a limit of its own: a waiting
request holds one of the server's ``max_in_flight`` slots (cgankd/serve/limits.py), so at most that
many wait. A failure of the batched call fails each request of that batch alike.

One batcher serves one model: after ``/reload`` the app makes a new one for the new model, and the
old one's gathered batch still runs on the old model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool


class Batcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int, max_wait_s: float,
                 parallel: int = 1) -> None:
        """``run``: the model's call on a batch; ``parallel``: calls at once before requests wait."""
        self.run, self.max_batch, self.max_wait, self.parallel = run, max_batch, max_wait_s, parallel
        self.running = 0
        self.waiting: list[tuple[np.ndarray, asyncio.Future]] = []
        self.rows = 0
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task] = set()  # the batches running (a reference keeps each alive)

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) >= self.max_batch:
            return await run_in_threadpool(self.run, x)
        if self.rows + len(x) > self.max_batch:
            self.flush()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiting.append((x, fut))
        self.rows += len(x)
        if self.rows >= self.max_batch or self.running < self.parallel:
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.max_wait, self.flush)
        return await fut

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        items, self.waiting, self.rows = self.waiting, [], 0
        if items:
            self.running += 1
            task = asyncio.get_running_loop().create_task(self._run(items))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run(self, items: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        try:
            out = await run_in_threadpool(self.run, np.concatenate([x for x, _ in items]))
        except Exception as exc:  # the model's error goes to every request of the batch
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(exc)
            return
        finally:
            self.running -= 1
            if self.waiting:  # what gathered meanwhile goes now
                self.flush()
        start = 0
        for x, fut in items:
            if not fut.done():  # a client that went away cancelled its future
                fut.set_result(out[start:start + len(x)])
            start += len(x)


class Runner:
    """The served model's raw outputs for a batch: through a ``Batcher`` of that model when batching
    is on (``serve.batching``), else one ``session.run`` per request."""

    def __init__(self, batching: bool, max_batch: int = 32, max_wait_s: float = 0.002, parallel: int = 1) -> None:
        self.batching, self.max_batch, self.max_wait, self.parallel = batching, max_batch, max_wait_s, parallel
        self.model: Any = None
        self.batcher: Batcher | None = None
        self.observe: Callable[[int], None] = lambda n: None  # inputs per model call (/metrics)

    async def __call__(self, model: Any, x: np.ndarray) -> np.ndarray:
        if not self.batching:
            return await run_in_threadpool(self._call, model, x)
        if self.model is not model or self.batcher is None:  # a reload: the new model gets its own queue
            self.model, self.batcher = model, Batcher(partial(self._call, model), self.max_batch, self.max_wait,
                                                 self.parallel)
        return await self.batcher(x)

    def _call(self, model: Any, x: np.ndarray) -> np.ndarray:
        self.observe(len(x))
        return model.run(x)
