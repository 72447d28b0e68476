import pytest

from corral.durations import parse_keep_alive
from corral.errors import InvalidOption


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 300.0),
        (0, 0.0),
        (30, 30.0),
        (2.5, 2.5),
        ("45", 45.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("300ms", 0.3),
        ("1m30s", 90.0),
        (-1, None),
        ("-1", None),
        ("-5m", None),
    ],
)
def test_keep_alive_values(value: object, seconds: float | None) -> None:
    assert parse_keep_alive(value, 300.0) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["soon", "10x", "m", "", True])
def test_bad_keep_alive_is_a_clear_400(value: object) -> None:
    with pytest.raises(InvalidOption, match="keep_alive"):
        parse_keep_alive(value, 300.0)  # type: ignore[arg-type]
