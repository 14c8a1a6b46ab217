"""The `mimamori` command. Only argument handling and printing live here; stages do the work."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import NoReturn

import pipelines  # noqa: F401  (telemetry off first)
from pipelines import commands
from contract.messages import bilingual
from pipelines.config import Config, load_config
from pipelines.web.roles import ROLES

# --- argument types: every value a user types is checked here, once, at parse time ----------

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")   # [0-9]: \d would take full-width digits
_PID = re.compile(r"[0-9a-f]{32}")


def month(text: str) -> str:
    """YYYY-MM with a real month (a folder name, so nothing else: no `..`, no slashes)."""
    match = _MONTH.fullmatch(text)
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1900 <= int(match.group(1)) <= 2999:
        raise argparse.ArgumentTypeError(bilingual(f"{text!r} は年月ではありません。YYYY-MM の形（例：2026-04、月は 01〜12）で書いてください",
                                                   f"{text!r} is not a month: write it as YYYY-MM, e.g. 2026-04 (month 01 to 12)"))
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


def port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
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


# The truth-check's default wards (docs/model-quality.md): five sizes and seeds, each in its folder.
DEFAULT_WARD_SET = ((20000, 101, "w20"), (35000, 102, "w35"), (50000, 103, "w50b"), (75000, 104, "w75"),
                    (100000, 105, "w100"))
_WARD = re.compile(r"([0-9]+):([0-9]+)(?::([A-Za-z0-9_-]+))?")


def ward_set(text: str) -> tuple[tuple[int, int, str], ...]:
    """RESIDENTS:SEED[:FOLDER],… — the folder defaults to w<thousands> (w20 for 20000) or w<residents>."""
    out = []
    for item in text.split(","):
        match = _WARD.fullmatch(item.strip())
        if not match:
            raise argparse.ArgumentTypeError(f"{item!r} is not RESIDENTS:SEED or RESIDENTS:SEED:FOLDER")
        residents, seed_ = positive_int(match.group(1)), seed(match.group(2))
        name = match.group(3) or (f"w{residents // 1000}" if residents % 1000 == 0 else f"w{residents}")
        out.append((residents, seed_, name))
    if len({name for _, _, name in out}) < len(out):
        raise argparse.ArgumentTypeError("two wards of the set share a folder")
    return tuple(out)


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path} does not exist or is not a file")
    return path


class _Parser(argparse.ArgumentParser):
    """A user's mistake is one line on stderr and exit 2 (argparse would add the usage block)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# Commands that read or write the custody zone check its modes first (pipelines/custody.py).
