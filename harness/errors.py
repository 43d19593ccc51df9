"""Named errors. Every message says what was expected, what was found and what to do."""


class HarnessError(Exception):
    """Base class: the CLI prints the message and exits with status 2, no traceback."""


class UnknownBenchmark(HarnessError):
    pass


class InvalidSettings(HarnessError):
    pass


class DataError(HarnessError):
    """A dataset, model or log file is missing, unreadable or malformed."""


class RoundMismatch(HarnessError):
    """The installed LoadGen does not match the round being run."""


class RunFailed(HarnessError):
    """A LoadGen test process crashed, timed out or produced no logs."""


class Interrupted(HarnessError):
    """The harness was stopped by a signal (Ctrl-C, SIGTERM); ``exit_status`` is the shell's 128 + N."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status
