import json

from pipelines import audit


def _log(tmp_path):
    path = tmp_path / "audit.jsonl"
    for i in range(4):
        audit.append(path, "approve", month="2026-10", approver=f"A{i}")
    return path


def test_intact_chain_verifies(tmp_path):
    assert audit.verify(_log(tmp_path)) == []


def test_edited_entry_is_detected(tmp_path):
    path = _log(tmp_path)
    lines = path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["approver"] = "someone else"
    lines[1] = json.dumps(entry, ensure_ascii=False, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    assert any("line 3" in p for p in audit.verify(path))


def test_deleted_and_reordered_entries_are_detected(tmp_path):
    path = _log(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    assert audit.verify(path)
    path.write_text("\n".join([lines[0], lines[2], lines[1], lines[3]]) + "\n")
    assert audit.verify(path)
