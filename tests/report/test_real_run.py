"""Reports on a run folder written by the real plant model and store (``simulate``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from twin import store
from twin.config import load_plant
from twin.hidden.run import simulate
from twin.report import load_run, write_reports


def simulated(tmp: Path, days: float, overrides: list[str] | None = None,
              truth: str | None = None) -> Path:
    thin = "thin_film" in (overrides or [])
    cfg = load_plant(THIN_FILM if thin else None, [o for o in overrides or []
                                                   if o != "thin_film"])
    res = simulate(cfg, days, 1, truth=truth)
    return Path(store.write_run(tmp / "run", cfg=cfg, seed=1, days=days, summary=res.summary,
                                tables={"batches": res.batches, "events": res.events,
                                        "states": res.states, "shares": res.shares}))


THIN_FILM = Path(__file__).parents[2] / "plant_config" / "thin_film_line.toml"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated(tmp_path_factory.mktemp("sim"), 3.0)


def plant_and_report(run_dir: Path) -> list[tuple[str, str, str, str, str]]:
    """``(batch, plant disposition, plant rule, report's plant decision, report rule)``."""
    b = pd.read_parquet(run_dir / "batches.parquet").set_index("unit_id")
    res = write_reports(run_dir)
    return [(a.batch_id, str(b.loc[a.batch_id, "disposition"]),
             str(b.loc[a.batch_id, "disposition_rule"]), a.decision.plant, a.decision.rule)
            for a in res.assessments]


@pytest.mark.parametrize(("days", "overrides", "truth"), [
    (10.0, [], None),                                                # anode-twin simulate
    (6.0, ["control.outlier_sigma=2"], "other_kinetics"),           # a contradicted charge
    (4.0, ["disposition.release_on_prediction=false"], None),
    (4.0, ["control.min_reliability=0.95", "control.band_nm=[9.0, 11.0]"], None),
    (4.0, ["thin_film"], None),                                      # sputter runs
])
def test_report_states_the_plant_models_decision(tmp_path: Path, days: float,
                                                 overrides: list[str],
                                                 truth: str | None) -> None:
    # One decision: every charge's report decision and rule are the batch record's.
    rows = plant_and_report(simulated(tmp_path, days, overrides, truth))
    assert rows
    status = {"release": "released", "hold": "held", "rework": "rejected", "scrap": "rejected"}
    for batch, disp, rule, plant, report_rule in rows:
        assert (plant, report_rule) == (disp, rule), batch
    res = write_reports(tmp_path / "run")
    for a in res.assessments:
        assert a.decision.status == status[a.decision.plant]
    if truth is not None:
        assert any(r[2] == "VM-CONTRADICTED" for r in rows)


def test_every_finished_charge_is_assessed_with_genealogy(real_run: Path) -> None:
    run = load_run(real_run)
    ids = run.release_ids()
    assert ids and all(i.startswith("C") for i in ids)
    res = write_reports(real_run)
    assert len(res.assessments) == len(ids)
    for a in res.assessments:
        kinds = {u.get("unit_kind") for u in run.ancestors(a.batch_id)}
        assert {"lot", "heat"} <= kinds
        assert a.composition is not None and a.phases
        # Never released on missing or unreliable data: a release needs a lab value or a
        # prediction with its interval and reliability.
        if a.decision.status == "released":
            assert a.thickness.source == "lab" or a.thickness.reliable_prediction


def test_hidden_truth_never_reaches_a_report(real_run: Path) -> None:
    res = write_reports(real_run)
    run = load_run(real_run)
    truths = {f"{v:.3g}" for v in run.units.get("true_oxide_mean_nm", []) if v == v}
    for path in res.certificates:
        cert = json.loads(path.read_text())
        assert "true_oxide" not in path.read_text()
        assert cert["oxide"]["basis_source"] in ("lab", "prediction", "none")
    html = "".join(p.read_text() for p in res.batch_pages)
    assert "true_oxide_mean_nm" not in html
    assert truths  # the simulator did record a truth, which the check above kept out
