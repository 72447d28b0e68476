"""The /v1 app on the fake engine, shared with tests/api/openai."""

from tests.api.openai.conftest import v1 as v1

__all__ = ["v1"]
