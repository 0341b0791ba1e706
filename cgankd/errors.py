"""User-facing errors: the CLI prints them on one line and exits with code 2."""


class CgankdError(Exception):
    """A problem with the user's input (config, data, paths). Printed as one line."""

    def __init__(self, subject: str, problem: str) -> None:
        self.subject = subject
        self.problem = problem
        super().__init__(f"{subject}: {problem}")
