"""The local stack's supervisor: back-off doubles per crash, and it gives up loudly."""

from atelier_devtools.local.supervisor import BACKOFF_S, Exit, Supervisor


class _CrashingServices:
    """A service that dies again the moment it is restarted."""

    def __init__(self) -> None:
        self.restarts = 0
        self.forgotten: list[str] = []

    def died(self) -> dict[str, int]:
        return {} if self.forgotten else {"tagger": 1}

    def restart(self, name: str) -> None:
        self.restarts += 1

    def forget(self, name: str) -> None:
        self.forgotten.append(name)


def test_backoff_doubles_then_the_supervisor_gives_up() -> None:
    services, exits = _CrashingServices(), []
    supervisor = Supervisor(services, exits.append, give_up_after=3)  # type: ignore[arg-type]
    now = 1000.0
    for _ in range(4):
        supervisor._died("tagger", 1, now)
        supervisor._history["tagger"].restart_at = None  # As if the restart had happened (and died again).
        now += 1
    assert [e.restart_in_s for e in exits] == [BACKOFF_S[0], BACKOFF_S[1], BACKOFF_S[2], None]
    assert exits[-1] == Exit("tagger", 1, 4, None) and services.forgotten == ["tagger"]


def test_crashes_outside_the_window_are_forgiven() -> None:
    services, exits = _CrashingServices(), []
    supervisor = Supervisor(services, exits.append, window_s=10)  # type: ignore[arg-type]
    for at in (0.0, 100.0, 200.0):
        supervisor._died("tagger", 1, at)
        supervisor._history["tagger"].restart_at = None
    assert [e.crashes for e in exits] == [1, 1, 1]