CUSTODY_COMMANDS = {"ingest", "validate", "run", "approver", "approve", "release", "purge", "rekey", "audit",
                    "outcomes", "truth-check", "scan-pii", "serve", "users"}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mimamori", description="見守り: monthly isolation-risk outreach lists")
    parser.add_argument("--config", type=existing_file, help="a mimamori.toml (default: ./mimamori.toml if present)")
    parser.add_argument("--inbox", type=folder, help="identified extracts (env MIMAMORI_INBOX)")
    parser.add_argument("--work", type=folder, help="analyst zone (env MIMAMORI_WORK)")
    parser.add_argument("--custody", type=folder, help="key, approvals, releases, audit log (env MIMAMORI_CUSTODY)")
    parser.add_argument("--ward", help="one ward of several: its zones and key from [wards.<NAME>] in mimamori.toml")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("keygen", help="create the 256-bit pseudonymisation key in the custody zone").set_defaults(func=commands.cmd_keygen)

    p = sub.add_parser("synth", help="write a synthetic ward's monthly extracts into the inbox")
    p.add_argument("--residents", type=positive_int, default=20000)
    p.add_argument("--months", type=positive_int, default=24)
    p.add_argument("--end-month", type=month, required=True)
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--messy", action="store_true", help="CP932/BOM, Japanese headers, 和暦, full-width digits")
    p.add_argument("--truth", type=Path, help="write the last month's latent isolation state here (not the inbox)")
    p.set_defaults(func=commands.cmd_synth)

    p = sub.add_parser("ingest", help="ingest, pseudonymise and validate one delivery")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--force", action="store_true", help="re-ingest even if the lake already holds this delivery")
    p.set_defaults(func=commands.cmd_ingest)

    p = sub.add_parser("validate", help="validate one delivery without committing it; results and Data Docs")
    p.add_argument("--month", type=month, required=True)
    p.set_defaults(func=commands.cmd_validate)

    p = sub.add_parser("run", help="run every stage for a month (or all months)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--month", type=month)
    g.add_argument("--all", action="store_true")
    p.add_argument("--wait", action="store_true", help="if another command holds the work dir, wait for it instead of refusing")
    p.add_argument("--all-wards", action="store_true", help="every ward of [wards] in mimamori.toml, one after another")
    p.add_argument("--engine", choices=["local", "spark"], help="where the stages run (default: [engine] name, local)")
    p.add_argument("--master", type=name_text, help="Spark master: local[2], spark://host:7077, yarn (default: [engine] master)")
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser("approver", help="register, list or revoke the people who may approve a release (custody zone)")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="register an approver; writes their private key to --key-out (0600)")
    a.add_argument("--id", dest="approver_id", type=name_text, required=True, help="e.g. A01")
    a.add_argument("--name", type=name_text, required=True)
    a.add_argument("--role", type=name_text, required=True, help="e.g. 高齢福祉課長")
    a.add_argument("--key-out", type=Path, required=True,
                   help="where to write the approver's private key: a place only they can read, outside every zone")
    a = actions.add_parser("list", help="the registered approvers, their key fingerprints and status")
    a = actions.add_parser("revoke", help="revoke an approver: their approvals stop counting")
    a.add_argument("--id", dest="approver_id", type=name_text, required=True)
    a.add_argument("--reason", type=name_text, required=True)
    p.set_defaults(func=commands.cmd_approver)

    p = sub.add_parser("approve", help="sign an approval of a month's list as a registered approver")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--approver-id", type=name_text, required=True, help="the id the custodian registered, e.g. A01")
    p.add_argument("--key-file", type=existing_file, required=True, help="the approver's own private key file")
    p.add_argument("--basis", type=name_text, required=True, help="legal basis, e.g. 個人情報保護法第69条第2項第2号")
    p.add_argument("--purpose", type=name_text, default="見守り訪問（孤立の予防）")
    p.set_defaults(func=commands.cmd_approve)

    p = sub.add_parser("release", help="write the named visiting sheets of an approved list (custody zone)")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--recipient", choices=["coordinator", "minsei", "nurse"], default="coordinator",
                   help="coordinator: the full sheet; minsei: name, address, age band, reasons without figures; "
                        "nurse: adds contact details (reports/recipients.py)")
    p.add_argument("--csv", dest="csv_form", choices=["excel", "plain"], default=None,
                   help="outreach.csv for Excel (Japanese headers, IDs keep their zeros) or plain "
                        "(column keys, for another system); default [release] csv_form = excel")
    p.set_defaults(func=commands.cmd_release)

    p = sub.add_parser("explain", help="an auditor's view of one listed person's reasons (no identifiers)")
    p.add_argument("--month", type=month, required=True)
    p.add_argument("--pid", type=pid, required=True)
    p.set_defaults(func=commands.cmd_explain)

    p = sub.add_parser("outcomes", help="visit outcomes returned on the sheets")
    p.add_argument("action", choices=["import"])
    p.add_argument("file", type=existing_file, help="the returned outreach.xlsx with 訪問日 and 訪問結果 filled in")
    p.add_argument("--month", type=month, required=True, help="the month of the list the sheet came from")
    p.add_argument("--into", type=month, help="delivery month to write into (default: the month after)")
    p.set_defaults(func=commands.cmd_outcomes)

    sub.add_parser("purge", help="delete released sheets past their expiry (logged)").set_defaults(func=commands.cmd_purge)
    sub.add_parser("rekey", help="rotate the key: re-pseudonymise the lake, destroy the old key (logged)"
                   ).set_defaults(func=commands.cmd_rekey)

    p = sub.add_parser("audit", help="check the audit log")
    p.add_argument("action", choices=["verify"])
    p.set_defaults(func=commands.cmd_audit)

    p = sub.add_parser("truth-check", help="precision of a list against a synthetic ward's latent truth "
                       "(one month, or --wards: many synthetic wards, with the ablation; docs/model-quality.md)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--month", type=month)
    g.add_argument("--wards", action="store_true", help="generate, run and measure a set of synthetic wards")
    p.add_argument("--truth", type=existing_file, help="with --month: the ward's latent state file")
    p.add_argument("--ward-set", type=ward_set, default=DEFAULT_WARD_SET,
                   help="RESIDENTS:SEED[:FOLDER],… (default: 20000:101:w20,35000:102:w35,50000:103:w50b,"
                        "75000:104:w75,100000:105:w100)")
    p.add_argument("--months", type=positive_int, default=30)
    p.add_argument("--end-month", type=month, default="2026-10")
    p.add_argument("--root", type=folder, default=Path("bench/truth-wards"), help="where the wards live, one folder each")
    p.add_argument("--docs", type=Path, default=Path("docs/model-quality.md"))
    p.add_argument("--no-ablation", dest="ablation", action="store_false", help="skip the ablation (faster)")
    p.add_argument("--ablation-candidates", type=lambda t: [c for c in t.split(",") if c], default=None,
                   help="candidates the ablation fits (default: [training] candidates), e.g. logit")
    p.add_argument("--final-month-only", action="store_true",
                   help="run only the end month (the ward's first trained month: no champion history); faster")
    p.set_defaults(func=commands.cmd_truth_check)

    p = sub.add_parser("where", help="print where a month's outputs are")
    p.add_argument("--month", type=month, required=True)
    p.set_defaults(func=commands.cmd_where)

    p = sub.add_parser("bench", help="time a synthetic ward's backfill and one incremental month")
    p.add_argument("--residents", type=positive_int, required=True)
    p.add_argument("--wards", type=positive_int, default=1, help="wards of N residents each, run one after another")
    p.add_argument("--engine", choices=["local", "spark"], default="local",
                   help="spark: the wards on Spark too, side by side with the local engine")
    p.add_argument("--master", type=name_text, default="local[2]", help="Spark master for --engine spark")
    p.add_argument("--months", type=positive_int, default=24)
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--dir", type=folder, default=Path("bench/tmp"), help="scratch folder for the ward (not kept)")
    p.add_argument("--results", type=Path, default=Path("bench/results"))
    p.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    p.set_defaults(func=commands.cmd_bench)

    sub.add_parser("scan-pii", help="search the analyst zone for identifiers from the inbox").set_defaults(func=commands.cmd_scan_pii)

    p = sub.add_parser("serve", help="start the local web app (coordinators, auditors, …); this machine only unless --host")
    p.add_argument("--host", type=name_text, help="address to listen on (default: [web] host, 127.0.0.1)")
    p.add_argument("--port", type=port, help="port (default: [web] port, 8080)")
    p.set_defaults(func=commands.cmd_serve)

    p = sub.add_parser("users", help="accounts of the web app (the password is asked for, or read from stdin)")
    p.add_argument("action", choices=["add"])
    p.add_argument("name", type=name_text)
    p.add_argument("--role", required=True, choices=list(ROLES))
    p.add_argument("--approver-id", help="for --role approver: the registered approver identity (`mimamori approver "
                   "list`) whose signed approvals this account gives")
    p.set_defaults(func=commands.cmd_users)
    return parser


