"""A dependency-free progress bar on stderr (tqdm is not a core dependency)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "train-gan") as p: p.update(1, loss=0.3)``; redraws at most 5x/s."""

    def __init__(self, total: int, desc: str, stream=None, min_interval: float = 0.2, initial: int = 0) -> None:
        self.total = max(int(total), 1)
        self.desc = desc
        self.n = self.initial = initial  # initial: work already done (a resumed run)
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self.start = time.perf_counter()
        self._last = 0.0
        self._decile = -1
        self.info: dict[str, float] = {}

    def update(self, n: int = 1, **info: float) -> None:
        self.n += n
        self.info.update(info)
        now = time.perf_counter()
        tty = self.stream.isatty()
        if (tty and now - self._last >= self.min_interval) or self.n >= self.total or (
                not tty and int(self.n / self.total * 10) != self._decile):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self.start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        frac = min(self.n / self.total, 1.0)
        bar = "#" * int(frac * 20)
        extra = " ".join(f"{k}={v:.4g}" for k, v in self.info.items())
        line = (
            f"\r{self.desc} [{bar:<20}] {self.n}/{self.total} "
            f"{elapsed:5.0f}s eta {eta:4.0f}s {extra}"
        )
        if self.stream.isatty():
            self.stream.write(line)
        elif int(frac * 10) != self._decile:  # logs and CI: one line per 10%
            self._decile = int(frac * 10)
            self.stream.write(line.lstrip("\r") + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()

