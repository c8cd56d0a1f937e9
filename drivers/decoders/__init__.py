"""Pure decoders: raw device bytes or JSON in, normalised readings (or a reason) out.

Every public decoder either returns readings or raises :class:`DecodeError` with a reason a
person can read. No other exception may escape a decoder (fuzz tests hold them to it).
"""


class DecodeError(ValueError):
    """A message could not be decoded; ``str(err)`` says why."""


__all__ = ["DecodeError"]
