"""The custody zone's file modes: only its owner may read what it holds.

The zone holds the key, approvals, the audit log and the released sheets of identified people;
the CLI sets umask 077 so everything it creates is 0600/0700, the writers here create their
folders 0700 and files 0600 whatever the umask, and every command that uses the zone first
checks that nothing in it has become readable by group or others.
"""
from __future__ import annotations

import os
from pathlib import Path

from contract.messages import bilingual
from pipelines.pseudonymise import KeyProblem

UMASK = 0o077


class CustodyOpen(KeyProblem):
    """A custody folder or file is readable by group or others (or the zone is not a folder)."""


def _not_a_folder(path: Path) -> str:
    return bilingual(f"{path} はフォルダーではなくファイルです。移動するか、別の保管区域を指定してください",
                     f"{path} is a file, not a folder: move it away or choose another custody zone")


def private_dir(path: Path) -> Path:
    """Create a custody folder and any missing parents with mode 0700, whatever the umask."""
    if path.exists() and not path.is_dir():
        raise CustodyOpen(_not_a_folder(path))
    missing = []
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise CustodyOpen(_not_a_folder(parent))
            break
        missing.append(parent)
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Make an already written custody file owner-only (for writers that take a path, e.g. openpyxl)."""
    os.chmod(path, 0o600)
    return path


def check(custody: Path) -> None:
    """Refuse a custody zone that is a file, or that holds anything readable by group or others."""
    if not custody.exists():
        return
    if not custody.is_dir():
        raise CustodyOpen(bilingual(f"保管区域 {custody} がフォルダーではなくファイルです。移動するか --custody で別の場所を指定してください",
                                    f"the custody zone {custody} is a file, not a folder: move it away or set --custody"))
    loose: list[tuple[Path, int]] = []
    for root, dirs, files in os.walk(custody):
        for name in [root, *(os.path.join(root, f) for f in files)]:
            try:
                mode = os.lstat(name).st_mode & 0o777
            except FileNotFoundError:   # removed while we looked (a temp file)
                continue
            if mode & 0o077:
                loose.append((Path(name), mode))
    if loose:
        path, mode = loose[0]
        kind = "folder" if path.is_dir() else "file"
        more = f" and {len(loose) - 1} more" if len(loose) > 1 else ""
        kind_ja = "フォルダー" if kind == "folder" else "ファイル"
        more_ja = f"ほか {len(loose) - 1} 件" if len(loose) > 1 else ""
        raise CustodyOpen(bilingual(
            f"保管区域の{kind_ja} {path}{more_ja}の権限が {mode:04o} で、グループや他の利用者が読めます。"
            f"`chmod -R go-rwx {custody}`（フォルダー 0700、ファイル 0600）を実行し、誰が読んだかを確認してください",
            f"the custody {kind} {path} has mode {mode:04o}{more}, readable by group or others: "
            f"`chmod -R go-rwx {custody}` (folders 0700, files 0600), and check who has read it"))
