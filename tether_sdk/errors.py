"""Exceptions raised by the SDK."""


class DefinitionError(ValueError):
    """A job, step, asset, schedule or Definitions is declared wrongly.

    Raised at definition time (when the user's module is imported), with a message that
    names the offending definition and says how to fix it.
    """
