"""Who the engineers are on Zulip: DESKBOT_ENGINEERS resolved to user ids, and kept current.

People are recognised by their Zulip user id only (SPEC §3). A message's
`sender_email` is no key: where the organisation restricts email visibility
it is a stand-in (`user123@…`), and the real address (`delivery_email`) is
shown to administrators at most (NOTES, "Hidden email addresses").

`DESKBOT_ENGINEERS` names engineers three ways:

* a user id: taken as it is;
* an email: resolved to a user id at start (`GET /users/{email}`), which
  works where the address is the account's API email (visible to everyone)
  or the bot may see it; otherwise one log line names the setting and says
  that a user id or a group works instead;
* `@group`: the members of that Zulip user group (and of its subgroups),
  learnt from `POST /register` (`realm_user_groups`: `GET /user_groups` is
  closed to bots) and kept current from `user_group` events.

An engineer works under a name (the author of their notes, the assignee of
`/assign me`, the header of their replies): the address DESKBOT_ENGINEERS
gives for them, else the email their messages carry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("deskbot.adapters.zulip")

SETTING = "DESKBOT_ENGINEERS"


def _group_key(name: str) -> str:
    return name.strip().casefold()


class Engineers:
    """The engineers of DESKBOT_ENGINEERS, by Zulip user id (shared by start-up and the receive loop)."""

    def __init__(self, user_ids: Iterable[int] = (), emails: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        self.user_ids = frozenset(user_ids)
        self.emails = tuple(dict.fromkeys(e.strip().lower() for e in emails))
        self.groups = tuple(dict.fromkeys(g.strip().lstrip("@").strip("*").strip() for g in groups))
        self._lock = threading.Lock()
        #: Emails resolved at start: user id → the address as configured.
        self._by_email: dict[int, str] = {}
        #: Every user group of the organisation: id → {"name", "members", "subgroups"}.
        self._groups: dict[int, dict[str, Any]] = {}
        #: The groups DESKBOT_ENGINEERS names, by id, bound at each registration.
        self._named: dict[int, str] = {}
        self._members: frozenset[int] = frozenset()
        self._missing_told: frozenset[str] = frozenset()

    @property
    def configured(self) -> bool:
        return bool(self.user_ids or self.emails or self.groups)

    # -- emails ---------------------------------------------------------------------
    def resolve_emails(self, lookup: Callable[[str], int | None]) -> list[str]:
        """Resolve each configured email with `lookup` (the user id, or None); return those left unresolved.

        What cannot be resolved is said once, in one line naming the setting.
        """
        resolved: dict[int, str] = {}
        unresolved = []
        for email in self.emails:
            user_id = lookup(email)
            if user_id is None:
                unresolved.append(email)
            else:
                resolved[user_id] = email
        with self._lock:
            self._by_email = resolved
        if unresolved:
            log.warning(
                "%s: cannot resolve %s to a Zulip user id: Zulip shows the bot no account with %s (the"
                " organisation may restrict email visibility); name %s by Zulip user id or as an @group instead",
                SETTING,
                ", ".join(unresolved),
                "this address" if len(unresolved) == 1 else "these addresses",
                "this engineer" if len(unresolved) == 1 else "these engineers",
            )
        if resolved:
            log.info(
                "%s: %s", SETTING, ", ".join(f"{email} is Zulip user {uid}" for uid, email in sorted(resolved.items()))
            )
        return unresolved

    # -- groups ---------------------------------------------------------------------
    def load_groups(self, groups: list[dict[str, Any]]) -> None:
        """The `realm_user_groups` of a register answer: every group, and the named ones bound by id."""
        with self._lock:
            self._groups = {
                int(g["id"]): {
                    "name": str(g.get("name", "")),
                    "members": set(g.get("members", [])),
                    "subgroups": set(g.get("direct_subgroup_ids", [])),
                }
                for g in groups
            }
            wanted = {_group_key(name): name for name in self.groups}
            self._named = {
                gid: wanted[_group_key(g["name"])] for gid, g in self._groups.items() if _group_key(g["name"]) in wanted
            }
            missing = frozenset(set(wanted.values()) - set(self._named.values()))
            self._recount()
            told, self._missing_told = self._missing_told, missing
        if missing and missing != told:
            log.warning(
                "%s: Zulip has no user group named %s; its members are not engineers",
                SETTING,
                ", ".join(f"'{name}'" for name in sorted(missing)),
            )

    def apply_event(self, event: dict[str, Any]) -> None:
        """A `user_group` event (add, add_members, remove_members, add_subgroups, remove_subgroups, update, remove)."""
        op = event.get("op")
        with self._lock:
            if op == "add" and isinstance(event.get("group"), dict):
                g = event["group"]
                self._groups[int(g["id"])] = {
                    "name": str(g.get("name", "")),
                    "members": set(g.get("members", [])),
                    "subgroups": set(g.get("direct_subgroup_ids", [])),
                }
                return  # a new group is not one DESKBOT_ENGINEERS named when the bot started
            group = self._groups.get(int(event.get("group_id", -1)))
            if group is None:
                return
            gid = int(event["group_id"])
            if op == "add_members":
                group["members"].update(event.get("user_ids", []))
            elif op == "remove_members":
                group["members"].difference_update(event.get("user_ids", []))
            elif op == "add_subgroups":
                group["subgroups"].update(event.get("direct_subgroup_ids", []))
            elif op == "remove_subgroups":
                group["subgroups"].difference_update(event.get("direct_subgroup_ids", []))
            elif op == "remove":
                del self._groups[gid]
                name = self._named.pop(gid, None)
                if name is not None:
                    log.warning("%s: user group '%s' was deleted; its members are no longer engineers", SETTING, name)
            elif op == "update" and "name" in event.get("data", {}):
                group["name"] = str(event["data"]["name"])
                if gid in self._named:
                    log.warning(
                        "%s: user group '%s' is now named '%s'; its members stay engineers until the bot"
                        " restarts: update the setting",
                        SETTING,
                        self._named[gid],
                        group["name"],
                    )
            before = self._members
            self._recount()
            gained, lost = self._members - before, before - self._members
        if gained or lost:
            log.info(
                "engineers' user groups changed: %s",
                "; ".join(
                    part
                    for part in (
                        f"now engineers: {sorted(gained)}" if gained else "",
                        f"no longer engineers: {sorted(lost)}" if lost else "",
                    )
                    if part
                ),
            )

    def _recount(self) -> None:
        """Members of the named groups, through their subgroups (called with the lock held)."""
        members: set[int] = set()
        seen: set[int] = set()
        todo = list(self._named)
        while todo:
            gid = todo.pop()
            if gid in seen or gid not in self._groups:
                continue
            seen.add(gid)
            members.update(self._groups[gid]["members"])
            todo.extend(self._groups[gid]["subgroups"])
        self._members = frozenset(members)

    # -- recognition ----------------------------------------------------------------
    def name_of(self, user_id: int, shown_email: str) -> str | None:
        """The name engineer `user_id` works under, or None if they are not one.

        `shown_email` is the email their message carries (used when the setting names them by id or group).
        """
        with self._lock:
            configured = self._by_email.get(user_id)
            engineer = configured is not None or user_id in self.user_ids or user_id in self._members
        if not engineer:
            return None
        return configured or shown_email.strip().lower() or f"zulip user {user_id}"
