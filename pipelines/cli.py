"""The `mimamori` command. Only argument handling and printing live here; stages do the work."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import NoReturn

import pipelines  # noqa: F401  (telemetry off first)
from pipelines.config import Config, load_config

# --- argument types: every value a user types is checked here, once, at parse time ----------

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_PID = re.compile(r"[0-9a-f]{32}")


def month(text: str) -> str:
    """YYYY-MM with a real month (a folder name, so nothing else: no `..`, no slashes)."""
    match = _MONTH.fullmatch(text)
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1900 <= int(match.group(1)) <= 2999:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month: write it as YYYY-MM, e.g. 2026-04")
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 4294967295")
    return value


def pid(text: str) -> str:
    if not _PID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a pseudonym (32 lowercase hexadecimal characters)")
    return text


def name_text(text: str) -> str:
    """A person's name or a legal basis: printable, not blank, one line."""
    if not text.strip() or any(not ch.isprintable() for ch in text):
        raise argparse.ArgumentTypeError("must be non-empty printable text on one line")
    return text


def folder(text: str) -> Path:
    """A zone folder: it may not exist yet, but must not be a file."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError("an empty path")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a folder")
    return path


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path} does not exist or is not a file")
    return path


class _Parser(argparse.ArgumentParser):
    """A user's mistake is one line on stderr and exit 2 (argparse would add the usage block)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class UsageError(ValueError):
    """A user's mistake found after parsing (e.g. a zone from the environment is a file); a
    ValueError, so main prints it as one line and exits 2."""


def _zone_is_folder(path: Path, name: str) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"the {name} {path} is a file, not a folder: move it away or choose another")


# Commands that read or write the custody zone check its modes first (pipelines/custody.py).
CUSTODY_COMMANDS = {"ingest", "validate", "run", "approve", "release", "purge", "rekey", "audit", "outcomes",
                    "truth-check", "scan-pii"}


