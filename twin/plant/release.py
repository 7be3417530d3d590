"""The release decision of a batch: one set of rules, read from the plant file.

The plant model (:mod:`twin.plant.quality`, so the live twin too, which runs the same plant
model on live equipment) and the release reports (:mod:`twin.report.rules`) decide with the
functions of this module and with the values of the run's own plant file
(:meth:`ReleaseRules.from_config`); neither keeps thresholds of its own.

Rules (plant-file keys)
    ``control.window_nm`` the release specification of the mean oxide; ``control.band_nm``
    (:attr:`ControlConfig.band`) the plant's internal band (a flag, never a rejection);
    ``control.min_reliability``, ``control.interval_level`` and ``control.outlier_sigma`` for
    the virtual-metrology (VM) prediction; ``disposition.min_within_50pct_share``,
    ``disposition.max_reworks`` and ``disposition.release_on_prediction``.

When a batch is finished (:func:`on_prediction`)
    It is **released on its prediction** only when ``release_on_prediction`` is on, the batch
    was not sampled for the lab, its step completed, the prediction may speak alone
    (:func:`prediction_alone`: a VM prediction must be reliable, score at least
    ``min_reliability``, with its whole interval inside the window) and the predicted mean and
    uniformity pass (:func:`judge`). Otherwise it is **held for the lab** (rule ``THK-BASIS``).
When the lab answers (:func:`on_lab`)
    The lab measures the mean oxide (O + BET, or XPS), never the uniformity. The prediction is
    **contradicted** when the lab value lies outside the prediction's interval on the lab value
    (``lab_lower_nm``–``lab_upper_nm``) widened from ``interval_level`` to ``outlier_sigma``
    standard deviations: the standardised residual ``|ln(lab / predicted)| / sigma_lab`` is
    above ``outlier_sigma``, the same gate the calibration puts on a lab result
    (:mod:`twin.control.calibration`, :mod:`twin.control.kalman`). A contradicted prediction no
    longer speaks for the batch: the decision uses only what was measured. A mean outside the
    window is scrapped or reworked on the lab value; a mean inside it has an unknown uniformity
    (which only the prediction gave) and the batch is **held for a retest / QA review**
    (rule ``VM-CONTRADICTED``), never released or scrapped on that prediction's uniformity.
    A prediction the lab did not contradict still gives the uniformity.

Decisions: ``release``, ``rework``, ``scrap`` and ``hold``; the reports show them as
``released``, ``rejected`` (rework and scrap: not released as made) and ``held``
(:data:`STATUS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, Literal

from twin.config.schema import PlantConfig

#: The uniformity measure: share of the surface within ±this share of the mean oxide.
UNIFORMITY_REL = 0.5
#: Report status of each plant decision.
STATUS: dict[str, str] = {"release": "released", "hold": "held", "rework": "rejected",
                          "scrap": "rejected"}
DECISIONS: tuple[str, ...] = tuple(STATUS)
#: Batch-record columns of the evidence a decision was taken on (see :class:`Evidence`).
PREFIX = "rel_"

Source = Literal["prediction", "tool", "none"]
Basis = Literal["lab", "prediction", "none"]


@dataclass(frozen=True)
class ReleaseRules:
    """The release rules of one plant file (see the module docstring)."""

    window_nm: tuple[float, float]
    band_nm: tuple[float, float]
    min_reliability: float
    interval_level: float
    outlier_sigma: float
    min_within_50pct_share: float
    max_reworks: int
    release_on_prediction: bool

    @classmethod
    def from_config(cls, cfg: PlantConfig) -> ReleaseRules:
        """The rules of a validated plant file."""
        c, d = cfg.control, cfg.disposition
        return cls(window_nm=(float(c.window_nm[0]), float(c.window_nm[1])),
                   band_nm=(float(c.band[0]), float(c.band[1])),
                   min_reliability=float(c.min_reliability),
                   interval_level=float(c.interval_level),
                   outlier_sigma=float(c.outlier_sigma),
                   min_within_50pct_share=float(d.min_within_50pct_share),
                   max_reworks=int(d.max_reworks),
                   release_on_prediction=bool(d.release_on_prediction))

    @property
    def z(self) -> float:
        """Standard-normal quantile of the two-sided ``interval_level``."""
        return NormalDist().inv_cdf(0.5 + self.interval_level / 2.0)

    def as_dict(self) -> dict[str, Any]:
        """The rules with their plant-file names (for certificates and pages)."""
        return {"window_nm": list(self.window_nm), "band_nm": list(self.band_nm),
                "min_reliability": self.min_reliability,
                "interval_level": self.interval_level, "outlier_sigma": self.outlier_sigma,
                "min_within_50pct_share": self.min_within_50pct_share,
                "max_reworks": self.max_reworks,
                "release_on_prediction": self.release_on_prediction}


@dataclass(frozen=True)
class Evidence:
    """What a batch's decision is taken on, besides the lab value.

    Attributes
    ----------
    predicted_nm : float
        Predicted mean oxide, nm (NaN: none).
    within_50pct_share : float
        Share of the surface within ±50 % of the mean (NaN: unknown).
    uniformity_source : {'prediction', 'tool', 'none'}
        Where the uniformity comes from: the prediction (a powder charge's distribution), the
        tool (a rotated sputter run's cap is uniform by construction) or nowhere.
    lower_nm, upper_nm : float
        VM interval on the batch's mean, nm (NaN: no VM).
    lab_lower_nm, lab_upper_nm : float
        VM interval on what the lab will report, nm (NaN: no VM).
    reliability : float
        VM reliability score (NaN: an unscored model prediction).
    vm_reliable : bool or None
        The VM's own verdict (None: no VM).
    vm_reasons : str
        Why the VM is not reliable.
    aborted : bool
        The step was aborted (or its record is not to be trusted).
    sampled : bool
        Picked by the lab's sampling plan.
    reworks : int
        Reworks the batch has had.
    can_rework : bool
        Whether the route can rework the batch at all.
    """

    predicted_nm: float
    within_50pct_share: float = math.nan
    uniformity_source: Source = "prediction"
    lower_nm: float = math.nan
    upper_nm: float = math.nan
    lab_lower_nm: float = math.nan
    lab_upper_nm: float = math.nan
    reliability: float = math.nan
    vm_reliable: bool | None = None
    vm_reasons: str = ""
    aborted: bool = False
    sampled: bool = False
    reworks: int = 0
    can_rework: bool = True

    @classmethod
    def of(cls, predicted_nm: float, within_50pct_share: float, vm: Any = None, *,
           uniformity_source: Source = "prediction", aborted: bool = False, reworks: int = 0,
           can_rework: bool = True) -> Evidence:
        """The evidence of a finished batch, with its VM prediction when there is one."""
        ev = cls(float(predicted_nm), float(within_50pct_share), uniformity_source,
                 aborted=aborted, reworks=int(reworks), can_rework=can_rework)
        if vm is None:
            return ev
        return replace(ev, lower_nm=float(vm.lower_nm), upper_nm=float(vm.upper_nm),
                       lab_lower_nm=float(vm.lab_lower_nm), lab_upper_nm=float(vm.lab_upper_nm),
                       reliability=float(vm.reliability), vm_reliable=bool(vm.reliable),
                       vm_reasons="; ".join(vm.reasons))

    @property
    def scored(self) -> bool:
        """True for a VM prediction (it has a reliability and an interval)."""
        return self.vm_reliable is not None or math.isfinite(self.reliability)

    def columns(self) -> dict[str, Any]:
        """The batch-record columns (``rel_*``) the report reads the evidence back from."""
        p = PREFIX
        return {f"{p}pred_nm": self.predicted_nm,
                f"{p}within_50pct_share": self.within_50pct_share,
                f"{p}uniformity_source": self.uniformity_source,
                f"{p}lower_nm": self.lower_nm, f"{p}upper_nm": self.upper_nm,
                f"{p}lab_lower_nm": self.lab_lower_nm, f"{p}lab_upper_nm": self.lab_upper_nm,
                f"{p}reliability": self.reliability,
                # 1/0, NaN without a VM (a float column stores all three).
                f"{p}vm_reliable": (math.nan if self.vm_reliable is None
                                    else float(self.vm_reliable)),
                f"{p}aborted": self.aborted, f"{p}sampled": self.sampled,
                "reworks": self.reworks, f"{p}can_rework": self.can_rework}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Evidence:
        """The evidence from a batch-record row: the plant's ``rel_*`` columns, else the
        report's canonical oxide columns (a run folder written by other tools)."""
        p = PREFIX

        def num(*keys: str) -> float:
            for k in keys:
                v = _float(row.get(k))
                if v is not None:
                    return v
            return math.nan

        if f"{p}pred_nm" in row and _float(row.get(f"{p}aborted")) is not None:
            rel = _float(row.get(f"{p}vm_reliable"))
            source = str(row.get(f"{p}uniformity_source") or "none")
            return cls(
                predicted_nm=num(f"{p}pred_nm"),
                within_50pct_share=num(f"{p}within_50pct_share"),
                uniformity_source=source if source in ("prediction", "tool")  # type: ignore[arg-type]
                else "none",
                lower_nm=num(f"{p}lower_nm"), upper_nm=num(f"{p}upper_nm"),
                lab_lower_nm=num(f"{p}lab_lower_nm"), lab_upper_nm=num(f"{p}lab_upper_nm"),
                reliability=num(f"{p}reliability"),
                vm_reliable=None if rel is None else bool(rel),
                vm_reasons=_text(row.get("vm_reasons")),
                aborted=_flag(row.get(f"{p}aborted")), sampled=_flag(row.get(f"{p}sampled")),
                reworks=int(num("reworks")) if math.isfinite(num("reworks")) else 0,
                can_rework=_flag(row.get(f"{p}can_rework")))
        # Canonical report columns (twin.report.data): no record of the plant's own inputs.
        status = str(row.get("status") or "ok").lower()
        gap = num("gap_s")
        kind = str(row.get("kind") or row.get("unit_kind") or "")
        within = num("oxide_within_50_share", "pred_within_50pct_share",
                     "vm_within_50pct_share")
        reliable = _float(row.get("vm_reliable"))
        return cls(
            predicted_nm=num("oxide_mean_nm", "pred_oxide_mean_nm"),
            within_50pct_share=within,
            uniformity_source="prediction" if math.isfinite(within) else "none",
            lower_nm=num("oxide_pi_low_nm", "vm_lower_nm"),
            upper_nm=num("oxide_pi_high_nm", "vm_upper_nm"),
            lab_lower_nm=num("vm_lab_lower_nm"), lab_upper_nm=num("vm_lab_upper_nm"),
            reliability=num("vm_reliability"),
            vm_reliable=None if reliable is None else bool(reliable),
            vm_reasons=_text(row.get("vm_reasons")),
            aborted=status not in ("ok", "nan", "none", "") or (math.isfinite(gap) and gap > 0),
            sampled=_flag(row.get("sampled")),
            reworks=int(num("reworks")) if math.isfinite(num("reworks")) else 0,
            can_rework=kind != "run")


@dataclass(frozen=True)
class Verdict:
    """A decision with the rule that took it.

    Attributes
    ----------
    decision : {'release', 'rework', 'scrap', 'hold'}
    rule : str
        ``ALL-PASS``, ``THK-BASIS``, ``THK-SPEC``, ``THK-UNIFORMITY`` or ``VM-CONTRADICTED``.
    reason : str
    basis : {'lab', 'prediction', 'none'}
        What the mean thickness was judged on.
    thickness_nm : float
        That thickness, nm (NaN for none).
    contradicted : bool
        The lab contradicted the prediction.
    sigma : float
        Standardised residual of the lab value against the prediction (NaN: no interval).
    need : str
        What a held batch needs before it can be released.
    """

    decision: str
    rule: str
    reason: str
    basis: Basis = "none"
    thickness_nm: float = math.nan
    contradicted: bool = False
    sigma: float = math.nan
    need: str = ""

    @property
    def status(self) -> str:
        """``released``, ``held`` or ``rejected``."""
        return STATUS[self.decision]

    def columns(self) -> dict[str, Any]:
        """Batch-record columns of the decision."""
        return {"disposition": self.decision, "disposition_reason": self.reason,
                "disposition_rule": self.rule, "vm_contradicted": self.contradicted,
                "vm_lab_sigma": self.sigma}


def judge(thickness_nm: float, ev: Evidence, rules: ReleaseRules, *,
          what: str = "oxide") -> tuple[str, str, str]:
    """``(decision, rule, reason)`` of a mean thickness with the evidence's uniformity."""
    lo, hi = rules.window_nm
    share, need = ev.within_50pct_share, rules.min_within_50pct_share
    if not math.isfinite(thickness_nm):
        return "hold", "THK-BASIS", "no thickness"
    if thickness_nm > hi:
        return "scrap", "THK-SPEC", f"{what} {thickness_nm:.3g} nm above {hi:g} nm"
    if math.isfinite(share) and share < need:
        src = "predicted " if ev.uniformity_source == "prediction" else ""
        return "scrap", "THK-UNIFORMITY", (f"{src}uniformity {share:.2f} below {need:g} "
                                           f"({what} {thickness_nm:.3g} nm)")
    if thickness_nm < lo:
        if ev.can_rework and ev.reworks < rules.max_reworks:
            return "rework", "THK-SPEC", f"{what} {thickness_nm:.3g} nm below {lo:g} nm"
        return "scrap", "THK-SPEC", (f"{what} {thickness_nm:.3g} nm below {lo:g} nm, "
                                     "no rework left")
    if not math.isfinite(share):
        return "hold", "THK-UNIFORMITY", (f"{what} {thickness_nm:.3g} nm in {lo:g}–{hi:g} nm, "
                                          "uniformity unknown")
    return "release", "ALL-PASS", (f"{what} {thickness_nm:.3g} nm in {lo:g}–{hi:g} nm, "
                                   f"uniformity {share:.2f} ≥ {need:g}")


def prediction_alone(ev: Evidence, rules: ReleaseRules) -> tuple[bool, str]:
    """Whether the prediction may release the batch without the lab, and why not."""
    if ev.aborted:
        return False, "step aborted or its record not trusted"
    if not math.isfinite(ev.predicted_nm):
        return False, "no prediction"
    if not ev.scored:
        return True, "model prediction"
    if ev.vm_reliable is False:
        return False, "prediction not reliable" + (f" ({ev.vm_reasons})" if ev.vm_reasons
                                                   else "")
    if not (ev.reliability >= rules.min_reliability):
        return False, (f"reliability {ev.reliability:.2f} below {rules.min_reliability:g}"
                       if math.isfinite(ev.reliability) else "reliability not recorded")
    lo, hi = rules.window_nm
    if not (math.isfinite(ev.lower_nm) and math.isfinite(ev.upper_nm)):
        return False, "prediction interval missing"
    if not (lo <= ev.lower_nm and ev.upper_nm <= hi):
        return False, (f"interval {ev.lower_nm:.3g}–{ev.upper_nm:.3g} nm not inside "
                       f"{lo:g}–{hi:g} nm")
    return True, (f"reliable prediction (reliability {ev.reliability:.2f}, interval "
                  f"{ev.lower_nm:.3g}–{ev.upper_nm:.3g} nm)")


def on_prediction(ev: Evidence, rules: ReleaseRules) -> Verdict:
    """The decision when the batch is finished: release on the prediction, or hold for the
    lab (see the module docstring)."""
    decision, rule, reason = judge(ev.predicted_nm, ev, rules, what="prediction")
    alone, why = prediction_alone(ev, rules)
    if rules.release_on_prediction and not ev.sampled and alone and decision == "release":
        return Verdict("release", rule, f"{reason}; {why}", "prediction", ev.predicted_nm)
    lab = ("sampled for the lab" if ev.sampled
           else "disposition.release_on_prediction is off"
           if not rules.release_on_prediction
           else why if not alone else reason)
    return Verdict("hold", "THK-BASIS", f"awaiting lab: {lab}", need="lab thickness measurement")


def contradiction_sigma(ev: Evidence, measured_nm: float, rules: ReleaseRules) -> float:
    """Standardised residual ``|ln(lab / predicted)| / sigma_lab`` (NaN without an interval).

    ``sigma_lab`` is the sd of ln(lab value) behind the prediction's interval on the lab value
    (its interval on the mean when the lab interval is not recorded), at ``interval_level``.
    """
    lo, hi = ev.lab_lower_nm, ev.lab_upper_nm
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = ev.lower_nm, ev.upper_nm
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi and measured_nm > 0):
        return math.nan
    sigma = math.log(hi / lo) / (2.0 * rules.z)
    centre = ev.predicted_nm if ev.predicted_nm > 0 else math.sqrt(lo * hi)
    return abs(math.log(measured_nm / centre)) / sigma


def on_lab(ev: Evidence, measured_nm: float, rules: ReleaseRules) -> Verdict:
    """The decision on a lab result (see the module docstring)."""
    if not (math.isfinite(measured_nm) and measured_nm > 0):
        return Verdict("hold", "THK-BASIS", "lab returned no thickness: held for a retest",
                       need="lab thickness measurement (retest)")
    sigma = contradiction_sigma(ev, measured_nm, rules)
    contradicted = math.isfinite(sigma) and sigma > rules.outlier_sigma
    if contradicted:
        head = (f"lab {measured_nm:.3g} nm contradicts the prediction {ev.predicted_nm:.3g} nm "
                f"({sigma:.1f} sigma > {rules.outlier_sigma:g})")
        tail = (f"the prediction {ev.predicted_nm:.3g} nm is contradicted ({sigma:.1f} sigma "
                f"> {rules.outlier_sigma:g})")
        lo, hi = rules.window_nm
        if ev.uniformity_source == "prediction" or not lo <= measured_nm <= hi:
            # Only what was measured decides: the mean against the window; a mean inside it
            # has no uniformity (only the contradicted prediction gave one).
            measured_only = replace(ev, within_50pct_share=math.nan)
            decision, rule, reason = judge(measured_nm, measured_only, rules, what="lab")
            if decision in ("hold", "release"):
                return Verdict("hold", "VM-CONTRADICTED",
                               f"{head}: uniformity unknown, held for retest", "lab",
                               measured_nm, True, sigma,
                               need="lab retest and QA review of the prediction "
                                    "(uniformity unknown)")
            return Verdict(decision, rule, f"{reason}; {tail}", "lab", measured_nm, True, sigma)
        decision, rule, reason = judge(measured_nm, ev, rules, what="lab")
        return Verdict(decision, rule, f"{reason} (uniformity from the tool); {tail}", "lab",
                       measured_nm, True, sigma)
    decision, rule, reason = judge(measured_nm, ev, rules, what="lab")
    need = "uniformity evidence" if decision == "hold" else ""
    return Verdict(decision, rule, reason, "lab", measured_nm, False, sigma, need=need)


def decide_recorded(ev: Evidence, measured_nm: float | None, rules: ReleaseRules) -> Verdict:
    """The decision on a batch record: on the lab value when there is one, else on the
    prediction (a batch still waiting for the lab is held)."""
    if measured_nm is not None and math.isfinite(measured_nm) and measured_nm > 0:
        return on_lab(ev, measured_nm, rules)
    return on_prediction(ev, rules)


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flag(value: Any) -> bool:
    f = _float(value)
    return bool(f) if f is not None else False


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
