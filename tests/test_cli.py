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
    assert main(_env(tmp_path) + ["approve", "--month", "2026-10", "--approver-id", "A", "--key-file", sys.executable, "--basis", "x"]) == 2
    err = capsys.readouterr().err
    assert "2026-10 には完了した実行結果がありません" in err and "there is no completed run for 2026-10" in err
    assert "mimamori run --month 2026-10" in err


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


# --- every argument validated (issue 12, item 9) ---------------------------------------------

import re  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, assume, given, settings, strategies as st  # noqa: E402


def _outcome(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:     # argparse reports a bad argument by exiting 2
        code = exc.code
    return code, capsys.readouterr().err


def _one_line_error(code, err):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("mimamori") and "error:" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, says", [
    (["ingest", "--month", "2026-13"], "is not a month"),
    (["ingest", "--month", "2026-00"], "is not a month"),
    (["ingest", "--month", "../x"], "is not a month"),
    (["validate", "--month", "2026-4"], "is not a month"),
    (["run", "--month", "2026-04/../2026-04"], "is not a month"),
    (["approve", "--month", "2026-04/../2026-04", "--approver-id", "A", "--key-file", sys.executable, "--basis", "b"], "is not a month"),
    (["release", "--month", "202604"], "is not a month"),
    (["synth", "--end-month", "202604"], "is not a month"),
    (["synth", "--end-month", "2026-10", "--residents", "0"], "at least 1"),
    (["synth", "--end-month", "2026-10", "--months", "-3"], "at least 1"),
    (["synth", "--end-month", "2026-10", "--residents", "many"], "not a whole number"),
    (["synth", "--end-month", "2026-10", "--seed", "-1"], "between 0"),
    (["bench", "--residents", "0"], "at least 1"),
    (["explain", "--month", "2026-10", "--pid", "0123"], "not a pseudonym"),
    (["explain", "--month", "2026-10", "--pid", "0123456789ABCDEF0123456789ABCDEF"], "not a pseudonym"),
    (["release", "--month", "2026-10", "--recipient", "press"], "invalid choice"),
    (["approve", "--month", "2026-10", "--approver-id", "  ", "--key-file", sys.executable, "--basis", "b"], "non-empty"),
    (["approve", "--month", "2026-10", "--approver-id", "a\nb", "--key-file", sys.executable, "--basis", "b"], "one line"),
    (["approve", "--month", "2026-10", "--approver-id", "a", "--key-file", sys.executable, "--basis", ""], "non-empty"),
    (["outcomes", "import", "no-such-sheet.xlsx", "--month", "2026-10"], "not a file"),
    (["outcomes", "import", sys.executable, "--month", "2026-10", "--into", "2026/10"], "is not a month"),
    (["--config", "no-such.toml", "keygen"], "not a file"),
])
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, capsys, argv, says):
    code, err = _outcome(_env(tmp_path) + argv, capsys)
    _one_line_error(code, err)
    assert says in err
    assert not (tmp_path / "custody").exists() and not (tmp_path / "inbox").exists()


@pytest.mark.parametrize("zone, command", [("inbox", ["synth", "--end-month", "2026-10", "--residents", "5"]),
                                           ("custody", ["keygen"])])
def test_a_zone_that_is_a_file_is_refused_in_one_line(tmp_path, capsys, monkeypatch, zone, command):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    code, err = _outcome([f"--{zone}", str(a_file), *command], capsys)      # on the command line
    _one_line_error(code, err)
    assert "is a file, not a folder" in err
    monkeypatch.setenv(f"MIMAMORI_{zone.upper()}", str(a_file))             # or from the environment
    others = [a for z in ("inbox", "work", "custody") if z != zone for a in (f"--{z}", str(tmp_path / z))]
    code, err = _outcome(others + command, capsys)
    _one_line_error(code, err)
    assert "is a file, not a folder" in err and a_file.read_text() == "not a folder"


MONTH_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=24) | st.from_regex(r"\A[0-9./-]{4,12}\Z"))
def test_any_string_that_is_not_a_month_is_refused_at_parse_time(tmp_path, capsys, text):
    assume(not (MONTH_RE.fullmatch(text) and 1900 <= int(text[:4]) <= 2999))
    code, err = _outcome(_env(tmp_path) + ["ingest", f"--month={text}"], capsys)
    _one_line_error(code, err)
    assert not (tmp_path / "work").exists()


