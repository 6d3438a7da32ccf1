from __future__ import annotations

from pathlib import Path

import pytest

from restake_qa.config import SETTINGS, ConfigError, load_settings, settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_precedence_defaults_environment_overrides():
    env = {"RESTAKE_QA_TOP_K": "7", "RESTAKE_QA_HOST": "0.0.0.0"}
    s = load_settings({"top_k": 3}, environ=env)
    assert s.top_k == 3 and s.host == "0.0.0.0" and s.port == 8000


def test_bad_values_name_the_setting():
    with pytest.raises(ConfigError, match="RESTAKE_QA_PORT"):
        load_settings(environ={"RESTAKE_QA_PORT": "eighty"})
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({"no_such_thing": 1}, environ={})


def test_every_setting_is_documented_in_the_readme():
    readme = README.read_text(encoding="utf-8")
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in readme]
    assert not missing, f"add these to the README's settings table: {missing}"
    assert settings_table() in readme, "the README's settings table is stale: paste restake_qa.config.settings_table()"
