from pathlib import Path

import pytest
from pydantic import ValidationError

from corral.config import Settings, settings_table


def test_defaults(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.address.url == "http://127.0.0.1:11434"
    assert settings.models_dir == Path(str(settings.home)) / "models"
    assert settings.default_keep_alive == 300.0
    assert settings.num_parallel == 1


def test_ollama_variables_are_fallbacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama-models"))
    monkeypatch.setenv("OLLAMA_KEEP_ALIVE", "-1")
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "4")
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")
    monkeypatch.setenv("OLLAMA_MAX_QUEUE", "7")
    monkeypatch.setenv("OLLAMA_ORIGINS", "https://a.example, https://b.example")
    settings = Settings()
    assert (settings.address.host, settings.address.port) == ("0.0.0.0", 9999)
    assert settings.models_dir == tmp_path / "ollama-models"
    assert settings.default_keep_alive is None
    assert (settings.num_parallel, settings.max_loaded_models, settings.max_queue) == (4, 2, 7)
    assert settings.origins == ["https://a.example", "https://b.example"]


def test_corral_variables_win_over_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
    monkeypatch.setenv("CORRAL_HOST", ":8080")
    assert Settings().address.url == "http://127.0.0.1:8080"


def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_KEEP_ALIVE", "forever-ish")
    with pytest.raises(ValidationError, match="keep_alive"):
        Settings()


def test_table_lists_every_setting_with_description() -> None:
    table = settings_table()
    for field_name, field in Settings.model_fields.items():
        assert f"CORRAL_{field_name.upper()}" in table
        assert field.description and field.description in table
    assert "[also OLLAMA_HOST]" in table
    assert "(default: 5m)" in table
