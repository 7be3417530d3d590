"""``anode-twin study``: summary table, Parquet, plots and a self-contained HTML report."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.srcs += [v or "" for k, v in attrs if k in ("src", "href")]


def test_study_command_end_to_end(tmp_path: Path, make_study: Callable[..., Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = make_study(tmp_path, days=10.0, reps=5)
    out = tmp_path / "out"
    rc = main(["study", str(path), "--workers", "2", "--out", str(out), "--days", "4",
               "--replications", "3"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    text = captured.out
    assert "2 scenarios x 3 replications of 4 days" in text
    assert "four_mills" in text and "throughput, kg/day" in text and "±" in text
    assert "which change buys the most throughput" in text
    assert "1. four_mills: +" in text  # the fourth mill relieves the bottleneck
    assert "3/3" not in captured.err and "6/6 replications" in captured.err  # progress
    for name in ("replications", "summary", "differences", "ranking", "bottlenecks", "wip"):
        df = pd.read_parquet(out / f"{name}.parquet")
        assert len(df) > 0
    reps = pd.read_parquet(out / "replications.parquet")
    assert set(reps.replication) == {0, 1, 2} and set(reps.scenario) == {"base", "four_mills"}
    for plot in ("kpis", "states", "wip"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in (out / "plots" / f"{plot}.svg").read_text()
    page = (out / "report.html").read_text()
    parser = _Tags()
    parser.feed(page)
    assert parser.tags.count("svg") == 3 and "table" in parser.tags
    assert not [s for s in parser.srcs if s.startswith(("http", "//"))]  # self-contained
    assert "Which change buys the most throughput" in page

    # Rerunning the finished study computes nothing and prints the same table.
    assert main(["study", str(path), "--out", str(out), "--days", "4", "--replications", "3",
                 "--quiet"]) == 0
    again = capsys.readouterr().out
    assert "0 computed, 6 reused" in again
    table = text[text.index("scenario  "):text.index("report:")]
    assert table == again[again.index("scenario  "):again.index("report:")]
