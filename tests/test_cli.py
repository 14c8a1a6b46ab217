import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path):
    return ["--inbox", str(tmp_path / "inbox"), "--work", str(tmp_path / "work"), "--custody", str(tmp_path / "custody")]


def test_keygen_refuses_to_overwrite_with_a_clear_error(tmp_path, capsys):
    assert main(_env(tmp_path) + ["keygen"]) == 0
    key = (tmp_path / "custody" / "key" / "hmac.key").read_bytes()
    assert main(_env(tmp_path) + ["keygen"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "custody" / "key" / "hmac.key").read_bytes() == key


def test_commands_that_need_the_key_fail_clearly_without_it(tmp_path, capsys):
    (tmp_path / "inbox" / "2026-10").mkdir(parents=True)
    assert main(_env(tmp_path) + ["ingest", "--month", "2026-10"]) == 2
    assert "mimamori keygen" in capsys.readouterr().err


def test_release_without_a_list_is_refused(tmp_path, capsys):
    main(_env(tmp_path) + ["keygen"])
    assert main(_env(tmp_path) + ["approve", "--month", "2026-10", "--approver", "A", "--basis", "x"]) == 2
    assert "no list for 2026-10" in capsys.readouterr().err


def test_the_console_script_runs_from_the_environment_variables(tmp_path):
    env = dict(os.environ, MIMAMORI_INBOX=str(tmp_path / "i"), MIMAMORI_WORK=str(tmp_path / "w"),
               MIMAMORI_CUSTODY=str(tmp_path / "c"))
    script = Path(sys.executable).parent / "mimamori"   # installed by `make test` (pip install -e)
    out = subprocess.run([str(script), "keygen"], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "c" / "key" / "hmac.key").exists()


def test_audit_verify_exit_code_follows_the_chain(tmp_path, capsys):
    from pipelines import audit
    log = tmp_path / "custody" / "audit.jsonl"
    audit.append(log, "ingest", month="2026-09")
    audit.append(log, "ingest", month="2026-10")
    assert main(_env(tmp_path) + ["audit", "verify"]) == 0
    lines = log.read_text().splitlines()
    entry = json.loads(lines[0]); entry["month"] = "2026-08"
    log.write_text(json.dumps(entry) + "\n" + lines[1] + "\n")
    assert main(_env(tmp_path) + ["audit", "verify"]) == 1
