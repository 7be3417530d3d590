"""Certificates of analysis against their JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from report_runs import FIXED_NOW as FIXED

from twin.report import write_reports
from twin.report.coa import dumps, schema

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")



def validator() -> object:
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema())
    return cls(schema(), format_checker=cls.FORMAT_CHECKER)


def test_every_certificate_matches_the_schema(make_run: Callable[..., Path]) -> None:
    values: list[dict[str, object]] = [{}, {"measured_nm": 150.0}, {"vm_reliability": 0.1},
                                       {"measured_nm": 9.0}]
    res = write_reports(make_run(values), now=FIXED)
    v = validator()
    assert len(res.certificates) == 4
    for path in res.certificates:
        cert = json.loads(path.read_text(encoding="utf-8"))
        errors = sorted(v.iter_errors(cert), key=str)  # type: ignore[attr-defined]
        assert errors == [], f"{path.name}: {errors[0].message}"
    by_id = {json.loads(p.read_text())["batch_id"]: json.loads(p.read_text())
             for p in res.certificates}
    assert by_id["C000002"]["decision"] == {
        "status": "rejected", "rule": "THK-SPEC", "plant_decision": "scrap",
        "reason": "lab 150 nm above 100 nm; the prediction 8 nm is contradicted (23.5 sigma > 4)",
        "needs": []}
    assert by_id["C000002"]["specification"]["release_nm"] == [1.0, 100.0]
    assert by_id["C000002"]["specification"]["band_nm"] == [7.0, 13.0]
    assert by_id["C000003"]["decision"]["status"] == "held"
    assert by_id["C000001"]["oxide"]["basis_source"] == "prediction"
    assert by_id["C000001"]["genealogy"][-1]["unit_id"] == "R000001"
    assert by_id["C000001"]["approval"]["reviewed_by"] == {
        "name": "QA engineer on shift", "timestamp_utc": None, "status": "pending"}
    assert (res.out_dir / "coa.schema.json").is_file()


def test_schema_rejects_a_bad_certificate(make_run: Callable[..., Path]) -> None:
    res = write_reports(make_run([{}]), now=FIXED)
    cert = json.loads(res.certificates[0].read_text())
    v = validator()
    released_out_of_spec = json.loads(json.dumps(cert))
    released_out_of_spec["oxide"]["basis_nm"] = 150.0
    assert list(v.iter_errors(released_out_of_spec))  # type: ignore[attr-defined]
    bad_element = json.loads(json.dumps(cert))
    bad_element["specification"]["allowed_alloying_elements"].append("Cr")
    assert list(v.iter_errors(bad_element))  # type: ignore[attr-defined]
    held_without_needs = json.loads(json.dumps(cert))
    held_without_needs["decision"]["status"] = "held"
    assert list(v.iter_errors(held_without_needs))  # type: ignore[attr-defined]


def test_no_nan_in_certificates() -> None:
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})
