"""The one exception type for bad user input: the CLI prints it as one line and exits 2."""


class UserError(Exception):
    """Bad input from the user. The message names the problem and the fix, on one line."""

    def __init__(self, problem: str, fix: str = "") -> None:
        message = problem if not fix else f"{problem}; {fix}"
        super().__init__(message.replace("\n", " "))


class DataWarning(UserWarning):
    """Data that loads but not whole (e.g. QA examples skipped for a bad answer offset); the CLI prints one line."""
