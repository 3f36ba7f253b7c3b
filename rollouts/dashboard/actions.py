"""The dashboard's actions: which requests each makes (for the SubjectAccessReview) and how it is sent.

Rules:
- What an action sends is rollouts.platform.commands (the CLI sends the same); this table
  only names each action, its confirmation question and the API requests it makes.
- Every action needs a confirmation (`confirm=yes`, asked by the page: a dialog with
  JavaScript, a confirmation page without) and the form's CSRF token.
- `set-image` takes `image` as CONTAINER=IMAGE (`*=IMAGE` for every container).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from rollouts.dashboard.auth import Need
from rollouts.platform import commands
from rollouts.platform.cluster import Cluster

__all__ = ["ACTIONS", "Action", "FormError", "parse_image"]

GET, STATUS, SPEC, UPDATE = Need("get"), Need("patch", subresource="status"), Need("patch"), Need("update")


class FormError(ValueError):
    """A form field that cannot be used (400, the message says what to type)."""


@dataclass(frozen=True)
class Action:
    slug: str
    label: str
    question: str  # "{name}" is the Rollout
    needs: tuple[Need, ...]
    run: Callable[[Cluster, str, str, Mapping[str, str], datetime], str]
    danger: bool = False
    field: str = ""  # the one form field it takes, if any


def parse_image(text: str) -> list[tuple[str, str]]:
    container, sep, image = text.strip().partition("=")
    if not sep or not container or not image or "=" in image or " " in image:
        raise FormError(f"{text!r} is not CONTAINER=IMAGE (e.g. app=shop/checkout:1.5.0, or *=IMAGE for every "
                        "container)")
    return [(container, image)]


ACTIONS: dict[str, Action] = {action.slug: action for action in (
    Action("promote", "Promote", "Promote {name} to its next step?", (GET, STATUS, SPEC),
           lambda c, n, ns, form, now: commands.promote(c, n, ns)),
    Action("promote-full", "Promote full", "Skip every remaining step, pause and analysis of {name}?",
           (GET, STATUS), lambda c, n, ns, form, now: commands.promote(c, n, ns, full=True), danger=True),
    Action("abort", "Abort", "Abort {name}? Traffic goes back to stable at once.", (GET, STATUS),
           lambda c, n, ns, form, now: commands.abort(c, n, ns), danger=True),
    Action("retry", "Retry", "Retry the aborted {name} from step 0?", (GET, STATUS),
           lambda c, n, ns, form, now: commands.retry(c, n, ns)),
    Action("pause", "Pause", "Pause {name}?", (GET, SPEC), lambda c, n, ns, form, now: commands.pause(c, n, ns)),
    Action("resume", "Resume", "Resume {name}?", (GET, SPEC, STATUS),
           lambda c, n, ns, form, now: commands.resume(c, n, ns)),
    Action("restart", "Restart", "Restart every pod of {name}?", (SPEC,),
           lambda c, n, ns, form, now: commands.restart(c, n, ns, at=now)),
    Action("set-image", "Set image", "Set the image of {name}? This starts a new release.", (GET, UPDATE),
           lambda c, n, ns, form, now: commands.set_image(c, n, ns, parse_image(form.get("image", ""))),
           field="image"),
)}
