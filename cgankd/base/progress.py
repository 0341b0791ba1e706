"""Progress on stderr: tqdm's bar on a terminal (when tqdm is installed: the track extra; a bare GPU
box falls back to a one-line bar), one line per 10% when stderr is a log or CI."""

from __future__ import annotations

import sys
import time

from cgankd.base import faults


class Progress:
    """``with Progress(total, "train-gan") as p: p.update(1, loss=0.3)``; redraws at most 5x/s."""

    def __init__(self, total: int, desc: str, stream=None, min_interval: float = 0.2, initial: int = 0,
                 quiet: bool = False) -> None:
        self.total = max(int(total), 1)
        self.desc = desc
        self.n = self.initial = initial  # initial: work already done (a resumed run)
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self.start = time.perf_counter()
        self._last = 0.0
        self._decile = -1
        self.info: dict[str, float] = {}
        self.quiet = quiet  # a torchrun rank other than 0: counts, failpoints, no output
        self._tqdm = _tqdm(self.total, desc, self.stream, initial) if self.stream.isatty() and not quiet else None

    def update(self, n: int = 1, **info: float) -> None:
        """Terminals redraw one line at most every ``min_interval`` s; logs get a line per 10%."""
        if self.n < self.total / 2 <= self.n + n:
            faults.point("half")
        self.n += n
        self.info.update(info)
        now = time.perf_counter()
        if self.quiet:
            return
        if self._tqdm is not None:
            self._tqdm.update(n)
            if info:
                self._tqdm.set_postfix({k: f"{v:.4g}" for k, v in self.info.items()}, refresh=False)
        elif self.stream.isatty():
            if now - self._last >= self.min_interval or self.n >= self.total:
                self._last = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        else:
            decile = int(min(self.n / self.total, 1.0) * 10)
            if decile != self._decile:
                self._decile = decile
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = now - self.start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        bar = "#" * int(min(self.n / self.total, 1.0) * 20)
        extra = " ".join(f"{k}={v:.4g}" for k, v in self.info.items())
        return f"{self.desc} [{bar:<20}] {self.n}/{self.total} {elapsed:5.0f}s eta {eta:4.0f}s {extra}"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.stream.isatty() and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()



def _tqdm(total: int, desc: str, stream, initial: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, file=stream, initial=initial, mininterval=0.2, dynamic_ncols=True)
