"""The small equipment interface every station talks to.

A station asks its equipment to run one recipe step and gets back the process values the
equipment actually saw. Two implementations plug in behind the same interface, as transports
do in httpx: :mod:`twin.equipment.simulated` (in-process, for studies and tests) and the
OPC UA equipment of the live twin. The interface is SimPy-aware: :meth:`Equipment.execute` is
a SimPy process body, so a live implementation can wait on PLC events through the same
``env`` while the plant model stays unchanged.

The simulation core never imports asyncua; nothing here does either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import simpy

if TYPE_CHECKING:
    from twin.config.schema import MillConfig, OxidizerConfig, SputterConfig
    from twin.plant.breakdowns import FailureClock

StepStatus = Literal["ok", "aborted", "gap"]
"""``ok``: ran to the end; ``aborted``: stopped early (fault, trip, operator abort);
``gap``: ran, but the process-value record has holes (see :attr:`StepResult.gaps`)."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class EndpointAction:
    """What the twin asks of a running step at one of its checkpoints.

    Attributes
    ----------
    hold_min : float
        The step's new total hold time, min (from the start of the hold; a value at or below
        the time already held ends the hold now and starts the cool-down).
    reason : str
        Why (goes into the audit trail with the confirmed result).
    fault : str
        Non-empty for a gross fault no trim can rescue: the hold is ended at once and the step
        reported ``aborted`` with this fault (the batch is then held for the lab).
    """

    hold_min: float
    reason: str
    fault: str = ""


@runtime_checkable
class StepSupervisor(Protocol):
    """The twin's in-batch endpoint control, as a furnace step calls it while it runs.

    Simulated furnaces and the OPC UA furnace call it the same way: at each of
    :meth:`checkpoints_s` (elapsed time into the step) with the indicated record so far;
    when it returns an action the equipment applies it (a live furnace writes the PLC's
    remaining hold and reads it back) and reports the confirmed outcome to :meth:`applied`.
    """

    def checkpoints_s(self, setpoints: Mapping[str, float]) -> tuple[float, ...]:
        """Elapsed times into the step at which to check, s (ascending)."""
        ...

    def check(self, seen: Any, elapsed_s: float, setpoints: Mapping[str, float],
              monitor: Mapping[str, Any] | None = None) -> EndpointAction | None:
        """Decide on the record ``seen`` (a Profile, time from the step's start) so far.

        ``monitor``: independent instruments on the record's time grid, each optional:
        ``overtemp_c`` (the over-temperature thermocouple, °C) and ``o2_analyser_atm`` (the
        exhaust O2 analyser, atm). None when the furnace has neither.
        """
        ...

    def applied(self, action: EndpointAction, confirmed_hold_min: float | None,
                t_s: float, error: str = "") -> None:
        """The equipment's confirmed result of ``action``: the hold the tool reads back
        (None when the write failed: ``error`` says why)."""
        ...


@dataclass(frozen=True)
class StepRequest:
    """One recipe step for one batch.

    Attributes
    ----------
    batch_id : str
        The unit being processed (heat, mill lot, charge, roll, sheet run).
    recipe_id : str
        Recipe name and revision, e.g. ``'oxidation:850C-30min'``.
    kind : str
        What the step does: ``'melt'``, ``'mill'``, ``'oxidize'``, ``'coat'``, ``'sputter'``.
    setpoints : Mapping[str, float]
        Flat named setpoints with units in the names (``hold_c``, ``ramp_c_per_min``,
        ``hold_min``, ``cool_c_per_min``, ``po2_atm``, ``ph2o_atm``; ``power_w``,
        ``o2_sccm``, ``deposit_min``, ``oxidize_min`` ...).
    context : Mapping[str, Any]
        What the material brings (particle sizes, base element, initial oxide, mass ...).
        Simulated equipment uses it to compute the hidden truth; live equipment ignores it.
    supervisor : StepSupervisor or None
        In-batch endpoint control of a furnace step (None: the step runs as planned).
    on_download : callable or None
        Live equipment calls it once the setpoints are on the tool, ``(read_back, error)``:
        the values the tool read back by setpoint name, and ``''`` (or why the download
        failed, with an empty mapping). The control loop audits the write with it.
    """

    batch_id: str
    recipe_id: str
    kind: str
    setpoints: Mapping[str, float]
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    supervisor: StepSupervisor | None = None
    on_download: Callable[[Mapping[str, Any], str], None] | None = None


@dataclass(frozen=True)
class StepResult:
    """What the equipment reports after a step.

    Attributes
    ----------
    path : str
        Dotted component path of the equipment.
    batch_id : str
        The unit processed.
    status : {'ok', 'aborted', 'gap'}
        Outcome (see :data:`StepStatus`).
    start_s, end_s : float
        Simulation time at start and end of the step, s.
    actual : Any
        Process-value trajectory seen: a :class:`twin.physics.oxidation.Profile` of the
        indicated values for furnaces; ``None`` where :attr:`values` says it all.
    values : Mapping[str, float]
        Scalar actual process values with units in the names (e.g. ``power_kw``,
        ``hold_c_mean``, ``o2_sccm``), and for an aborted step ``completed_fraction``.
    gaps : tuple of (float, float)
        Holes in the record, (start_s, end_s) pairs; empty when complete.
    fault : str
        Why the step was aborted (``''`` when it was not).
    truth : Any
        Simulated equipment only: an opaque handle to the hidden true result (e.g. the true
        oxide) that the lab can measure. The twin's prediction never reads it.
    on_line : bool
        The step ran on the line's own equipment (a PLC), not on simulated equipment.
    """

    path: str
    batch_id: str
    status: StepStatus
    start_s: float
    end_s: float
    actual: Any = None
    values: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    gaps: tuple[tuple[float, float], ...] = ()
    fault: str = ""
    truth: Any = None
    on_line: bool = False

    @property
    def duration_s(self) -> float:
        """Time the step took, s."""
        return self.end_s - self.start_s


