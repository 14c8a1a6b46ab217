"""Several wards in one installation (issue 17): `--ward NAME` picks a ward's own zones, and so its
own key, from `[wards.<NAME>]`; wards never share a folder, so their pseudonyms never join."""
from __future__ import annotations

import pytest

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.pseudonymise import key_id, load_key, pseudonym

WARDS = """
[wards.minato]
inbox = "minato/inbox"
work = "minato/work"
custody = "minato/custody"

[wards.setagaya]
"""


def _config(tmp_path, text: str = WARDS):
    path = tmp_path / "mimamori.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_each_ward_gets_its_own_zones_and_key_so_the_same_resident_gets_other_pseudonyms(tmp_path):
    config = _config(tmp_path)
    for ward in ("minato", "setagaya"):
        assert main(["--config", str(config), "--ward", ward, "keygen"]) == 0
    minato = load_config(config, ward="minato", environ={})
    setagaya = load_config(config, ward="setagaya", environ={})
    assert minato.work == (tmp_path / "minato" / "work").resolve()
    assert setagaya.custody == (tmp_path / "wards" / "setagaya" / "custody").resolve()   # the default layout
    keys = load_key(minato.key_file), load_key(setagaya.key_file)
    assert key_id(keys[0]) != key_id(keys[1])
    assert pseudonym(keys[0], "resident", "000123") != pseudonym(keys[1], "resident", "000123")
    assert minato.config_hash == setagaya.config_hash   # zones are not settings of a result


def test_a_wards_zones_win_over_the_environment_and_lose_to_the_command_line(tmp_path):
    config = _config(tmp_path)
    env = {"MIMAMORI_WORK": str(tmp_path / "elsewhere")}
    assert load_config(config, ward="minato", environ=env).work == (tmp_path / "minato" / "work").resolve()
    assert load_config(config, work=tmp_path / "given", ward="minato", environ=env).work == (tmp_path / "given").resolve()
    assert load_config(config, environ=env).work == (tmp_path / "elsewhere").resolve()   # no ward: as before


def test_an_unknown_ward_is_refused_naming_the_configured_ones(tmp_path, capsys):
    assert main(["--config", str(_config(tmp_path)), "--ward", "nerima", "keygen"]) == 2
    err = capsys.readouterr().err
    assert "区 'nerima' は mimamori.toml の [wards] にありません" in err
    assert "ward 'nerima' is not configured" in err and "minato, setagaya" in err
    assert not (tmp_path / "wards").exists()


@pytest.mark.parametrize("second", ['custody = "minato/custody"', 'work = "minato/custody/work"',
                                    'inbox = "minato"'], ids=["same-custody", "nested", "inside-another"])
def test_wards_sharing_or_nesting_a_folder_are_refused(tmp_path, capsys, second):
    config = _config(tmp_path, WARDS + second + "\n")
    assert main(["--config", str(config), "--ward", "setagaya", "keygen"]) == 2
    err = capsys.readouterr().err
    assert "ward minato's" in err and "ward setagaya's" in err and "keys and pseudonyms stay per ward" in err
    assert not (tmp_path / "minato").exists()


def test_a_ward_name_must_be_a_plain_folder_name(tmp_path, capsys):
    config = _config(tmp_path, '[wards."../up"]\n[wards.ok]\n')
    assert main(["--config", str(config), "--ward", "ok", "keygen"]) == 2
    assert "a ward's name is lowercase letters, digits, - and _" in capsys.readouterr().err


def test_run_all_wards_runs_every_ward_in_its_own_zones_and_one_failing_ward_stops_no_other(tmp_path, capsys):
    config = _config(tmp_path)
    base = ["--config", str(config)]
    for ward in ("minato", "setagaya"):
        assert main(base + ["--ward", ward, "keygen"]) == 0
    # only minato has a delivery: setagaya's run fails, saying why, after minato's has finished
    assert main(base + ["--ward", "minato", "synth", "--residents", "300", "--months", "1",
                        "--end-month", "2026-10", "--seed", "3"]) == 0
    capsys.readouterr()
    assert main(base + ["run", "--month", "2026-10", "--all-wards"]) == 2
    out, err = capsys.readouterr()
    assert out.index("== 区 minato / ward minato ==") < out.index("== 区 setagaya / ward setagaya ==")
    assert "no delivery for 2026-10" in err
    minato = load_config(config, ward="minato", environ={})
    manifest = (minato.runs / "2026-10" / "manifest.json").read_text(encoding="utf-8")
    assert '"status": "done"' in manifest and key_id(load_key(minato.key_file)) in manifest
    assert not (tmp_path / "wards" / "setagaya" / "work" / "runs" / "2026-10").exists()
    assert main(base + ["--ward", "minato", "run", "--month", "2026-10", "--all-wards"]) == 2
    assert "--all-wards cannot be combined with --ward" in capsys.readouterr().err


def test_each_wards_model_is_registered_under_its_own_name_tagged_with_the_ward_and_champions_never_mix(ward, tmp_path):
    """Two wards train in their own MLflow stores: each registers `mimamori-risk-<ward>`, tags its
    runs and versions `ward`, and aliases its own champion; the report and the model card name it.
    (Both are copies of the session ward, its key included, to skip a second ingest: the registry,
    not the pseudonyms, is what this test is about; the MLflow store of the copy is removed so
    each ward trains anew.)"""
    import shutil

    from pipelines.catalog import registry

    names = ("minato", "setagaya")
    for name in names:
        shutil.copytree(ward.root, tmp_path / name, symlinks=True, ignore=shutil.ignore_patterns("mlflow", "model_cards"))
    config = _config(tmp_path, "".join(f'[wards.{n}]\ninbox = "{n}/inbox"\nwork = "{n}/work"\ncustody = "{n}/custody"\n'
                                       for n in names) + (ward.root / "mimamori.toml").read_text(encoding="utf-8"))
    for name in names:
        custody = tmp_path / name / "custody"   # the CLI refuses a custody folder others can read
        for path in [custody, *custody.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)
        assert main(["--config", str(config), "--ward", name, "run", "--month", ward.month]) == 0
    for name, other in (names, names[::-1]):
        cfg = load_config(config, ward=name, environ={})
        client = registry.client(cfg)
        assert [m.name for m in client.search_registered_models()] == [f"mimamori-risk-{name}"]
        champion = client.get_model_version_by_alias(f"mimamori-risk-{name}", "champion")
        assert champion.tags["ward"] == name and client.get_run(champion.run_id).data.tags["ward"] == name
        assert registry.champion(cfg) is not None and registry.champion(cfg)[1] == str(champion.version)
        assert not client.search_model_versions(f"name='mimamori-risk-{other}'")
        report = (cfg.runs / ward.month / "report" / "index.html").read_text(encoding="utf-8")
        assert f"mimamori-risk-{name} v{champion.version}" in report and f"mimamori-risk-{other}" not in report
        card = (cfg.work / "model_cards" / f"v{champion.version}" / "model_card.md").read_text(encoding="utf-8")
        assert f"Model card: mimamori-risk-{name} v{champion.version}" in card
