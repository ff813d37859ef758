"""Precedence: defaults < pilot-assistant.toml < environment < CLI flags."""
from pathlib import Path

import pytest

from assistant import config
from assistant.errors import ConfigError


def test_defaults(tmp_path):
    s = config.load(environ={}, config_file=tmp_path / "missing.toml")
    assert s.llm.backend == "llamacpp" and s.data_dir == Path("data") and s.serve.host == "127.0.0.1"


def test_precedence(tmp_path):
    toml = tmp_path / "pilot-assistant.toml"
    toml.write_text('data_dir = "from-toml"\n[llm]\nthreads = 3\nbackend = "ollama"\nmodel = "toml-model"\n')
    env = {"PILOT_ASSISTANT_THREADS": "4", "PILOT_ASSISTANT_DATA_DIR": "from-env",
           "OLLAMA_HOST": "gpu-host:11434", "PILOT_ASSISTANT_RETRIEVAL__K": "7"}
    s = config.load({"data_dir": "from-cli", "llm.threads": None}, config_file=toml, environ=env)
    assert s.data_dir == Path("from-cli")          # CLI beats env
    assert s.llm.threads == 4                       # env beats toml; unset flag does not override
    assert s.llm.backend == "ollama" and s.llm.model == "toml-model"   # toml beats defaults
    assert s.llm.ollama_host == "http://gpu-host:11434"
    assert s.retrieval.k == 7
    assert s.sources["data_dir"] == "cli" and s.sources["llm.threads"] == "env"


def test_unknown_backend_names_choices(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load({"llm.backend": "gpt"}, environ={}, config_file=tmp_path / "x.toml")
    assert "llamacpp" in e.value.de and e.value.fix


@pytest.mark.parametrize("key,value", [("llm.threads", "viele"), ("nope.key", "1"), ("llm", "x")])
def test_bad_values_are_config_errors(tmp_path, key, value):
    with pytest.raises(ConfigError):
        config.load({key: value}, environ={}, config_file=tmp_path / "x.toml")


def test_broken_toml_names_file(tmp_path):
    toml = tmp_path / "pilot-assistant.toml"
    toml.write_text("[llm\nthreads=")
    with pytest.raises(ConfigError) as e:
        config.load(environ={}, config_file=toml)
    assert str(toml) in e.value.de
