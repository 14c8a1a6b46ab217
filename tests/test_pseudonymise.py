import hashlib
import hmac
import os
import stat

import pandas as pd
import pytest

from pipelines.pseudonymise import KeyProblem, create_key, key_id, load_key, pseudonymise


def test_pseudonym_is_hmac_sha256_of_the_id_under_the_key(tmp_path):
    create_key(tmp_path / "k")
    key = load_key(tmp_path / "k")
    ids = pd.Series(["0012345678", "0099999999", "0012345678"])
    pids = pseudonymise(ids, key, "resident")
    expected = hmac.new(key, b"resident:0012345678", hashlib.sha256).hexdigest()[:32]
    assert pids[0] == expected and pids[2] == expected
    assert pids[1] != expected
    # households live in their own pseudonym space
    assert pseudonymise(ids, key, "household")[0] != expected


def test_another_key_gives_unlinkable_pseudonyms(tmp_path):
    create_key(tmp_path / "a")
    create_key(tmp_path / "b")
    ids = pd.Series(["0012345678"])
    assert pseudonymise(ids, load_key(tmp_path / "a"), "resident")[0] != \
        pseudonymise(ids, load_key(tmp_path / "b"), "resident")[0]
    assert key_id(load_key(tmp_path / "a")) != key_id(load_key(tmp_path / "b"))


def test_keygen_writes_mode_0600_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "custody" / "key" / "hmac.key"
    create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(KeyProblem, match="refusing to overwrite"):
        create_key(path)
    assert path.read_bytes() == before
    assert len(load_key(path)) == 32


def test_missing_key_fails_clearly(tmp_path):
    with pytest.raises(KeyProblem, match="mimamori keygen"):
        load_key(tmp_path / "nope")
