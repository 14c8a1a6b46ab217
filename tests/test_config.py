from pathlib import Path

from pipelines.config import load_config


def test_command_line_beats_environment_beats_toml_beats_defaults(tmp_path):
    toml = tmp_path / "mimamori.toml"
    toml.write_text('[paths]\ninbox = "in_toml"\nwork = "work_toml"\n[capacity]\nshare_of_residents = 0.01\n')
    cfg = load_config(toml, inbox=tmp_path / "cli_inbox", environ={"MIMAMORI_WORK": str(tmp_path / "env_work")})
    assert cfg.inbox == (tmp_path / "cli_inbox").resolve()
    assert cfg.work == (tmp_path / "env_work").resolve()
    assert cfg.custody == (tmp_path / "custody").resolve()          # default, relative to the toml
    assert cfg.get("capacity", "share_of_residents") == 0.01
    assert cfg.get("labels", "timespan_days") == 180                # untouched defaults survive


def test_paths_in_toml_are_relative_to_the_toml(tmp_path):
    toml = tmp_path / "ward" / "mimamori.toml"
    toml.parent.mkdir()
    toml.write_text('[paths]\ninbox = "extracts"\n')
    assert load_config(toml, environ={}).inbox == (tmp_path / "ward" / "extracts").resolve()


def test_config_hash_ignores_paths_but_not_settings(tmp_path):
    a = load_config(None, tmp_path / "a", tmp_path / "a", tmp_path / "a", environ={})
    b = load_config(None, tmp_path / "b", tmp_path / "b", tmp_path / "b", environ={})
    assert a.config_hash == b.config_hash
    toml = tmp_path / "m.toml"
    toml.write_text("[prioritise]\nrecent_visit_days = 90\n")
    assert load_config(toml, environ={}).config_hash != a.config_hash
