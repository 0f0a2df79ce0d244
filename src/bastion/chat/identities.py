"""Just-in-time users for trusted external OpenID Providers (the ``IdentityStore``)."""

from __future__ import annotations

from bastion.chat.context import ChatContext
from bastion.core.ids import Kind, new_id
from bastion.store.records import DuplicateKeyError
from bastion.store.repos import identities as repo
from bastion.store.repos import users as users_repo


class ExternalUsers:
    """Finds the user linked to an (issuer, subject), creating both on first sight."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    async def user_for(
        self, app_id: str, issuer: str, subject: str, *, external_id: str, display_name: str
    ) -> str | None:
        """The linked user's id; None if the external id belongs to someone else."""
        async with self._ctx.db.read() as conn:
            found = await repo.linked_user(conn, app_id, issuer, subject)
        if found is not None:
            return found
        try:
            async with self._ctx.db.write() as conn:
                user_id = new_id(Kind.USER)
                now = self._ctx.clock.now()
                await users_repo.insert_user(
                    conn,
                    app_id,
                    user_id=user_id,
                    external_id=external_id,
                    display_name=display_name,
                    now=now,
                )
                await repo.link(conn, app_id, issuer, subject, user_id, now)
                return user_id
        except DuplicateKeyError:
            # Either another request linked this identity a moment ago (use its user),
            # or the external id is taken by a user of another identity: refuse, since
            # linking it would hand that account to this provider's user.
            async with self._ctx.db.read() as conn:
                return await repo.linked_user(conn, app_id, issuer, subject)
