import os
from pathlib import Path

from corral.api.responses.store import ResponseStore


def test_put_get_delete(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    store.put("resp_a1", {"id": "resp_a1", "output": []})
    assert store.get("resp_a1") == {"id": "resp_a1", "output": []}
    assert store.delete("resp_a1") is True
    assert store.get("resp_a1") is None
    assert store.delete("resp_a1") is False


def test_corrupt_file_reads_as_unknown(tmp_path: Path) -> None:
    (tmp_path / "resp_bad.json").write_text("{not json")
    assert ResponseStore(tmp_path).get("resp_bad") is None


def test_ids_that_are_not_names_are_unknown(tmp_path: Path) -> None:
    assert ResponseStore(tmp_path).get("../etc/passwd") is None


def test_oldest_is_evicted_past_the_bound(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path, max_count=2)
    for i, name in enumerate(["resp_a", "resp_b", "resp_c"]):
        store.put(name, {"n": i})
        # mtime order decides eviction; make it unambiguous without sleeping
        os.utime(tmp_path / f"{name}.json", (i, i))
    store.put("resp_c", {"n": 2})
    assert store.get("resp_a") is None
    assert store.get("resp_c") == {"n": 2}
