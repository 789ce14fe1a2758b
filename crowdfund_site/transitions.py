"""One guarded helper for the state machines of campaigns and pledges."""

from .exceptions import Conflict


def ensure_transition_allowed(*, transitions: dict[str, set[str]], current: str, target: str, what: str) -> None:
    """Raise Conflict unless ``current -> target`` is listed in ``transitions``."""
    if target not in transitions.get(current, set()):
        raise Conflict(
            f"This {what} is {current.replace('_', ' ')} and cannot become {target.replace('_', ' ')}.",
            code="invalid_state",
        )
