"""The `mimamori` command. Only argument handling and printing live here; stages do the work."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pipelines  # noqa: F401  (telemetry off first)
from pipelines.config import Config, load_config


def _console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def cmd_keygen(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.pseudonymise import create_key

    create_key(cfg.key_file)
    print(f"created a 256-bit key at {cfg.key_file} (mode 0600). Keep it in the custody zone only.")
    return 0


def cmd_synth(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.synth import generate_ward

    if args.truth is not None and cfg.inbox.resolve() in Path(args.truth).resolve().parents:
        raise SystemExit("--truth must be outside the inbox: the latent state is not a delivery")
    summary = generate_ward(cfg.inbox, residents=args.residents, months=args.months, end_month=args.end_month,
                            seed=args.seed, messy=args.messy, truth=args.truth)
    print(f"wrote {summary['files']} files for {len(summary['months'])} months "
          f"({summary['months'][0]} … {summary['months'][-1]}) into {cfg.inbox}")
    return 0


def cmd_ingest(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.ingest import ingest_month
    from pipelines.pseudonymise import load_key

    summary = ingest_month(cfg, args.month, load_key(cfg.key_file), force=args.force)
    print(f"{args.month}: {summary['status']}")
    for name, s in summary["sources"].items():
        extra = f"; unknown columns dropped: {', '.join(s['unknown_columns'])}" if s["unknown_columns"] else ""
        print(f"  {name:20s} {s['accepted']:>9,d} rows  {s['quarantined']:>6,d} quarantined{extra}")
        for reason, n in s["quarantine_reasons"].items():
            print(f"      {n:>6,d} × {reason}")
        if "lines" in s:
            print(f"      {line_accounting(s['lines'])}")
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


def cmd_validate(cfg: Config, args: argparse.Namespace) -> int:
    from expectations.policy import summary_lines
    from expectations.validate import validate_month

    summary = validate_month(cfg, args.month)   # a dry run: results and Data Docs, never the lake
    print(f"{args.month}: validated without committing")
    for line in summary_lines(summary):
        print(f"  {line}")
    return 2 if summary["critical_failures"] else 0


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines.monthly import inbox_months, run_months

    months = inbox_months(cfg) if args.all else [args.month]
    if not months:
        raise SystemExit(f"no delivery months in the inbox {cfg.inbox}")
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
    console.print(f"report: {cfg.runs / last / 'report' / 'index.html'}")
    return _leak_guard(cfg, console)


def _leak_guard(cfg: Config, console) -> int:
    """The batch ends by searching its own outputs for identifiers from the inbox."""
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


def cmd_approve(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.release import approve, approvals

    approve(cfg, args.month, args.approver, args.basis, args.purpose)
    n = len({a["approver"] for a in approvals(cfg, args.month)})
    print(f"approval recorded for {args.month} by {args.approver}; {n} distinct approver(s) for the current list")
    return 0


def cmd_release(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.release import release

    info = release(cfg, args.month, args.recipient)
    print(f"released {info['rows']} rows for {args.month} to the {args.recipient} into {info['dir']} "
          f"({', '.join(info['files'])}; expires {info['expires']})")
    return 0


def cmd_explain(cfg: Config, args: argparse.Namespace) -> int:
    from models.explain import explain_person

    text, png = explain_person(cfg, args.month, args.pid)
    print(text)
    if png is not None:
        print(f"waterfall: {png}")
    return 0


def cmd_outcomes(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.outcomes import import_outcomes

    path = import_outcomes(cfg, args.file, args.month, args.into)
    print(f"visit outcomes from {args.file.name} merged into {path}")
    return 0


def cmd_purge(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.release import purge

    purged = purge(cfg)
    for info in purged:
        print(f"purged {info['month']} {info['recipient']} sheets (expired {info['expires']}): "
              + ", ".join(sorted(info["files"])))
    if not purged:
        print("no released sheet has expired")
    return 0


def cmd_rekey(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.rekey import rekey

    entry = rekey(cfg, progress=lambda text: print(text))
    print(f"re-pseudonymised {len(entry['months'])} months under key {entry['new_key_id']}; "
          f"key {entry['old_key_id']} destroyed; {len(entry['marked_runs'])} runs and "
          f"{len(entry['marked_model_versions'])} model versions marked as made under the retired key")
    return 0


def cmd_audit(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.audit import verify

    problems = verify(cfg.audit_log)
    if problems:
        print(f"audit log {cfg.audit_log} FAILED verification:")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"audit log {cfg.audit_log}: chain intact")
    return 0


def cmd_scan_pii(cfg: Config, args: argparse.Namespace) -> int:
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
    from pipelines.truthcheck import truth_precision

    r = truth_precision(cfg, args.month, args.truth)
    print(f"{args.month}: precision against the synthetic ward's latent isolation state "
          f"(base rate {r['base_rate']:.2%} of {r['residents']:,d} residents)")
    rows = [("list", "mimamori list (ranked picks)"), ("exploration", "mimamori list (random picks)"),
            ("champion", f"champion model v{r.get('champion_version')} alone"),
            ("alone_75", "rule: 75+ living alone"), ("health_unknown", "rule: no checkup 2y, no care cert"),
            ("points", "rule: points score (config)")]
    for name, label in rows:
        if name in r:
            x = r[name]
            print(f"  {label:36s} {x['isolated']:>5d} / {x['listed']:<5d} = {x['precision']:.1%}")
    rule = r["alone_75"]["precision"]
    for name in ("list", "champion"):
        if name in r and rule > 0:
            print(f"  {name} vs the 75+ living-alone rule: {r[name]['precision'] / rule:.2f}×")
    print("  (the rules and the champion are cut to the same district capacities after the same exclusions)")
    return 0


def cmd_where(cfg: Config, args: argparse.Namespace) -> int:
    release_dir = cfg.releases_dir / args.month
    print("\nmimamori demo finished. Where things are:")
    print(f"  outreach sheets (custody zone): {release_dir / 'outreach.xlsx'}")
    print(f"                                  {release_dir / 'outreach.csv'}")
    print(f"  batch report:                   {cfg.runs / args.month / 'report' / 'index.html'}")
    print(f"  MLflow store:                   {cfg.mlflow_db}")
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    print(f"    open it with: {mlflow_cli} ui --backend-store-uri sqlite:///{cfg.mlflow_db}")
    print(f"  audit log (custody zone):       {cfg.audit_log}")
    return 0


def cmd_bench(cfg: Config, args: argparse.Namespace) -> int:
    from pipelines.bench import run_bench, write_results

    result = run_bench(args.dir / f"{args.residents}", args.residents, args.months, args.seed)
    path = write_results(result, args.results, args.docs)
    for phase in ("backfill", "incremental"):
        p = result[phase]
        print(f"{phase}: {p['months']} months in {p['seconds']} s (CPU {p['cpu_seconds']} s), "
              f"peak RSS {p['peak_rss_mb']} MB, floor {p['floor_seconds']} s")
    print(f"results: {path}; table: {args.docs}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mimamori", description="見守り: monthly isolation-risk outreach lists")
    parser.add_argument("--config", type=Path, help="a mimamori.toml (default: ./mimamori.toml if present)")
    parser.add_argument("--inbox", type=Path, help="identified extracts (env MIMAMORI_INBOX)")
    parser.add_argument("--work", type=Path, help="analyst zone (env MIMAMORI_WORK)")
    parser.add_argument("--custody", type=Path, help="key, approvals, releases, audit log (env MIMAMORI_CUSTODY)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("keygen", help="create the 256-bit pseudonymisation key in the custody zone").set_defaults(func=cmd_keygen)

    p = sub.add_parser("synth", help="write a synthetic ward's monthly extracts into the inbox")
    p.add_argument("--residents", type=int, default=20000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--end-month", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--messy", action="store_true", help="CP932/BOM, Japanese headers, 和暦, full-width digits")
    p.add_argument("--truth", type=Path, help="write the last month's latent isolation state here (not the inbox)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("ingest", help="ingest, pseudonymise and validate one delivery")
    p.add_argument("--month", required=True)
    p.add_argument("--force", action="store_true", help="re-ingest even if the lake already holds this delivery")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("validate", help="validate one delivery without committing it; results and Data Docs")
    p.add_argument("--month", required=True)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="run every stage for a month (or all months)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--month")
    g.add_argument("--all", action="store_true")
    p.add_argument("--wait", action="store_true", help="if another command holds the work dir, wait for it instead of refusing")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("approve", help="record an approval of a month's list")
    p.add_argument("--month", required=True)
    p.add_argument("--approver", required=True)
    p.add_argument("--basis", required=True, help="legal basis, e.g. 個人情報保護法第69条第2項第2号")
    p.add_argument("--purpose", default="見守り訪問（孤立の予防）")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("release", help="write the named visiting sheets of an approved list (custody zone)")
    p.add_argument("--month", required=True)
    p.add_argument("--recipient", choices=["coordinator", "minsei", "nurse"], default="coordinator",
                   help="coordinator: the full sheet; minsei: name, address, age band, reasons; nurse: adds contact details")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("explain", help="an auditor's view of one listed person's reasons (no identifiers)")
    p.add_argument("--month", required=True)
    p.add_argument("--pid", required=True)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("outcomes", help="visit outcomes returned on the sheets")
    p.add_argument("action", choices=["import"])
    p.add_argument("file", type=Path, help="the returned outreach.xlsx with 訪問日 and 訪問結果 filled in")
    p.add_argument("--month", required=True, help="the month of the list the sheet came from")
    p.add_argument("--into", help="delivery month to write into (default: the month after)")
    p.set_defaults(func=cmd_outcomes)

    sub.add_parser("purge", help="delete released sheets past their expiry (logged)").set_defaults(func=cmd_purge)
    sub.add_parser("rekey", help="rotate the key: re-pseudonymise the lake, destroy the old key (logged)"
                   ).set_defaults(func=cmd_rekey)

    p = sub.add_parser("audit", help="check the audit log")
    p.add_argument("action", choices=["verify"])
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("truth-check", help="precision of a list against a synthetic ward's latent truth")
    p.add_argument("--month", required=True)
    p.add_argument("--truth", type=Path, required=True)
    p.set_defaults(func=cmd_truth_check)

    p = sub.add_parser("where", help="print where a month's outputs are")
    p.add_argument("--month", required=True)
    p.set_defaults(func=cmd_where)

    p = sub.add_parser("bench", help="time a synthetic ward's backfill and one incremental month")
    p.add_argument("--residents", type=int, required=True)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dir", type=Path, default=Path("bench/tmp"), help="scratch folder for the ward (not kept)")
    p.add_argument("--results", type=Path, default=Path("bench/results"))
    p.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    p.set_defaults(func=cmd_bench)

    sub.add_parser("scan-pii", help="search the analyst zone for identifiers from the inbox").set_defaults(func=cmd_scan_pii)
    return parser


# Which zones' locks a command holds while it runs (pipelines/locks.py): commands that write
# (or may rebuild a cached table in) the work dir hold its lock; custody writers hold custody's.
ZONE_LOCKS = {"run": ("work",), "ingest": ("work",), "validate": ("work",), "explain": ("work",),
              "truth-check": ("work",), "scan-pii": ("work",), "rekey": ("work", "custody"),
              "approve": ("custody",), "release": ("custody",), "purge": ("custody",)}


def _locked(cfg: Config, args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from pipelines.locks import custody_lock, work_lock

    with ExitStack() as stack:
        for zone in ZONE_LOCKS.get(args.command, ()):
            lock = work_lock if zone == "work" else custody_lock
            stack.enter_context(lock(cfg, wait=bool(getattr(args, "wait", False))))
        return args.func(cfg, args)


def main(argv: list[str] | None = None) -> int:
    from pipelines.ingest import ValidationFailed
    from pipelines.locks import LockHeld
    from pipelines.pseudonymise import KeyProblem
    from pipelines.reading import ContractError
    from pipelines.release import ReleaseRefused
    from pipelines.storage import DataDamaged, DiskFull, free_space_text, is_disk_full

    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, args.inbox, args.work, args.custody)
    try:
        return _locked(cfg, args)
    except (ContractError, ValidationFailed, KeyProblem, ReleaseRefused, FileNotFoundError, ValueError,
            DataDamaged, DiskFull, LockHeld) as exc:
        # Our errors are written to name files, lines and columns, never values.
        print(f"mimamori: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        # A full disk met outside our own writes (MLflow's SQLite store, a library's file): the
        # write that failed left nothing we trust (our files are atomic), so a rerun is safe.
        print(f"mimamori: error: the disk is full ({type(exc).__name__} while running `{args.command}`; "
              f"work dir {cfg.work}, {free_space_text(cfg.work)}): free space on that disk and rerun the same command", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