def test_the_valid_months_parse(tmp_path):
    from pipelines.cli import build_parser

    for text in ("1999-01", "2026-04", "2026-12"):
        assert build_parser().parse_args(["ingest", "--month", text]).month == text


# Every option that takes a month, with the other arguments its command needs (sys.executable
# stands in for an existing file: the month is refused before the file is opened).
MONTH_OPTIONS = {
    ("synth", "--end-month"): ["synth", "--end-month", "{m}"],
    ("ingest", "--month"): ["ingest", "--month", "{m}"],
    ("validate", "--month"): ["validate", "--month", "{m}"],
    ("run", "--month"): ["run", "--month", "{m}"],
    ("approve", "--month"): ["approve", "--month", "{m}", "--approver-id", "A", "--key-file", sys.executable, "--basis", "b"],
    ("release", "--month"): ["release", "--month", "{m}"],
    ("explain", "--month"): ["explain", "--month", "{m}", "--pid", "0" * 32],
    ("outcomes", "--month"): ["outcomes", "import", sys.executable, "--month", "{m}"],
    ("outcomes", "--into"): ["outcomes", "import", sys.executable, "--month", "2026-10", "--into", "{m}"],
    ("truth-check", "--month"): ["truth-check", "--month", "{m}", "--truth", sys.executable],
    ("truth-check", "--end-month"): ["truth-check", "--wards", "--end-month", "{m}"],
    ("where", "--month"): ["where", "--month", "{m}"],
}


def test_the_month_options_listed_are_every_month_option_of_the_cli():
    from pipelines.cli import build_parser, month
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    found = {(name, a.option_strings[0]) for name, p in sub.choices.items() for a in p._actions if a.type is month}
    assert found == set(MONTH_OPTIONS)


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "2026-00", "２０２６-10"])
@pytest.mark.parametrize("option", sorted(MONTH_OPTIONS), ids=lambda o: " ".join(o))
def test_every_month_taking_command_refuses_a_month_that_is_not_one_in_both_languages(tmp_path, capsys, option, bad):
    code, err = _outcome(_env(tmp_path) + [a.format(m=bad) for a in MONTH_OPTIONS[option]], capsys)
    _one_line_error(code, err)
    assert "は年月ではありません" in err and "is not a month" in err and bad in err


def test_where_for_a_month_without_a_completed_run_is_an_error_naming_what_to_run(tmp_path, capsys):
    main(_env(tmp_path) + ["keygen"])
    capsys.readouterr()
    code = main(_env(tmp_path) + ["where", "--month", "2030-01"])
    out, err = capsys.readouterr()
    assert code != 0
    assert "demo finished" not in out and "outreach.xlsx" not in out and "index.html" not in out
    assert "2030-01 には完了した実行結果がありません" in err and "mimamori run --month 2030-01" in err


def test_explain_for_a_month_without_a_run_names_what_to_run(tmp_path, capsys):
    main(_env(tmp_path) + ["keygen"])
    capsys.readouterr()
    assert main(_env(tmp_path) + ["explain", "--month", "2030-01", "--pid", "0" * 32]) == 2
    err = capsys.readouterr().err
    assert "2030-01 には完了した実行結果がありません" in err and "mimamori run --month 2030-01" in err


def test_ingest_of_a_month_with_no_delivery_says_so_in_both_languages(tmp_path, capsys):
    main(_env(tmp_path) + ["keygen"])
    capsys.readouterr()
    assert main(_env(tmp_path) + ["ingest", "--month", "2030-01"]) == 2
    err = capsys.readouterr().err
    assert "2030-01 の提供が受信フォルダにありません" in err and "no delivery for 2030-01" in err


def test_truth_check_for_a_month_without_a_run_names_what_to_run(tmp_path, capsys):
    main(_env(tmp_path) + ["keygen"])
    capsys.readouterr()
    assert main(_env(tmp_path) + ["truth-check", "--month", "2030-01", "--truth", sys.executable]) == 2
    err = capsys.readouterr().err
    assert "2030-01 には完了した実行結果がありません" in err and "mimamori run --month 2030-01" in err
