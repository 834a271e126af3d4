from sqlalchemy.orm import Session

from sigma.store.control import KILL_SWITCH, get_flag, set_flag


def test_flag_defaults_off_and_keeps_who_and_why(session: Session) -> None:
    assert get_flag(session, KILL_SWITCH).enabled is False
    set_flag(session, KILL_SWITCH, True, reason="exchange outage", changed_by="alice")
    session.commit()
    state = get_flag(session, KILL_SWITCH)
    assert (state.enabled, state.reason, state.changed_by) == (True, "exchange outage", "alice")
    assert state.updated_at is not None and state.updated_at.tzinfo is not None
    set_flag(session, KILL_SWITCH, False, reason="resolved", changed_by="bob")
    session.commit()
    assert get_flag(session, KILL_SWITCH).enabled is False
    assert get_flag(session, "other").changed_by == ""
