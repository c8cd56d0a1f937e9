"""The gateway's exceptions. Library errors (aiomqtt, ssl, sqlite3, bleak) are translated into
these at the boundary, always ``from exc``, with a reason an installer can act on.

EldergateError
 ├── UplinkError(reason)      the platform cannot be reached or refused us
 └── DriverError              a device connection failed (the supervisor restarts the driver)
"""

from __future__ import annotations


class EldergateError(Exception):
    pass


class UplinkError(EldergateError):
    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class DriverError(EldergateError):
    pass
