"""One exception type for every failure a user can fix.

The CLI prints ``error: <message>`` on one line and exits with status 2; the app shows the same text
in a dialog. Messages name the thing (file, line, model) and the fix.
"""

from __future__ import annotations


class PerceptLabError(Exception):
    """A problem the user can act on: bad file, unknown model, wrong folder, ..."""

    def __init__(self, message: str, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:  # noqa: D105
        return f"{self.message} — {self.fix}" if self.fix else self.message


class Cancelled(Exception):
    """Raised when long work is stopped by the user."""
