"""The redesign's proof that it is the same program: the golden run's digests are unchanged.

tests/golden.py explains what is hashed and masked. When an output is *meant* to change,
re-record with `python -m tests.golden record` and say why in the commit message.
"""
from __future__ import annotations

import json
import shutil

from conftest import _shared
from tests.golden import GOLDEN, golden_digests


def test_the_golden_run_writes_the_same_files_with_the_same_bytes(messy_ward, tmp_path, tmp_path_factory):
    root = tmp_path / "golden"
    shutil.copytree(messy_ward.root, root, symlinks=True)
    got = golden_digests(root, built_at=_shared(tmp_path_factory) / "messy")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    changed = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    assert not (missing or extra or changed), f"missing {missing[:10]}, unexpected {extra[:10]}, changed {changed[:20]}"