def _console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def cmd_keygen(cfg: Config, args: argparse.Namespace) -> int:
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
    from pipelines.synth import generate_ward

    _zone_is_folder(cfg.inbox, "inbox")
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
    from pipelines.ingest import validate_month

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
    from pipelines.release import approvals, approve, distinct_approvers

    entry = approve(cfg, args.month, args.approver, args.basis, args.purpose)
    n = len(distinct_approvers(approvals(cfg, args.month)))
    print(f"approval recorded for {args.month} by {entry['approver']}; {n} distinct approver(s) for the current list")
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
    from contract.storage import read_json

    # release records seal the head of the log they saw: a log cut back below one is caught
    seals = [(str(p), read_json(p)["audit_head"]) for p in sorted(cfg.releases_dir.glob("*/release*.json"))
             if "audit_head" in read_json(p)]
    problems = verify(cfg.audit_log, seals)
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
    parser = _Parser(prog="mimamori", description="見守り: monthly isolation-risk outreach lists")
    parser.add_argument("--config", type=existing_file, help="a mimamori.toml (default: ./mimamori.toml if present)")
    parser.add_argument("--inbox", type=folder, help="identified extracts (env MIMAMORI_INBOX)")
    parser.add_argument("--work", type=folder, help="analyst zone (env MIMAMORI_WORK)")
    parser.add_argument("--custody", type=folder, help="key, approvals, releases, audit log (env MIMAMORI_CUSTODY)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("keygen", help="create the 256-bit pseudonymisation key in the custody zone").set_defaults(func=cmd_keygen)

    p = sub.add_parser("synth", help="write a synthetic ward's monthly extracts into the inbox")
    p.add_argument("--residents", type=positive_int, default=20000)
    p.add_argument("--months", type=positive_int, default=24)
    p.add_argument("--end-month", type=month, required=True)
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--messy", action="store_true", help="CP932/BOM, Japanese headers, 和暦, full-width digits")
    p.add_argument("--truth", type=Path, help="write the last month's latent isolation state here (not the inbox)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("ingest", help="ingest, pseudonymise and validate one delivery")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--force", action="store_true", help="re-ingest even if the lake already holds this delivery")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("validate", help="validate one delivery without committing it; results and Data Docs")
    p.add_argument("--month", type=month, required=True)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="run every stage for a month (or all months)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--month", type=month)
    g.add_argument("--all", action="store_true")
    p.add_argument("--wait", action="store_true", help="if another command holds the work dir, wait for it instead of refusing")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("approve", help="record an approval of a month's list")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--approver", type=name_text, required=True)
    p.add_argument("--basis", type=name_text, required=True, help="legal basis, e.g. 個人情報保護法第69条第2項第2号")
    p.add_argument("--purpose", type=name_text, default="見守り訪問（孤立の予防）")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("release", help="write the named visiting sheets of an approved list (custody zone)")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--recipient", choices=["coordinator", "minsei", "nurse"], default="coordinator",
                   help="coordinator: the full sheet; minsei: name, address, age band, reasons; nurse: adds contact details")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("explain", help="an auditor's view of one listed person's reasons (no identifiers)")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--pid", type=pid, required=True)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("outcomes", help="visit outcomes returned on the sheets")
    p.add_argument("action", choices=["import"])
    p.add_argument("file", type=existing_file, help="the returned outreach.xlsx with 訪問日 and 訪問結果 filled in")
    p.add_argument("--month", type=month, required=True, help="the month of the list the sheet came from")
    p.add_argument("--into", type=month, help="delivery month to write into (default: the month after)")
    p.set_defaults(func=cmd_outcomes)

    sub.add_parser("purge", help="delete released sheets past their expiry (logged)").set_defaults(func=cmd_purge)
    sub.add_parser("rekey", help="rotate the key: re-pseudonymise the lake, destroy the old key (logged)"
                   ).set_defaults(func=cmd_rekey)

    p = sub.add_parser("audit", help="check the audit log")
    p.add_argument("action", choices=["verify"])
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("truth-check", help="precision of a list against a synthetic ward's latent truth")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--truth", type=existing_file, required=True)
    p.set_defaults(func=cmd_truth_check)

    p = sub.add_parser("where", help="print where a month's outputs are")
    p.add_argument("--month", type=month, required=True)
    p.set_defaults(func=cmd_where)

    p = sub.add_parser("bench", help="time a synthetic ward's backfill and one incremental month")
    p.add_argument("--residents", type=positive_int, required=True)
    p.add_argument("--months", type=positive_int, default=24)
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--dir", type=folder, default=Path("bench/tmp"), help="scratch folder for the ward (not kept)")
    p.add_argument("--results", type=Path, default=Path("bench/results"))
    p.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    p.set_defaults(func=cmd_bench)

    sub.add_parser("scan-pii", help="search the analyst zone for identifiers from the inbox").set_defaults(func=cmd_scan_pii)
    return parser


# Which zones' locks a command holds while it runs (pipelines/locks.py): commands that write
# (or may rebuild a cached table in) the work dir hold its lock; custody writers hold custody's.
ZONE_LOCKS = {"run": ("work",), "ingest": ("work",), "validate": ("work",), "explain": ("work",),
              "truth-check": ("work",), "scan-pii": ("work",), "rekey": ("work", "custody"),
              # approve and release read the run folder: a `run` rewriting it must not be under way
              "approve": ("work", "custody"), "release": ("work", "custody"), "purge": ("custody",),
              "outcomes": ("custody",)}   # writes the next delivery into the inbox


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
    from contract.storage import DataDamaged, DiskFull, free_space_text, is_disk_full

    import os

    from pipelines.custody import UMASK, check as check_custody

    os.umask(UMASK)   # custody files 0600 and folders 0700 from creation (and so the rest)
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, args.inbox, args.work, args.custody)
    try:
        if args.command in CUSTODY_COMMANDS:
            check_custody(cfg.custody)
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
