"""The provisioning file: what parses, and errors that name the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.modelfile import parse_modelfile
from corral.provision import ProvisionError, load_plan, parse_plan

FULL = """\
# models this server must have
models:
  - smollm2:135m
  - name: 127.0.0.1:5000/library/tiny:1
    insecure: true
    preload: true
  - name: terse
    from: smollm2:135m
    system: Answer in one sentence.
    parameters:
      temperature: 0.2
      stop: ["<end>"]
  - name: tuned
    modelfile: |
      FROM smollm2:135m
      PARAMETER num_ctx 8192
  - name: big:70b
    optional: true
retry:
  attempts: 3
  backoff: 0.5
"""


def error_of(text: str, tmp_path: Path | None = None) -> str:
    with pytest.raises(ProvisionError) as info:
        parse_plan(text, source="p.yaml", base_dir=tmp_path)
    return info.value.message


def test_full_file_parses_in_order_with_flags() -> None:
    plan = parse_plan(FULL, source="p.yaml")
    names = [m.name for m in plan.models]
    assert names == [
        "smollm2:135m",
        "127.0.0.1:5000/library/tiny:1",
        "terse:latest",
        "tuned:latest",
        "big:70b",
    ]
    pull, remote, terse, tuned, big = plan.models
    assert (pull.kind, pull.where, pull.preload) == ("pull", "p.yaml:3", False)
    assert not pull.optional
    assert (remote.insecure, remote.preload, remote.where) == (True, True, "p.yaml:4")
    assert terse.kind == "create" and terse.bases == ("smollm2:135m",)
    mf = parse_modelfile(terse.modelfile or "")
    assert mf.from_ == ["smollm2:135m"]
    assert mf.system == "Answer in one sentence."
    assert mf.parameters == {"temperature": 0.2, "stop": ["<end>"]}
    assert parse_modelfile(tuned.modelfile or "").parameters == {"num_ctx": 8192}
    assert big.optional and not big.required
    assert (plan.retry.attempts, plan.retry.backoff) == (3, 0.5)
    assert [m.name for m in plan.ordered()][-1] == "big:70b"


def test_rpc_workers_for_the_server() -> None:
    plan = parse_plan("models: [a]\nrpc_workers: [10.0.0.2:50052, '10.0.0.3:50052']\n")
    assert plan.rpc_workers == ("10.0.0.2:50052", "10.0.0.3:50052")
    assert parse_plan("models:\nrpc_workers: [h:1]\n").rpc_workers == ("h:1",)


def test_bare_list_and_empty_files() -> None:
    assert [m.name for m in parse_plan("- a\n- b:2\n").models] == ["a:latest", "b:2"]
    assert not parse_plan("")
    assert not parse_plan("models:\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:\n  - smollm2\n  - name: x\n    preload: yes please\n",
         "p.yaml:4: models[1].preload: expected true or false, got 'yes please'"),
        ("models:\n  - name: x\n    colour: red\n",
         "p.yaml:3: models[0]: unknown field 'colour'"),
        ("models:\n  - preload: true\n", "p.yaml:2: models[0]: missing field 'name'"),
        ("models:\n  - 'bad name!'\n", 'p.yaml:2: models[0]: invalid model name "bad name!"'),
        ("models:\n  - name: a\n    from: b\n    modelfile: |\n      FROM b\n",
         "p.yaml:4: models[0]: give either 'from' or 'modelfile'"),
        ("models:\n  - name: a\n    system: hi\n",
         "p.yaml:3: models[0].system: only with 'from'"),
        ("models:\n  - name: a\n    from: b\n    insecure: true\n",
         "p.yaml:4: models[0].insecure: only for pulled models"),
        ("models:\n  - name: a\n    from: b\n    parameters:\n      warmth: 3\n",
         "p.yaml:5: models[0].parameters: unknown parameter 'warmth'"),
        ("models:\n  - a\n  - b\n  - A:latest\n",
         "p.yaml:4: models[2].name: A:latest is listed twice (first at p.yaml:2)"),
        ("models:\n  - name: derived\n    from: base\n  - base\n",
         "p.yaml:2: models[0]: starts from base:latest, which is listed later (p.yaml:4)"),
        ("models:\n  - name: base\n    optional: true\n  - name: d\n    from: base\n",
         "p.yaml:4: models[1]: a required model cannot start from the optional base:latest"),
        ("models: {a: 1}\n", "p.yaml:1: models: expected a list of models"),
        ("model:\n  - a\n", "p.yaml:1: file: unknown field 'model'"),
        ("retry: {attempts: 2}\n", "p.yaml:1: file: missing field 'models'"),
        ("models: [a]\nretry: {attempts: 0}\n",
         "p.yaml:2: retry.attempts: expected a positive whole number, got 0"),
        ("models: [a]\nretry: {backoff: fast}\n",
         "p.yaml:2: retry.backoff: expected a positive number, got 'fast'"),
        ("models:\n  - [a, b\n", "p.yaml:3: not valid YAML"),
        ("models:\n  - 7\n", "p.yaml:2: models[0]: expected a non-empty string, got 7"),
        ("models: [a]\nrpc_workers: [nohost]\n",
         "p.yaml:2: rpc_workers: RPC worker 'nohost' is not host:port"),
        ("models: [a]\nrpc_workers: 10.0.0.2:1\n", "p.yaml:2: rpc_workers: expected a list"),
    ],
)  # fmt: skip
def test_errors_name_line_and_field(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_inline_modelfile_errors_point_at_the_file_line() -> None:
    text = "models:\n  - name: a\n    modelfile: |\n      FROM b\n      PARAMETER warmth 3\n"
    message = error_of(text)
    assert message.startswith("p.yaml:5: models[0].modelfile: unknown parameter 'warmth'")


def test_modelfile_path_and_gguf_path_are_taken_from_the_file_dir(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    gguf = tmp_path / "models" / "m.gguf"
    gguf.write_bytes(b"GGUF")
    (tmp_path / "Modelfile").write_text("FROM ./models/m.gguf\nSYSTEM be brief\n")
    text = "- name: a\n  modelfile: Modelfile\n- name: b\n  from: models/m.gguf\n"
    plan = parse_plan(text, source="p.yaml", base_dir=tmp_path)
    a, b = plan.models
    assert parse_modelfile(a.modelfile or "").from_ == [str(gguf)]
    assert parse_modelfile(a.modelfile or "").system == "be brief"
    assert a.files == (gguf,) and a.bases == ()
    assert parse_modelfile(b.modelfile or "").from_ == [str(gguf)]


def test_missing_files_are_reported(tmp_path: Path) -> None:
    assert error_of("- name: a\n  modelfile: nope/Modelfile\n", tmp_path).startswith(
        "p.yaml:2: models[0].modelfile: cannot read"
    )
    assert error_of("- name: a\n  from: ./gone.gguf\n", tmp_path).startswith(
        "p.yaml:2: models[0].from: ./gone.gguf: no such file"
    )


def test_fingerprint_follows_the_definition_and_the_file(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF one")
    first = parse_plan("- name: a\n  from: m.gguf\n", base_dir=tmp_path).models[0]
    same = parse_plan("- name: a\n  from: m.gguf\n", base_dir=tmp_path).models[0]
    other = parse_plan("- name: a\n  from: m.gguf\n  system: x\n", base_dir=tmp_path).models[0]
    assert first.fingerprint() == same.fingerprint() != other.fingerprint()
    before = first.fingerprint()
    gguf.write_bytes(b"GGUF two, longer")
    assert first.fingerprint() != before


def test_load_plan_merges_corral_pull(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("- name: a\n  preload: true\n")
    plan = load_plan(path, ["a", " b:1 ", ""])
    assert [(m.name, m.preload, m.where) for m in plan.models] == [
        ("a:latest", True, f"{path}:1"),
        ("b:1", False, "CORRAL_PULL"),
    ]
    assert [m.name for m in load_plan(None, ["x"]).models] == ["x:latest"]
    assert not load_plan(None, [])
    with pytest.raises(ProvisionError, match="CORRAL_PULL: 'no way!'"):
        load_plan(None, ["no way!"])
    with pytest.raises(ProvisionError, match="cannot read the provisioning file"):
        load_plan(tmp_path / "missing.yaml")


def test_retry_delays_double_up_to_a_cap() -> None:
    retry = parse_plan("models: [a]\nretry: {backoff: 1}\n").retry
    assert [retry.delay(n) for n in (1, 2, 3, 8)] == [1.0, 2.0, 4.0, 60.0]
