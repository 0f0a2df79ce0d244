"""All chat services together, as the transport layer receives them."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.chat.app_roles import AppRoles
from bastion.chat.channels import Channels
from bastion.chat.context import ChatContext
from bastion.chat.members import Members
from bastion.chat.messages import Messages
from bastion.chat.moderation import Moderation
from bastion.chat.reactions import Reactions
from bastion.chat.receipts import Receipts
from bastion.chat.revocations import TokenCutoffs
from bastion.chat.search import Search
from bastion.chat.users import Users


@dataclass(frozen=True, slots=True)
class Chat:
    """The chat domain's entry points."""

    ctx: ChatContext
    users: Users
    channels: Channels
    members: Members
    messages: Messages
    reactions: Reactions
    receipts: Receipts
    cutoffs: TokenCutoffs
    app_roles: AppRoles
    search: Search
    moderation: Moderation

    @classmethod
    def build(cls, ctx: ChatContext) -> Chat:
        """Create every service over one context."""
        return cls(
            ctx=ctx,
            users=Users(ctx),
            channels=Channels(ctx),
            members=Members(ctx),
            messages=Messages(ctx),
            reactions=Reactions(ctx),
            receipts=Receipts(ctx),
            cutoffs=TokenCutoffs(ctx),
            app_roles=AppRoles(ctx),
            search=Search(ctx),
            moderation=Moderation(ctx),
        )
