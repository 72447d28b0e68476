"""What a benchmark asks: the built-in prompt sets and prompt files.

Every request gets a distinct prompt (a request tag at its start), so an engine's prompt
cache cannot answer a request from an earlier one and prompt processing is measured each time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LONG", "SHORT", "Workload", "WorkloadError", "load_workload"]


class WorkloadError(ValueError):
    """A prompt file that cannot be used."""


SHORT = (
    "Explain in two sentences why the sky is blue.",
    "Write a haiku about a lighthouse in winter.",
    "List three uses of a paper clip, one per line.",
    "What is the difference between a list and a tuple in Python?",
    "Describe a sunrise over the sea to someone who has never seen one.",
    "Give me a short recipe for tomato soup.",
    "Why do cats purr? Answer briefly.",
    "Summarise the plot of a detective story in four sentences.",
)

_PASSAGE = (
    "The harbour town had grown up around a single stone quay, built by fishermen who needed "
    "somewhere to land their catch when the autumn gales made the beach too dangerous. Over "
    "two centuries the quay was lengthened three times. The first extension added a curved "
    "breakwater that sheltered twenty boats; the second, paid for by a merchant who traded "
    "wool with the ports across the channel, carried a warehouse with a slate roof and iron "
    "doors; the third, after the railway arrived, brought a crane that could lift a loaded "
    "cart straight onto a waiting wagon. Each change altered the life of the town. Families "
    "who had mended nets for generations learned to keep accounts, to weigh bales and to "
    "read timetables. The school taught navigation in the mornings and bookkeeping in the "
    "afternoons. When steam replaced sail, the boatyard at the end of the quay switched from "
    "oak to iron, and its apprentices walked to the foundry in the next valley to learn "
    "riveting. The lighthouse keeper kept a diary through all of it: the storms that tore "
    "the roof from the warehouse, the winter the harbour froze, the summer a whale swam in "
    "on the tide and stayed for a week while the whole town came down to watch it. His "
    "entries are short and practical, noting the wind, the state of the lamp and the ships "
    "that passed, but now and then he wrote a line about the people: the baker who rowed "
    "out to a stranded schooner with bread, the children who raced along the breakwater at "
    "low tide, the old captain who sat on the same bollard every evening and told anyone "
    "who would listen that the sea had been calmer when he was young. Today the warehouse "
    "is a museum, the crane is painted bright red and the fishing fleet is down to six "
    "boats, but the quay is still the place where the town gathers, and on a clear evening "
    "you can see the lamp of the lighthouse start to turn before the sun has fully set."
)

LONG = tuple(
    f"Read the following passage, then answer the question after it.\n\n{_PASSAGE}\n\n{q}"
    for q in (
        "Question: How many times was the quay extended, and what did each extension add?",
        "Question: How did the arrival of steam change the boatyard?",
        "Question: What kinds of things did the lighthouse keeper write in his diary?",
        "Question: Describe what the quay is like today.",
    )
)


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    prompts: tuple[str, ...]

    def prompt(self, index: int, tag: str = "") -> str:
        """The ``index``-th request's prompt, made unique by ``tag`` and ``index``."""
        base = self.prompts[index % len(self.prompts)]
        return f"[request {tag}{index}] {base}"


def _read_file(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadError(f"cannot read prompt file {path}: {exc.strerror or exc}") from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WorkloadError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, list) or not all(isinstance(p, str) for p in data):
            raise WorkloadError(f"{path} must hold a JSON list of prompt strings")
        prompts = [p for p in data if p.strip()]
    else:
        lines = (line.strip() for line in text.splitlines())
        prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise WorkloadError(f"{path} holds no prompts")
    return tuple(prompts)


def load_workload(spec: str) -> Workload:
    """``short``, ``long``, or a file: one prompt per line (``#`` starts a comment line), or
    a ``.json`` file holding a list of prompt strings (for prompts spanning lines)."""
    if spec == "short":
        return Workload("short", SHORT)
    if spec == "long":
        return Workload("long", LONG)
    path = Path(spec).expanduser()
    return Workload(path.name, _read_file(path))
