"""User-facing errors: the CLI prints them on one line and exits with code 2."""


LIMIT = 400  # characters of each part: a value quoted whole (a 500 KB list) must not become the message


def bounded(text: str, limit: int = LIMIT) -> str:
    """``text`` on one line and at most ``limit`` characters, the cut marked."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[:limit - 25]}... ({len(text):,} characters)"


class CgankdError(Exception):
    """A problem with the user's input (config, data, paths). Printed as one line, bounded."""

    def __init__(self, subject: str, problem: str) -> None:
        self.subject = bounded(subject, 200)
        self.problem = bounded(problem)
        super().__init__(f"{self.subject}: {self.problem}")
