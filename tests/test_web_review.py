"""Review before release and the two-person rule in the app: the coordinator keeps, skips and
adds people; the submitted review is what approvers see and sign with their own registered
identities (a key file per approver, one approval per identity); the release applies exactly
that review; a change after an approval voids it."""
from __future__ import annotations

import html
import re
import shutil
from urllib.parse import quote

import pytest

from contract.storage import read_parquet
from pipelines import audit
from pipelines.catalog import runs
from pipelines.config import load_config
from pipelines.pseudonymise import load_key, pseudonymise
from pipelines.reading import delivery_file, read_source
from pipelines.release import approvals, distinct_approvers, released_sheet
from pipelines.review import review_file, submitted_review
from contract.sources import SOURCES
from pipelines.web.decisions import link_approver
from tests.approving import key_file, registered_approver
from tests.webapp import Clock, app_for, cheap_hashes, csrf_of, logged_in

USERS = {"kato": "coordinator", "sato": "approver", "suzuki": "approver", "tanaka": "approver", "aoki": "auditor"}
LINKS = {"sato": "A", "suzuki": "B"}   # tanaka's account is not linked to an identity


@pytest.fixture
def site(ward, tmp_path, monkeypatch):
    root = tmp_path / "ward"
    shutil.copytree(ward.root, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    shutil.rmtree(cfg.releases_dir / ward.month, ignore_errors=True)   # the session ward may be released
    (cfg.approvals_dir / f"{ward.month}.jsonl").unlink(missing_ok=True)
    cheap_hashes(monkeypatch)
    app = app_for(cfg, Clock(), USERS)
    with app.state.sessions() as db:
        for name, ident in LINKS.items():
            registered_approver(cfg, ident)
            link_approver(db, name, ident)
    registered_approver(cfg, "C")
    return cfg, ward.month, app


def _district_url(month: str, district: str) -> str:
    return f"/coord/months/{month}/districts/{quote(district)}"


def _post(client, page_url: str, action: str, **data):
    token = csrf_of(client.get(page_url).text)
    return client.post(action, data={"csrf": token, **data})


def _approve(client, month: str, key: bytes, basis: str = "社会福祉法第106条の6（支援会議）"):
    token = csrf_of(client.get(f"/approver/months/{month}").text)
    return client.post(f"/approver/months/{month}/approve",
                       data={"csrf": token, "basis": basis, "basis_other": "", "purpose": "見守り訪問（孤立の予防）"},
                       files={"key_file": ("mine.key", key, "application/octet-stream")})


def _unlisted_resident(cfg, month: str, district: str) -> tuple[str, str]:
    """(宛名番号, pid) of a resident of `district` who is not on the month's list."""
    residents = read_source(delivery_file(cfg.inbox / month, "residents"), SOURCES["residents"],
                            delivery_month=month).rows
    residents = residents.assign(pid=pseudonymise(residents["resident_id"], load_key(cfg.key_file), "resident"))
    features = read_parquet(runs.features_file(cfg, month), columns=["pid", "district"])
    listed = set(read_parquet(runs.list_file(cfg, month), columns=["pid"])["pid"])
    here = set(features.loc[features["district"] == district, "pid"]) - listed
    row = residents[residents["pid"].isin(here)].sort_values("resident_id").iloc[0]
    return str(row["resident_id"]), str(row["pid"])


def test_review_is_signed_by_two_identities_and_the_release_applies_it(site):
    cfg, month, app = site
    listed = read_parquet(runs.list_file(cfg, month)).sort_values("rank")
    district = listed["district"].value_counts().sort_index().idxmax()
    mine = listed[listed["district"] == district]
    skip, keep = mine["pid"].iloc[0], mine["pid"].iloc[1]
    number, added = _unlisted_resident(cfg, month, district)
    coordinator = logged_in(app, "kato")
    page = _district_url(month, district)

    fresh = coordinator.get(f"/coord/months/{month}").text   # nothing decided yet: nothing unsubmitted
    assert "提出していない見直しがあります" not in fresh and "変更なしで提出" in fresh

    # skipping needs a reason; adding checks the number and the district
    refused = _post(coordinator, page, page + "/decisions", pid=skip, decision="skip", reason="")
    assert refused.status_code == 200 and "理由を入力してください" in refused.text
    assert _post(coordinator, page, page + "/decisions", pid=skip, decision="skip", reason="入院中と家族から連絡").status_code == 303
    assert _post(coordinator, page, page + "/decisions", pid=keep, decision="keep", reason="").status_code == 303
    for bad, why in (("12a4", "数字で"), ("0999999999999", "住民記録にいません")):
        response = _post(coordinator, page, page + "/additions", resident_id=bad, reason="近所から相談")
        assert why in response.text
    other = sorted(set(listed["district"]) - {district})[0]
    number_elsewhere, _ = _unlisted_resident(cfg, month, other)
    assert "この地区の住民ではありません" in _post(coordinator, page, page + "/additions",
                                                 resident_id=number_elsewhere, reason="近所から相談").text
    assert _post(coordinator, page, page + "/additions", resident_id=number, reason="近所から相談（新聞がたまっている）").status_code == 303
    shown = coordinator.get(page).text
    assert added[:12] in shown and "近所から相談" in shown and number not in shown

    # nothing is signed until the coordinator submits; the snapshot holds pseudonyms only
    months = f"/coord/months/{month}"
    assert "提出していない見直しがあります" in coordinator.get(months).text
    assert _post(coordinator, months, months + "/review").status_code == 303
    review = submitted_review(cfg, month)
    assert review.skips == ((skip, "入院中と家族から連絡"),) and review.adds == ((added, district, "近所から相談（新聞がたまっている）"),)
    assert number not in review_file(cfg, month).read_text() and number not in cfg.audit_log.read_text()

    # approvers see the review, sign with their own key, once each
    sato, suzuki, tanaka = (logged_in(app, n) for n in ("sato", "suzuki", "tanaka"))
    seen = sato.get(f"/approver/months/{month}").text
    assert "入院中と家族から連絡" in seen and "近所から相談" in seen and skip[:12] in seen
    assert "公開の承認とリリース" in sato.get("/").text
    wrong = _approve(sato, month, key_file(cfg, "B").read_bytes())
    assert "承認者 A の鍵ではありません" in wrong.text and not approvals(cfg, month)
    assert _approve(tanaka, month, key_file(cfg, "C").read_bytes()).status_code == 403   # not an identity
    assert _approve(sato, month, key_file(cfg, "A").read_bytes()).status_code == 303
    again = _approve(sato, month, key_file(cfg, "A").read_bytes())
    assert "既に承認しています" in again.text
    assert [a["approver_id"] for a in approvals(cfg, month)] == ["A"]
    assert all(a["review_sha256"] == review.digest() for a in approvals(cfg, month))

    # a change to the review after an approval voids it
    assert _post(coordinator, page, page + "/decisions", pid=keep, decision="skip", reason="転居の予定").status_code == 303
    assert _post(coordinator, months, months + "/review").status_code == 303
    assert not approvals(cfg, month)
    assert "the coordinator's review changed since it" in html.unescape(sato.get(f"/approver/months/{month}").text)
    assert _post(coordinator, page, page + "/decisions", pid=keep, decision="keep", reason="").status_code == 303
    app.state.clock.advance(minutes=5)   # a later submission of the first review's decisions: a new snapshot
    assert _post(coordinator, months, months + "/review").status_code == 303
    assert not approvals(cfg, month)

    refused_release = _post(sato, f"/approver/months/{month}", f"/approver/months/{month}/release", recipient="coordinator")
    assert released_sheet(cfg, month) is None and "公開する" not in refused_release.text
    assert _approve(sato, month, key_file(cfg, "A").read_bytes()).status_code == 303
    assert _approve(suzuki, month, key_file(cfg, "B").read_bytes()).status_code == 303
    assert [p["id"] for p in distinct_approvers(approvals(cfg, month))] == ["A", "B"]
    done = _post(sato, f"/approver/months/{month}", f"/approver/months/{month}/release", recipient="coordinator")
    assert "公開しました" in done.text

    info, sheet = released_sheet(cfg, month)
    assert info["review"] == {"sha256": submitted_review(cfg, month).digest(), "submitted_by": "kato",
                              "skipped": 1, "added": 1}
    assert number in set(sheet["resident_id"]) and len(sheet) == len(listed)   # one out, one in
    ranks = set(sheet["rank"].astype(int))
    assert int(listed.loc[listed["pid"] == skip, "rank"].iloc[0]) not in ranks and int(listed["rank"].max()) + 1 in ranks
    logged = [e for e in audit.entries(cfg.audit_log) if e["event"] in ("release", "web_approve", "review_submit")]
    assert [e["event"] for e in logged][-1] == "release" and logged[-1]["account"] == "sato"
    assert not audit.verify(cfg.audit_log) and number not in cfg.audit_log.read_text()

    # after the release the district page names the added person and takes their visit
    after = coordinator.get(page).text
    name = sheet.loc[sheet["resident_id"] == number, "name"].iloc[0]
    assert name in after and "（追加）" in after and "担当者による追加：近所から相談" in after
    assert _post(coordinator, page, page + "/decisions", pid=keep, decision="skip", reason="x").status_code == 409
    assert _post(coordinator, page, page + "/visits", pid=added, visit_date="2026-11-05",
                 outcome="needs_support").status_code == 303


def test_visitors_are_assigned_and_the_print_view_fits_a4(site):
    cfg, month, app = site
    listed = read_parquet(runs.list_file(cfg, month)).sort_values("rank")
    district = listed["district"].iloc[0]
    pid = listed["pid"].iloc[0]
    coordinator = logged_in(app, "kato")
    page = _district_url(month, district)
    assert _post(coordinator, page, page + "/visitors", pid=pid, visitor="保健師 山田").status_code == 303
    assert "保健師 山田" in coordinator.get(page).text
    printed = coordinator.get(page + "/print").text
    assert "size: A4 landscape" in printed and "保健師 山田" in printed and "font-size: 10.5pt" in printed
    widths = [float(w) for w in re.findall(r'<col style="width:(\d+)mm">', printed)]
    assert sum(widths) < 277   # the fixed columns leave the reasons column room on the page
    assert printed.count("<tr>") == 1 + int((listed["district"] == district).sum())
    refused = _post(coordinator, page, page + "/visitors", pid=pid, visitor="x" * 201)
    assert "200 文字以内" in refused.text
    assert _post(coordinator, page, page + "/visitors", pid=pid, visitor="").status_code == 303
    assert "保健師 山田" not in coordinator.get(page).text
