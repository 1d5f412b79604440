"""chatstore's exceptions: a small tree rooted at :class:`ChatstoreError`.

Every exception that leaves ``chatstore.queries`` or ``chatstore.aio`` is one of these,
chained (``raise ... from``) to its cause when it has one. Database errors are mapped in
one place, :func:`chatstore._core.translate`, by SQLSTATE and constraint name.
Each class's docstring is its default message.
"""

from __future__ import annotations

from typing import ClassVar


class ChatstoreError(Exception):
    """The database refused the call."""

    #: True when the same call may succeed if retried later (see :class:`Unavailable`).
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, constraint: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        #: The database constraint that refused the call, when one did.
        self.constraint = constraint
        super().__init__(self.message)


class NotFound(ChatstoreError):
    """No such record for this user."""


class InvalidInput(ChatstoreError):
    """The arguments break one of chatstore's rules."""


class AlreadyExists(InvalidInput):
    """A record with this key already exists."""


class Unavailable(ChatstoreError):
    """The database could not serve the call now (connection lost or refused, server
    shutting down, serialization failure or deadlock); retry, on a fresh connection if
    this one is closed."""

    retryable: ClassVar[bool] = True


class TimedOut(Unavailable):
    """The call ran past statement_timeout or waited past lock_timeout; retry later, or
    raise the limit if the call is legitimately slow."""


class Cancelled(ChatstoreError):
    """The statement was cancelled on request (``conn.cancel()``, ``pg_cancel_backend``)
    and wrote nothing; in a caller's transaction, roll it back. Not retryable: someone
    asked for it to stop."""


class PermissionDenied(ChatstoreError):
    """The database role of this connection may not do this: it is not a member of
    ``chatstore_app`` (or a grant is missing), or it turned ``row_security`` off. A
    deployment error, not the end user's; not retryable."""


class NotDistributable(ChatstoreError):
    """This database cannot be distributed over Citus as it is (no Citus, not the
    coordinator, or migrations pending); nothing was changed."""


__all__ = [
    "AlreadyExists",
    "Cancelled",
    "ChatstoreError",
    "InvalidInput",
    "NotDistributable",
    "NotFound",
    "PermissionDenied",
    "TimedOut",
    "Unavailable",
]
