"""The commands of the `mimamori` CLI: each loads its inputs, calls a stage or a governance step,
saves, and prints one line per fact (pipelines/cli.py parses the arguments and handles errors)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.config import Config



class UsageError(ValueError):
    """A user's mistake found after parsing (e.g. a zone from the environment is a file); a
    ValueError, so main prints it as one line and exits 2."""


def _zone_is_folder(path: Path, name: str) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"the {name} {path} is a file, not a folder: move it away or choose another")



def _console():
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def cmd_keygen(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines import audit
    from pipelines.catalog import lake
    from pipelines.custody import check, private_dir
    from pipelines.pseudonymise import KeyProblem, create_key

    _zone_is_folder(cfg.custody, "custody zone")
    if not cfg.key_file.exists() and lake.ingested_months(cfg.lake):
        raise KeyProblem(f"the lake {cfg.lake} already holds pseudonyms made with a key: restore that "
                         f"key to {cfg.key_file} from the custody backup (a new key would start a second population "
                         "of pseudonyms; `mimamori rekey` is the way to change keys)")
    check(cfg.custody)
    private_dir(cfg.custody)
    create_key(cfg.key_file)
    audit.create_secret(cfg.audit_log)
    print(f"created a 256-bit key at {cfg.key_file} (mode 0600). Keep it in the custody zone only.")
    return 0


def cmd_synth(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from synth.ward import generate_ward

    _zone_is_folder(cfg.inbox, "inbox")
    if args.truth is not None and cfg.inbox.resolve() in Path(args.truth).resolve().parents:
        raise SystemExit("--truth must be outside the inbox: the latent state is not a delivery")
    summary = generate_ward(cfg.inbox, residents=args.residents, months=args.months, end_month=args.end_month,
                            seed=args.seed, messy=args.messy, truth=args.truth)
    print(f"wrote {summary['files']} files for {len(summary['months'])} months "
          f"({summary['months'][0]} … {summary['months'][-1]}) into {cfg.inbox}")
    return 0


def cmd_ingest(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from contract.messages import bilingual, reason_ja
    from pipelines.ingest import ingest_month
    from pipelines.pseudonymise import load_key

    summary = ingest_month(cfg, args.month, load_key(cfg.key_file), force=args.force)
    print(f"{args.month}: {summary['status']}")
    for name, s in summary["sources"].items():
        extra = f"; unknown columns dropped: {', '.join(s['unknown_columns'])}" if s["unknown_columns"] else ""
        print(f"  {name:20s} {s['accepted']:>9,d} rows  {s['quarantined']:>6,d} quarantined{extra}")
        for reason, n in s["quarantine_reasons"].items():
            print(f"      {n:>6,d} × " + bilingual(reason_ja(name, reason), reason))
        if "lines" in s:
            print(f"      {line_accounting(s['lines'])}")
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from expectations.policy import summary_lines

    for line in summary_lines(summary.get("validation", {})):
        print(f"  {line}")
    return 0


def line_accounting(lines: dict) -> str:
    """One line: every physical line (Parquet: row) of a delivered file and where it went."""
    unit = lines.get("unit", "lines")
    parts = [f"{lines[kind]:,d} {kind}" for kind in ("header", "blank", "accepted", "quarantined", "refused")
             if lines[kind] or kind in ("accepted", "quarantined")]
    return f"{lines['physical']:,d} {unit} = " + " + ".join(parts)


def validate_month(cfg: Config, month: str, key: bytes | None = None) -> dict:
    """`mimamori validate --month M`: validate the month's delivery in the inbox without committing it.

    Reads, pseudonymises and validates in memory exactly as ingest would, writes the results and
    the Data Docs (which describe the latest validation of the month), and returns the summary
    with what ingest would quarantine; the lake is not touched. Raises ContractError when a
    file is refused. The caller decides on an exit status from `summary["critical_failures"]`.
    """
    # imported per command: ingest loads GX and the readers
    from pipelines.catalog import validation
    from pipelines.ingest import read_delivery, refusal_evidence
    from pipelines.pseudonymise import load_key

    delivery = read_delivery(cfg, month, key if key is not None else load_key(cfg.key_file))
    check = validation.checked_delivery(cfg, month, delivery.tables, delivery.quarantine,
                                        sources=delivery.summary["sources"])
    # the causes and example lines summary_lines prints: every source, not only refused ones
    return {"month": month, **check.summary, "evidence": refusal_evidence(delivery, check, delivery.summary["sources"])}


def cmd_validate(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from expectations.policy import summary_lines

    summary = validate_month(cfg, args.month)   # a dry run: results and Data Docs, never the lake
    print(f"{args.month}: validated without committing")
    for line in summary_lines(summary, summary["evidence"]):
        print(f"  {line}")
    return 2 if summary["critical_failures"] else 0


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.catalog import runs
    from pipelines.catalog.runs import inbox_months
    from pipelines.monthly import run_months

    cfg = cfg.with_settings("engine", name=args.engine, master=args.master)
    months = inbox_months(cfg) if args.all else [args.month]
    if not months:
        raise SystemExit(f"mimamori: error: 受信フォルダ {cfg.inbox} に提供月がありません / "
                         f"no delivery months in the inbox {cfg.inbox}")
    console = _console()
    if args.all:
        for month in inbox_months(cfg, pending=True):
            console.print(f"{month}: not yet delivered (no residents extract), skipped")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} months"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("mimamori run", total=len(months))

        def done(result: dict) -> None:
            train = result["stages"]["train"]
            console.print(f"{result['month']}: listed {result['stages']['prioritise']['listed']} "
                          f"({'model v' + str(train['model_version']) if train['mode'] == 'model' else 'rule baseline'})"
                          f" in {sum(s['seconds'] for s in result['stages'].values()):.1f}s")
            bar.advance(task)

        run_months(cfg, months, progress=lambda text: bar.update(task, description=text), done=done)
    last = months[-1]
    console.print(f"report: {runs.report_file(cfg, last)}")
    return _leak_guard(cfg, console)


def _leak_guard(cfg: Config, console) -> int:
    """The batch ends by searching its own outputs for identifiers from the inbox."""
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.leakscan import scan

    hits = scan(cfg.inbox, [cfg.work], cache_dir=cfg.leakscan_cache, changed_only=True)
    if hits:
        console.print(f"[bold red]leak guard: {len(hits)} identifier hit(s) in the analyst zone "
                      "(values not shown); do not share these outputs:[/]")
        for hit in hits[:50]:
            console.print(f"  {hit}")
        return 1
    console.print(f"leak guard: no identifier from the inbox under {cfg.work}")
    return 0


def cmd_approver(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.approvers import add_approver, registered, revoke_approver, short_fingerprint

    if args.action == "add":
        a = add_approver(cfg, args.approver_id, args.name, args.role, args.key_out)
        print(f"registered approver {a['id']} ({a['name']}, {a['role']}), key fingerprint "
              f"{short_fingerprint(a['fingerprint'])}; private key written to {a['key_file']} (mode 0600): "
              "give it to that approver only, and keep no copy")
    elif args.action == "revoke":
        a = revoke_approver(cfg, args.approver_id, args.reason)
        print(f"revoked approver {a['id']} ({a['name']}); their approvals no longer count")
    else:
        people = registered(cfg)
        for a in people:
            print(f"{a['id']:8s} {a['status']:8s} {short_fingerprint(a['fingerprint'])}  {a['name']}（{a['role']}）")
        if not people:
            print("no approver registered yet: `mimamori approver add --id A01 --name ... --role ... --key-out ...`")
    return 0


def cmd_approve(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.release import approvals, approve, distinct_approvers

    entry = approve(cfg, args.month, args.approver_id, args.key_file, args.basis, args.purpose)
    n = len(distinct_approvers(approvals(cfg, args.month)))
    print(f"signed approval recorded for {args.month} by {entry['approver_id']} ({entry['approver']}, "
          f"{entry['role']}); {n} distinct approver(s) for the current list")
    if "review_sha256" in entry:
        # imported per command: the CLI starts fast, and heavy libraries load only where needed
        from pipelines.review import submitted_review

        review = submitted_review(cfg, args.month)
        print(f"the approval covers the coordinator's review submitted by {review.submitted_by}: "
              f"{len(review.skips)} skipped, {len(review.adds)} added (see the web app's approver page)")
    return 0


def cmd_release(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.release import release

    info = release(cfg, args.month, args.recipient, getattr(args, "csv_form", None))
    print(f"released {info['rows']} rows for {args.month} to the {args.recipient} into {info['dir']} "
          f"({', '.join(info['files'])}; expires {info['expires']})")
    return 0


def cmd_explain(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.explain import explain_person

    text, _ = explain_person(cfg, args.month, args.pid)
    print(text, end="")   # the text already ends with the waterfall's path, once
    return 0


def cmd_outcomes(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.outcomes import import_outcomes

    path = import_outcomes(cfg, args.file, args.month, args.into)
    print(f"visit outcomes from {args.file.name} merged into {path}")
    return 0


def cmd_purge(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.release import purge

    purged = purge(cfg)
    for info in purged:
        print(f"purged {info['month']} {info['recipient']} sheets (expired {info['expires']}): "
              + ", ".join(sorted(info["files"])))
    if not purged:
        print("no released sheet has expired")
    return 0


def cmd_rekey(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.rekey import rekey

    entry = rekey(cfg, progress=lambda text: print(text))
    print(f"re-pseudonymised {len(entry['months'])} months under key {entry['new_key_id']}; "
          f"key {entry['old_key_id']} destroyed; {len(entry['marked_runs'])} runs and "
          f"{len(entry['marked_model_versions'])} model versions marked as made under the retired key")
    return 0


def cmd_audit(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.audit import release_seals, verify

    problems = verify(cfg.audit_log, release_seals(cfg.releases_dir))
    if problems:
        print(f"audit log {cfg.audit_log} FAILED verification:")
        for p in problems:
            print(f"  {p}")
        return 1
    if not cfg.audit_log.exists():
        print(f"audit log {cfg.audit_log}: nothing logged yet (no anchor says otherwise)")
        return 0
    print(f"audit log {cfg.audit_log}: chain intact")
    return 0


def cmd_scan_pii(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.leakscan import scan

    hits = scan(cfg.inbox, [cfg.work], cache_dir=cfg.leakscan_cache)
    if hits:
        print(f"{len(hits)} identifier hit(s) outside the custody zone (values not shown):")
        for hit in hits[:50]:
            print(f"  {hit}")
        return 1
    print(f"no identifier from the inbox found under {cfg.work}")
    return 0


def cmd_truth_check(cfg: Config, args: argparse.Namespace) -> int:
    if args.wards:
        # imported per command: the CLI starts fast, and heavy libraries load only where needed
        from pipelines.truthwards import ward_set_check

        return ward_set_check(args)
    if args.truth is None:
        raise UsageError("truth-check --month には --truth（潜在状態のファイル）が要ります / "
                         "truth-check --month needs --truth (the latent state file)")
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.truthcheck import lines, truth_precision

    print("\n".join(lines(args.month, truth_precision(cfg, args.month, args.truth))))
    return 0


def cmd_where(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from contract.messages import no_run
    from pipelines.catalog import runs

    if runs.completed_run(cfg, args.month) is None:   # paths of a run that never happened mislead
        raise UsageError(no_run(args.month))
    release_dir = cfg.releases_dir / args.month
    print(f"\n{args.month}: where things are")
    sheets = [release_dir / "outreach.xlsx", release_dir / "outreach.csv"]
    if all(p.exists() for p in sheets):
        print(f"  outreach sheets (custody zone): {sheets[0]}")
        print(f"                                  {sheets[1]}")
    else:
        print(f"  outreach sheets (custody zone): not released yet (two approvals, then "
              f"`mimamori release --month {args.month}`)")
    print(f"  batch report:                   {runs.report_file(cfg, args.month)}")
    print(f"  MLflow store:                   {cfg.mlflow_db}")
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    print(f"    open it with: {mlflow_cli} ui --backend-store-uri sqlite:///{cfg.mlflow_db}")
    print(f"  audit log (custody zone):       {cfg.audit_log}")
    return 0


def cmd_bench(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.bench import run_bench, summary_lines, write_results
    from pipelines.bench_wards import run_wards_bench

    if args.wards > 1 or args.engine == "spark":   # several wards, or Spark beside the local engine
        engines = ("local", "spark") if args.engine == "spark" else ("local",)
        result = run_wards_bench(args.dir / f"wards-{args.wards}x{args.residents}", args.wards, args.residents,
                                 args.months, args.seed, engines, args.master)
    else:
        result = run_bench(args.dir / f"{args.residents}", args.residents, args.months, args.seed)
    path = write_results(result, args.results, args.docs)
    print("\n".join(summary_lines(result) + [f"results: {path}; table: {args.docs}"]))
    return 0


def cmd_serve(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    import uvicorn

    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.web.app import create_app

    web = cfg.settings["web"]
    host, port = args.host or web["host"], args.port or web["port"]
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}, not only this machine: put it behind HTTPS before anyone uses it",
              file=sys.stderr)
    print(f"mimamori: http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(create_app(cfg), host=host, port=port, log_level="warning", server_header=False)
    return 0


def new_password(stream=None) -> str:
    """The new account's password: asked twice at a terminal, else the first line of stdin
    (never an argument: argv is visible to every user of the machine and kept in shell history)."""
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    import getpass

    stream = stream or sys.stdin
    if not stream.isatty():
        return stream.readline().rstrip("\r\n")
    first = getpass.getpass("パスワード / password: ")
    if getpass.getpass("もう一度 / again: ") != first:
        raise UsageError("パスワードが一致しません / the two passwords differ")
    return first


def cmd_users(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.web.accounts import add_user
    from pipelines.web.db import database_url, engine_for, sessions_for
    from pipelines.web.decisions import link_approver

    approver = None
    if args.role == "approver":
        # an approver account gives a registered identity's signed approvals: it must name one
        from pipelines.approvers import active_approver, normal_id

        if not args.approver_id:
            raise UsageError("承認者のアカウントには --approver-id（`mimamori approver list` の ID）が必要です / "
                             "an approver account needs --approver-id (an id from `mimamori approver list`)")
        approver = active_approver(cfg, normal_id(args.approver_id))
    elif args.approver_id:
        raise UsageError("--approver-id は --role approver のときだけ指定します / --approver-id is for --role approver only")
    with sessions_for(engine_for(database_url(cfg)))() as db:
        user = add_user(db, args.name, args.role, new_password())
        if approver is not None:
            link_approver(db, user.name, approver["id"])
    print(f"account {user.name} created with the role {user.role}"
          + (f", approving as {approver['id']} ({approver['name']})" if approver else ""))
    return 0
