"""Lab results kept by batch and replayed in batch-time order, incrementally.

Both calibrations (:class:`twin.control.calibration.ToolCalibration`, a double-EWMA, and
:class:`twin.control.kalman.KalmanCalibration`, a Kalman filter) learn from lab results that
arrive late, out of order, twice (a retest) or invalid. Their estimate must be the one a replay
of every kept result in batch-time order gives, and their ``outcomes`` (what was done with each
result, and why) must be laid out as that replay lays them out. :class:`ReplayedHistory` keeps
that bookkeeping once: a checkpoint (state, pending suspect) after every step, so a result
replays only from its insertion point (an in-order result costs one step), and the outcomes of
the steps it changed. A subclass says what a step is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left
from typing import Generic, Protocol, TypeVar


class _HasBatch(Protocol):
    @property
    def batch_id(self) -> str: ...


class _Outcome(Protocol):
    @property
    def batch_id(self) -> str: ...


ObsT = TypeVar("ObsT", bound=_HasBatch)
KeptT = TypeVar("KeptT")
StateT = TypeVar("StateT")
SuspectT = TypeVar("SuspectT")
OutT = TypeVar("OutT", bound=_Outcome)


class ReplayedHistory(ABC, Generic[ObsT, KeptT, StateT, SuspectT, OutT]):
    """Kept results, their replay checkpoints and outcomes (see module docstring).

    A subclass passes the state before any result and implements the five hooks below.
    """

    def __init__(self, state0: StateT) -> None:
        self._state0 = state0
        self.state = state0
        self.outcomes: dict[str, OutT] = {}
        self._obs: dict[str, KeptT] = {}
        # Per position in batch-time order: the sort key (time, batch) and the (state,
        # pending suspect) after the step.
        self._keys: list[tuple[float, str]] = []
        self._ckpt: list[tuple[StateT, SuspectT | None]] = []
        # Replay outcome of every kept result (what a full replay would give it).
        self._final: dict[str, OutT] = {}
        # ``outcomes`` is laid out as a full replay lays it out (batches without a kept result
        # first, then the kept ones in batch-time order, with their replay outcome); False
        # once an invalid result broke that layout (the next valid one rebuilds it).
        self._layout_ok = True

    # -- the hooks -------------------------------------------------------------------------
    @abstractmethod
    def _invalid(self, obs: ObsT) -> str:
        """Why ``obs`` cannot be used ("" when it can)."""

    @abstractmethod
    def _rejected(self, obs: ObsT, reason: str) -> OutT:
        """The outcome of an invalid result."""

    @abstractmethod
    def _merge_retest(self, obs: ObsT) -> KeptT:
        """What is kept for ``obs``'s batch, given what was kept before (a retest)."""

    @abstractmethod
    def _key(self, kept: KeptT) -> tuple[float, str]:
        """Replay order of a kept result: (batch time, batch id)."""

    @abstractmethod
    def _step(self, state: StateT, kept: KeptT, suspect: SuspectT | None
              ) -> tuple[StateT, dict[str, OutT], SuspectT | None]:
        """One replay step: the new state, the outcomes it writes (its own result's and that
        of the suspect just before it, which every step resolves) and the pending suspect."""

    # -- the bookkeeping -------------------------------------------------------------------
    def add(self, obs: ObsT) -> list[OutT]:
        """Take one result (in any order) and replay from where it belongs.

        A result for a batch already measured is merged with the kept one (see
        ``_merge_retest``). Returns the outcomes that are new or changed (this result's, and
        those of results the replay treated differently).
        """
        problem = self._invalid(obs)
        if problem:
            out = self._rejected(obs, problem)
            if obs.batch_id in self._obs or obs.batch_id not in self.outcomes:
                self._layout_ok = False  # hides a replay outcome, or lands after them
            self.outcomes[obs.batch_id] = out
            return [out]
        kept = self._merge_retest(obs)
        key = self._key(kept)
        bid = key[1]
        known = bid in self._obs
        in_place = self._layout_ok and (known or bid not in self.outcomes)
        start = len(self._keys)
        i_old = -1
        if known:
            i_old = bisect_left(self._keys, self._key(self._obs[bid]))
            del self._keys[i_old], self._ckpt[i_old]
            start = i_old
        self._obs[bid] = kept
        i_new = bisect_left(self._keys, key)
        self._keys.insert(i_new, key)
        self._ckpt.insert(i_new, (self._state0, None))  # set by the replay below
        start = min(start, i_new)
        # A result inserted before the end (late, or a retest that moved) lands in the middle
        # of ``outcomes``: rebuild its layout. In order, the layout is updated in place.
        in_place = in_place and (i_new == len(self._keys) - 1 or (known and i_new == i_old))
        first = self._replay_from(start)
        if in_place:
            changed = []
            for _, b in self._keys[first:]:
                o = self._final[b]
                if self.outcomes.get(b) != o:
                    self.outcomes[b] = o
                    changed.append(o)
            return changed
        before = self.outcomes
        outcomes = {k: v for k, v in before.items() if k not in self._obs}
        for _, b in self._keys:
            outcomes[b] = self._final[b]
        self.outcomes = outcomes
        self._layout_ok = True
        return [o for k, o in outcomes.items() if before.get(k) != o]

    def _replay_from(self, start: int) -> int:
        """Replay the kept results from position ``start`` on, from the checkpoint before it.

        A step only writes the outcome of its own result and of the suspect it resolves, so
        the outcomes before ``start - 1`` stay as they are. Returns the first position whose
        outcome may have changed.
        """
        state, suspect = self._ckpt[start - 1] if start > 0 else (self._state0, None)
        final, ckpt, keys, kept = self._final, self._ckpt, self._keys, self._obs
        for i in range(start, len(keys)):
            state, out, suspect = self._step(state, kept[keys[i][1]], suspect)
            ckpt[i] = (state, suspect)
            final.update(out)
        self.state = state
        return max(start - 1, 0)

    def replayed(self) -> tuple[StateT, dict[str, OutT]]:
        """Estimate and outcomes of a full replay of the kept results from scratch (the
        reference the incremental replay is tested against)."""
        state = self._state0
        outcomes = {k: v for k, v in self.outcomes.items() if k not in self._obs}
        suspect: SuspectT | None = None
        for kept in sorted(self._obs.values(), key=self._key):
            state, out, suspect = self._step(state, kept, suspect)
            outcomes.update(out)
        return state, outcomes
