"""The provisioning file: parsed and checked up front, every error naming its line and field.

::

    models:
      - smollm2:135m                          # pulled
      - name: 127.0.0.1:5000/library/qwen:1b  # pulled, with options
        insecure: true                        # plain HTTP (loopback registries need no flag)
        preload: true                         # loaded at start, kept loaded (keep_alive forever)
      - name: terse                           # created from a model or a GGUF path
        from: smollm2:135m
        system: Answer in one sentence.
        parameters: {temperature: 0.2}
      - name: tuned                           # created from a Modelfile (text or a path)
        modelfile: |
          FROM smollm2:135m
          PARAMETER num_ctx 8192
      - name: big:70b
        optional: true                        # may fail without blocking readiness
    retry: {attempts: 5, backoff: 2}          # network failures: tries, first delay (s)
    rpc_workers: [10.0.0.2:50052]             # corral workers, added to CORRAL_RPC_WORKERS

A bare list of entries is accepted too. ``CORRAL_PULL=a,b`` adds plain pulls.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from corral.errors import BadRequest, CorralError
from corral.modelfile import (
    Modelfile,
    ModelfileError,
    coerce_parameters,
    parse_modelfile,
    render_modelfile,
)
from corral.names import parse_name
from corral.runner.rpc import parse_endpoints

__all__ = [
    "ModelEntry",
    "ProvisionError",
    "ProvisionPlan",
    "RetryPolicy",
    "load_plan",
    "parse_plan",
]

_ENTRY_KEYS = (
    "name", "from", "modelfile", "system", "template", "parameters",
    "preload", "optional", "insecure", "update",
)  # fmt: skip
_FLAGS = ("preload", "optional", "insecure", "update")


class ProvisionError(BadRequest):
    """A provisioning file (or ``CORRAL_PULL``) that cannot be used; says where and why."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries per model for network failures (1 = no retry)
    backoff: float = 2.0  # seconds before the second try, doubled each time
    max_backoff: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class ModelEntry:
    """One model to provision. ``modelfile`` is set for creates (FROM paths made absolute)."""

    name: str  # canonical display name
    where: str  # "provision.yaml:4" or "CORRAL_PULL"
    kind: Literal["pull", "create"] = "pull"
    modelfile: str | None = None
    bases: tuple[str, ...] = ()  # model names a create starts from
    files: tuple[Path, ...] = ()  # local files a create reads (for the fingerprint)
    preload: bool = False
    optional: bool = False
    insecure: bool = False
    update: bool = False

    @property
    def required(self) -> bool:
        return not self.optional

    def fingerprint(self) -> str:
        """Changes when what a create would produce may change (text, or a file's stat)."""
        stats = []
        for path in self.files:
            try:
                st = path.stat()
                stats.append([str(path), st.st_size, st.st_mtime_ns])
            except OSError:
                stats.append([str(path), None, None])
        blob = json.dumps({"modelfile": self.modelfile, "files": stats}, sort_keys=True)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class ProvisionPlan:
    models: tuple[ModelEntry, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rpc_workers: tuple[str, ...] = ()  # llama.cpp RPC workers (host:port) for the server

    def __bool__(self) -> bool:
        return bool(self.models)

    def ordered(self) -> list[ModelEntry]:
        """Required models first (readiness waits only for them), each group in file order."""
        return [m for m in self.models if m.required] + [m for m in self.models if m.optional]


class _Checker:
    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.constructor = SafeConstructor()

    def fail(self, node: yaml.Node | None, where: str, message: str) -> ProvisionError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return ProvisionError(f"{self.source}{line}: {where}: {message}")

    def value(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise self.fail(node, "value", str(exc.problem)) from None

    def mapping(
        self, node: yaml.MappingNode, where: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str) or key not in allowed:
                raise self.fail(
                    key_node, where, f"unknown field {key!r}; expected one of {', '.join(allowed)}"
                )
            if key in out:
                raise self.fail(key_node, f"{where}.{key}", "given twice")
            out[key] = (key_node, value_node)
        return out

    def string(self, node: yaml.Node, where: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, where, f"expected a non-empty string, got {value!r}")
        return value

    def flag(self, node: yaml.Node, where: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.fail(node, where, f"expected true or false, got {value!r}")
        return value

    def number(self, node: yaml.Node, where: str, *, integer: bool) -> float:
        value = self.value(node)
        ok = isinstance(value, int) or (not integer and isinstance(value, float))
        if isinstance(value, bool) or not ok or value <= 0:
            kind = "a positive whole number" if integer else "a positive number"
            raise self.fail(node, where, f"expected {kind}, got {value!r}")
        return float(value)

    def model_name(self, node: yaml.Node, where: str) -> str:
        raw = self.string(node, where)
        try:
            return parse_name(raw.strip()).display
        except CorralError as exc:
            raise self.fail(node, where, exc.message) from None

    # -- entries --------------------------------------------------------------------------

    def entry(self, node: yaml.Node, where: str) -> ModelEntry:
        at = f"{self.source}:{node.start_mark.line + 1}"
        if isinstance(node, yaml.ScalarNode):
            return ModelEntry(name=self.model_name(node, where), where=at)
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where, "expected a model name or a mapping with a name")
        fields = self.mapping(node, where, _ENTRY_KEYS)
        if "name" not in fields:
            raise self.fail(node, where, "missing field 'name'")
        name = self.model_name(fields["name"][1], f"{where}.name")
        flags: dict[str, Any] = {
            k: self.flag(fields[k][1], f"{where}.{k}") for k in _FLAGS if k in fields
        }
        has_from, has_mf = "from" in fields, "modelfile" in fields
        if has_from and has_mf:
            raise self.fail(fields["modelfile"][0], where, "give either 'from' or 'modelfile'")
        for key in ("system", "template", "parameters"):
            if key in fields and not has_from:
                raise self.fail(
                    fields[key][0], f"{where}.{key}", "only with 'from' (in a modelfile, use "
                    f"{key.upper() if key != 'parameters' else 'PARAMETER'} lines)",
                )  # fmt: skip
        if not (has_from or has_mf):
            return replace(ModelEntry(name=name, where=at), **flags)
        for key in ("insecure", "update"):
            if key in fields:
                raise self.fail(fields[key][0], f"{where}.{key}", "only for pulled models")
        if has_mf:
            mf, base_dir = self.modelfile(fields["modelfile"][1], f"{where}.modelfile")
        else:
            mf, base_dir = self.from_fields(fields, where), self.base_dir
        return self.create_entry(name, at, mf, base_dir, flags, fields, where)

    def modelfile(self, node: yaml.Node, where: str) -> tuple[Modelfile, Path]:
        """A multi-line string is the Modelfile; one line is a path to one."""
        text = self.string(node, where)
        if "\n" in text.strip():
            offset = node.start_mark.line + (1 if getattr(node, "style", None) in ("|", ">") else 0)
            try:
                return parse_modelfile(text), self.base_dir
            except ModelfileError as exc:
                line = f":{offset + exc.line}" if exc.line else f":{node.start_mark.line + 1}"
                message = exc.message.split(": ", 1)[1] if exc.line else exc.message
                raise ProvisionError(f"{self.source}{line}: {where}: {message}") from None
        path = (self.base_dir / Path(text.strip()).expanduser()).resolve()
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise self.fail(node, where, f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            return parse_modelfile(content), path.parent
        except ModelfileError as exc:
            raise self.fail(node, where, f"{path}: {exc.message}") from None

    def from_fields(self, fields: dict[str, tuple[yaml.Node, yaml.Node]], where: str) -> Modelfile:
        mf = Modelfile(from_=[self.string(fields["from"][1], f"{where}.from").strip()])
        for key in ("system", "template"):
            if key in fields:
                setattr(mf, key, self.value(fields[key][1]))
                if not isinstance(getattr(mf, key), str):
                    raise self.fail(fields[key][1], f"{where}.{key}", "expected a string")
        if "parameters" in fields:
            node = fields["parameters"][1]
            params = self.value(node)
            if not isinstance(params, dict):
                raise self.fail(node, f"{where}.parameters", "expected a mapping of name: value")
            try:
                mf.parameters = coerce_parameters(params)
            except CorralError as exc:
                raise self.fail(node, f"{where}.parameters", exc.message) from None
        return mf

    def create_entry(
        self,
        name: str,
        at: str,
        mf: Modelfile,
        base_dir: Path,
        flags: dict[str, Any],
        fields: dict[str, tuple[yaml.Node, yaml.Node]],
        where: str,
    ) -> ModelEntry:
        key = "modelfile" if "modelfile" in fields else "from"
        node = fields[key][1]
        bases: list[str] = []
        files: list[Path] = []

        def resolve(value: str) -> str:
            path = (base_dir / Path(value).expanduser()).resolve()
            if path.is_file():
                files.append(path)
                return str(path)
            if value.startswith((".", "/", "~")) or value.lower().endswith(".gguf"):
                raise self.fail(node, f"{where}.{key}", f"{value}: no such file ({path})")
            try:
                bases.append(parse_name(value).display)
            except CorralError as exc:
                raise self.fail(node, f"{where}.{key}", f"{value}: {exc.message}") from None
            return value

        mf.from_ = [resolve(v) for v in mf.from_]
        mf.adapters = [resolve(v) for v in mf.adapters]
        if any(not path.is_absolute() for path in files):  # pragma: no cover - resolve() made them
            raise self.fail(node, where, "paths must resolve to absolute paths")
        try:
            text = render_modelfile(mf)
        except ModelfileError as exc:
            raise self.fail(node, f"{where}.{key}", exc.message) from None
        entry = ModelEntry(
            name=name, where=at, kind="create", modelfile=text,
            bases=tuple(bases), files=tuple(files),
        )  # fmt: skip
        return replace(entry, **flags)

    # -- the whole file -------------------------------------------------------------------

    def plan(self, root: yaml.Node | None) -> ProvisionPlan:
        if root is None:
            return ProvisionPlan()
        retry = RetryPolicy()
        workers: tuple[str, ...] = ()
        if isinstance(root, yaml.MappingNode):
            top = self.mapping(root, "file", ("models", "retry", "rpc_workers"))
            if "retry" in top:
                retry = self.retry(top["retry"][1])
            if "rpc_workers" in top:
                workers = self.workers(top["rpc_workers"][1])
            if "models" not in top:
                raise self.fail(root, "file", "missing field 'models'")
            root = top["models"][1]
            if isinstance(root, yaml.ScalarNode) and self.value(root) is None:
                return ProvisionPlan(retry=retry, rpc_workers=workers)
        if not isinstance(root, yaml.SequenceNode):
            raise self.fail(root, "models", "expected a list of models")
        entries = [self.entry(node, f"models[{i}]") for i, node in enumerate(root.value)]
        check_order(entries, [f"models[{i}]" for i in range(len(entries))], self.source, root)
        return ProvisionPlan(tuple(entries), retry, workers)

    def workers(self, node: yaml.Node) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, "rpc_workers", "expected a list of host:port")
        try:
            return tuple(
                parse_endpoints(
                    [self.string(item, f"rpc_workers[{i}]") for i, item in enumerate(node.value)]
                )
            )
        except CorralError as exc:
            raise self.fail(node, "rpc_workers", exc.message) from None

    def retry(self, node: yaml.Node) -> RetryPolicy:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, "retry", "expected a mapping with attempts and backoff")
        fields = self.mapping(node, "retry", ("attempts", "backoff"))
        policy = RetryPolicy()
        attempts = policy.attempts
        backoff = policy.backoff
        if "attempts" in fields:
            attempts = int(self.number(fields["attempts"][1], "retry.attempts", integer=True))
        if "backoff" in fields:
            backoff = self.number(fields["backoff"][1], "retry.backoff", integer=False)
        return RetryPolicy(attempts=attempts, backoff=backoff)


def check_order(
    entries: list[ModelEntry], labels: list[str], source: str, node: yaml.Node | None = None
) -> None:
    """No duplicates; a create's base listed in the plan comes before it, and a required
    model does not start from an optional one."""
    seen: dict[str, ModelEntry] = {}
    planned = {parse_name(e.name).key: e for e in entries}
    for entry, label in zip(entries, labels, strict=True):
        key = parse_name(entry.name).key
        if key in seen:
            raise ProvisionError(
                f"{entry.where}: {label}.name: {entry.name} is listed twice "
                f"(first at {seen[key].where})"
            )
        seen[key] = entry
        for base in entry.bases:
            base_key = parse_name(base).key
            if base_key in planned and base_key not in seen:
                raise ProvisionError(
                    f"{entry.where}: {label}: starts from {base}, which is listed later "
                    f"({planned[base_key].where}); list it first"
                )
            if entry.required and base_key in seen and seen[base_key].optional:
                raise ProvisionError(
                    f"{entry.where}: {label}: a required model cannot start from the optional "
                    f"{base}; make it optional too, or {base} required"
                )


def parse_plan(
    text: str, *, source: str = "provision.yaml", base_dir: Path | None = None
) -> ProvisionPlan:
    """Parse a provisioning file's text; relative paths are taken from ``base_dir``."""
    checker = _Checker(source, base_dir or Path.cwd())
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ProvisionError(f"{source}{line}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ProvisionError(f"{source}: not valid YAML: {exc}") from None
    return checker.plan(root)


def _pull_entries(names: list[str]) -> list[ModelEntry]:
    entries = []
    for raw in names:
        try:
            entries.append(ModelEntry(name=parse_name(raw.strip()).display, where="CORRAL_PULL"))
        except CorralError as exc:
            raise ProvisionError(f"CORRAL_PULL: {raw!r}: {exc.message}") from None
    return entries


def load_plan(path: Path | None = None, pull: list[str] | None = None) -> ProvisionPlan:
    """The plan from ``CORRAL_PROVISION`` (a file) and ``CORRAL_PULL`` (names) together;
    a name in both is provisioned once, as the file says."""
    plan = ProvisionPlan()
    if path is not None:
        path = path.expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProvisionError(f"{path}: cannot read the provisioning file: {exc}") from None
        plan = parse_plan(text, source=str(path), base_dir=path.resolve().parent)
    names = [n for n in (pull or []) if n.strip()]
    if not names:
        return plan
    listed = {parse_name(e.name).key for e in plan.models}
    extra: list[ModelEntry] = []
    for entry in _pull_entries(names):
        key = parse_name(entry.name).key
        if key not in listed:
            listed.add(key)
            extra.append(entry)
    return ProvisionPlan((*plan.models, *extra), plan.retry, plan.rpc_workers)
