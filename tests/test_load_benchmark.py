"""``benchmarks/load.py`` at a tiny bound: a real page, 3 sessions x 2 questions, clean.

The script runs as a subprocess, as it would from the command line: it starts its own
``scholar-chat serve`` on a temporary store, so this takes the page's start-up, the
default collection's ingest and six answers (about half a minute on 2 busy cores).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import free_port

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "load.py"


def test_small_load_run_is_clean_and_its_numbers_are_sane() -> None:
    command = [sys.executable, str(SCRIPT), "--conversations", "3", "--questions", "2"]
    command += ["--settle", "1", "--timeout", "150", "--port", str(free_port())]
    done = subprocess.run(
        [*command, "--json", "--quiet"], capture_output=True, text=True, timeout=200
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["questions_planned"] == report["answered"] == 6
    assert report["errors"] == report["skipped"] == 0 and report["error_messages"] == []
    assert report["uncited"] == 0 and report["bad_follow_ups"] == 0
    assert 0 < report["latency_p50_s"] <= report["latency_p95_s"] <= report["latency_max_s"]
    assert report["latency_max_s"] <= report["wall_s"]
    assert report["throughput_qps"] > 0
    assert 0 < report["rss_started_mb"] <= report["rss_peak_mb"]
    assert report["rss_before_mb"] > 0 and report["rss_end_mb"] > 0
    assert report["rss_settled_mb"] > 0
    assert report["rss_growth_mb"] == pytest.approx(
        report["rss_settled_mb"] - report["rss_before_mb"]
    )


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, its environment defaults undone after the test."""
    for name, value in [
        ("HF_HUB_OFFLINE", "1"),
        ("HF_HUB_DISABLE_TELEMETRY", "1"),
        ("GRADIO_ANALYTICS_ENABLED", "False"),
    ]:
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("load_benchmark", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_an_answer_counts_as_cited_only_with_a_collection_link_it_marks(load: ModuleType) -> None:
    paper = "https://example.org/paper"
    papers = {paper}
    cited = f"It does [1].\n\n**Sources**\n[1] [A paper (2024)]({paper})\n\n*Answered by offline*"
    assert load.cited_links(cited, papers) == {paper}
    unmarked = cited.replace("It does [1].", "It does.")
    assert load.cited_links(unmarked, papers) == set()
    foreign = cited.replace(paper, "https://example.org/elsewhere")
    assert load.cited_links(foreign, papers) == set()
    assert load.cited_links("The collection has no paper on cooking.", papers) == set()


def test_percentiles(load: ModuleType) -> None:
    assert load.percentile([], 50) == 0.0
    assert load.percentile([3.0], 95) == 3.0
    assert load.percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert load.percentile([float(n) for n in range(1, 101)], 95) == pytest.approx(95.05)
