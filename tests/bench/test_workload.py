"""Prompt sets: built-in ones and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.bench import WorkloadError, load_workload
from corral.bench.workload import LONG, SHORT


def test_builtin_sets() -> None:
    assert load_workload("short").prompts == SHORT
    assert load_workload("long").prompts == LONG
    assert min(len(p) for p in LONG) > 4 * max(len(p) for p in SHORT)


def test_every_request_gets_a_distinct_prompt() -> None:
    work = load_workload("short")
    prompts = [work.prompt(i, "0-") for i in range(3 * len(SHORT))]
    assert len(set(prompts)) == len(prompts)
    assert prompts[0].endswith(SHORT[0]) and prompts[len(SHORT)].endswith(SHORT[0])
    assert work.prompt(1, "0-") != work.prompt(1, "1-")  # two endpoints never share a prompt


def test_prompt_file_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("# my prompts\nfirst one\n\n  second one  \n")
    work = load_workload(str(path))
    assert work.prompts == ("first one", "second one")
    assert work.name == "prompts.txt"


def test_prompt_file_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(["line one\nline two", "other"]))
    assert load_workload(str(path)).prompts == ("line one\nline two", "other")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("p.json", "[1, 2]", "list of prompt strings"), ("p.json", "{nope", "not valid JSON"),
     ("p.txt", "# only a comment\n", "holds no prompts")],
)  # fmt: skip
def test_bad_prompt_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(WorkloadError, match=message):
        load_workload(str(path))


def test_missing_prompt_file(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot read prompt file"):
        load_workload(str(tmp_path / "absent.txt"))