# Which zones' locks a command holds while it runs (pipelines/locks.py): commands that write
# (or may rebuild a cached table in) the work dir hold its lock; custody writers hold custody's.
ZONE_LOCKS = {"run": ("work",), "ingest": ("work",), "validate": ("work",), "explain": ("work",),
              "truth-check": ("work",), "scan-pii": ("work",), "rekey": ("work", "custody"),
              # approve and release read the run folder: a `run` rewriting it must not be under way
              "approve": ("work", "custody"), "release": ("work", "custody"), "purge": ("custody",),
              "approver": ("custody",), "outcomes": ("custody",)}   # writes the next delivery into the inbox


def _configs(args: argparse.Namespace) -> list[tuple[str | None, Config]]:
    """(ward, configuration) of each ward the command is for: the one of `--ward` (None: a
    one-ward installation), or, for `run --all-wards`, every ward of `[wards]` in name order."""
    if not getattr(args, "all_wards", False):
        return [(args.ward, load_config(args.config, args.inbox, args.work, args.custody, ward=args.ward))]
    if args.ward or args.inbox or args.work or args.custody:
        raise ValueError(bilingual("--all-wards は --ward・--inbox・--work・--custody と一緒に使えません（区ごとの区域は [wards] で決まります）",
                                   "--all-wards cannot be combined with --ward, --inbox, --work or --custody "
                                   "(each ward's zones come from [wards])"))
    wards = sorted(load_config(args.config).settings.get("wards", {}))
    if not wards:
        raise ValueError(bilingual("--all-wards には mimamori.toml の [wards.<区名>] が要ります",
                                   "--all-wards needs wards configured as [wards.<name>] in mimamori.toml"))
    return [(ward, load_config(args.config, ward=ward)) for ward in wards]


def _zones(args: argparse.Namespace) -> tuple[str, ...]:
    # truth-check --wards locks each ward's own work dir as it runs it, not the configured one
    return () if getattr(args, "wards", False) else ZONE_LOCKS.get(args.command, ())


def _locked(cfg: Config, args: argparse.Namespace) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from contextlib import ExitStack

    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.locks import custody_lock, work_lock

    with ExitStack() as stack:
        for zone in _zones(args):
            lock = work_lock if zone == "work" else custody_lock
            stack.enter_context(lock(cfg, wait=bool(getattr(args, "wait", False))))
        return args.func(cfg, args)


def main(argv: list[str] | None = None) -> int:
    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.ingest import ValidationFailed
    from pipelines.locks import LockHeld
    from pipelines.pseudonymise import KeyProblem
    from pipelines.reading import ContractError
    from pipelines.release import ReleaseRefused
    from contract.storage import DataDamaged, DiskFull, free_space_text, is_disk_full

    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    import os

    # imported per command: the CLI starts fast, and heavy libraries load only where needed
    from pipelines.custody import UMASK, check as check_custody

    os.umask(UMASK)   # custody files 0600 and folders 0700 from creation (and so the rest)
    args = build_parser().parse_args(argv)
    try:
        configs = _configs(args)
    except ValueError as exc:   # an unknown ward, wards sharing a zone, no [wards] for --all-wards
        print(f"mimamori: error: {exc}", file=sys.stderr)
        return 2

    def one(cfg: Config) -> int:
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

    if len(configs) == 1:
        return one(configs[0][1])
    status = 0
    for ward, cfg in configs:   # a ward that fails does not stop the others; the exit code says so
        print(f"== 区 {ward} / ward {ward} ==", flush=True)
        status = max(status, one(cfg))
    return status


if __name__ == "__main__":
    sys.exit(main())