@runtime_checkable
class Equipment(Protocol):
    """A tool the plant model runs recipe steps on.

    Attributes
    ----------
    path : str
        Dotted component path (``line1.oxidizer1``); also the OPC UA browse path.
    """

    path: str

    def execute(self, env: simpy.Environment,
                step: StepRequest) -> Generator[simpy.Event, Any, StepResult]:
        """Run one step; a SimPy process body that returns the :class:`StepResult`."""
        ...

    def recover(self, env: simpy.Environment,
                result: StepResult) -> Generator[simpy.Event, Any, float]:
        """Wait until the equipment is ready again after an aborted step; return downtime, s."""
        ...

    def maintain(self, env: simpy.Environment,
                 duration_s: float) -> Generator[simpy.Event, Any, float]:
        """Planned maintenance of ``duration_s``; return the time it took, s."""
        ...


class ToolProvider(Protocol):
    """Where a plant model's furnaces and sputter tools come from: the world it runs in.

    A simulated run gets them from the hidden plant (:class:`twin.hidden.world.HiddenPlant`,
    the true process of a truth file); a live twin's stations that no PLC reports get them
    from the twin's own model (:class:`twin.equipment.modelled.ModelTools`). The plant model
    only runs steps on what it is given; it never reads through it.
    """

    def furnace(self, path: str, cfg: OxidizerConfig, clock: FailureClock) -> Equipment:
        """The oxidation furnace at ``path``."""
        ...

    def mill(self, path: str, cfg: MillConfig, clock: FailureClock) -> Equipment:
        """The mill at ``path``; a finished lot's result values carry its QC readings
        (``d50_um``, ``gsd``, ``ssa_m2_g``, ``oxygen_wt_pct``)."""
        ...

    def storage_rh_percent(self, t_s: float) -> float:
        """What the storage room's humidity probe reads at ``t_s``, %RH."""
        ...

    def sputter(self, path: str, cfg: SputterConfig, clock: FailureClock, *,
                material: str) -> Equipment:
        """The sputter tool at ``path`` (target ``material``)."""
        ...


@runtime_checkable
class LabSource(Protocol):
    """A truth handle whose lab result comes from outside the model (live equipment).

    Simulated equipment returns the hidden true oxide and the lab adds the metrology noise; a
    live tool's truth is unknown to the twin, so its handle asks the real (or emulated) lab and
    the model waits for the answer.
    """

    def measure(self, env: simpy.Environment) -> Generator[simpy.Event, Any, float]:
        """Wait for the lab result of this batch; return the measured thickness, nm (NaN: none)."""
        ...


@dataclass(frozen=True)
class LabResult:
    """What the lab reports for a batch.

    Attributes
    ----------
    thickness_nm : float
        The oxide thickness the lab reports, nm (NaN: no valid result).
    method : str
        How it was measured: ``o_bet`` (oxygen by inert-gas fusion with the BET surface),
        ``xps`` (Si 2p intensity ratio), or ``lab`` (an outside lab's value as reported).
    o_wt_pct : float
        Oxygen content of the oxidised product, wt % (``o_bet``; NaN otherwise).
    bet_m2_g : float
        Specific surface the thickness was derived with, m²/g (``o_bet``).
    note : str
        Why there is no valid value, or what the method assumed.
    """

    thickness_nm: float
    method: str
    o_wt_pct: float = math.nan
    bet_m2_g: float = math.nan
    note: str = ""


@runtime_checkable
class LabSample(Protocol):
    """A simulated batch's material as the lab receives it (an opaque truth handle).

    The hidden plant's truth handles analyse themselves with the lab's methods and noise: the
    twin's lab station only waits for the turnaround and the instrument, then asks.
    """

    def analyse(self, lab: Any, rng: Any) -> LabResult:
        """The lab's result for this sample (``lab``: the plant's ``[stations.lab]``)."""
        ...


def lab_truth(truth: Any, key: str | None = None) -> Any:
    """What the lab measures: a :class:`LabSource` or :class:`LabSample` as it is, else the
    true mean value, nm.

    ``key`` picks a field of a dict-like truth (the sputter tool's ``'cap_nm'``); without it
    the truth's ``mean_nm`` is used (an oxide distribution).
    """
    # A LabSource is anything with measure(), a LabSample anything with analyse() (what the
    # runtime Protocol checks test, without their cost: they inspect every attribute).
    if callable(getattr(truth, "analyse", None)) or (
            not isinstance(truth, (dict, float)) and callable(getattr(truth, "measure", None))):
        return truth
    return float(truth[key]) if key is not None else float(truth.mean_nm)

