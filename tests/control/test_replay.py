"""ReplayedHistory on its own: in any arrival order, the incremental replay gives the state and
the outcome layout of a replay from scratch (the two calibrations test the same on theirs)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from twin.control.replay import ReplayedHistory


@dataclass(frozen=True)
class Obs:
    batch_id: str
    time_s: float
    value: float


@dataclass(frozen=True)
class Out:
    batch_id: str
    status: str


class Running(ReplayedHistory[Obs, Obs, tuple[float, int], Obs, Out]):
    """A running sum; a value above 5 is a suspect, confirmed by the next one above 5."""

    def __init__(self) -> None:
        super().__init__((0.0, 0))

    def _invalid(self, obs: Obs) -> str:
        return "negative" if obs.value < 0 else ""

    def _rejected(self, obs: Obs, reason: str) -> Out:
        return Out(obs.batch_id, reason)

    def _merge_retest(self, obs: Obs) -> Obs:
        return obs

    def _key(self, kept: Obs) -> tuple[float, str]:
        return (kept.time_s, kept.batch_id)

    def _step(self, state: tuple[float, int], kept: Obs, suspect: Obs | None
              ) -> tuple[tuple[float, int], dict[str, Out], Obs | None]:
        total, n = state
        out: dict[str, Out] = {}
        if kept.value > 5:
            if suspect is not None:
                out[suspect.batch_id] = Out(suspect.batch_id, "confirmed")
                out[kept.batch_id] = Out(kept.batch_id, "confirmed")
                return (total + suspect.value + kept.value, n + 2), out, None
            out[kept.batch_id] = Out(kept.batch_id, "suspect")
            return state, out, kept
        if suspect is not None:
            out[suspect.batch_id] = Out(suspect.batch_id, "rejected")
        out[kept.batch_id] = Out(kept.batch_id, "used")
        return (total + kept.value, n + 1), out, None


class FromScratch(Running):
    def add(self, obs: Obs) -> list[Out]:
        if self._invalid(obs):
            return super().add(obs)
        self._obs[obs.batch_id] = self._merge_retest(obs)
        before = dict(self.outcomes)
        self.state, self.outcomes = self.replayed()
        return [o for k, o in self.outcomes.items() if before.get(k) != o]


arrivals = st.lists(st.tuples(st.integers(0, 15), st.integers(-2, 9)), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(arrivals)
def test_incremental_equals_from_scratch(seq: list[tuple[int, int]]) -> None:
    inc, ref = Running(), FromScratch()
    for b, v in seq:
        obs = Obs(f"B{b:02d}", float(b * 3600 + (b % 3)), float(v))  # retests move no batch
        assert inc.add(obs) == ref.add(obs)
        assert inc.state == ref.state
        assert list(inc.outcomes.items()) == list(ref.outcomes.items())


def test_late_result_resolves_the_suspect_before_it() -> None:
    h = Running()
    h.add(Obs("B1", 1.0, 1.0))
    h.add(Obs("B2", 2.0, 7.0))  # suspect
    h.add(Obs("B4", 4.0, 1.0))  # rejects B2
    assert h.outcomes["B2"].status == "rejected"
    changed = h.add(Obs("B3", 3.0, 8.0))  # late: confirms B2, then B4 is used
    assert {o.batch_id: o.status for o in changed} == {"B2": "confirmed", "B3": "confirmed"}
    assert list(h.outcomes) == ["B1", "B2", "B3", "B4"]
    assert h.state == (17.0, 4)
