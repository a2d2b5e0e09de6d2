"""Errors a user can fix: the CLI prints their message on one line and exits 2, without a traceback."""


class UserError(Exception):
    """Bad input (a file, a folder, a setting) whose message names what is wrong, where, and the fix."""


class DataError(UserError, ValueError):
    """A data file is missing, empty, or holds text the models cannot read."""
