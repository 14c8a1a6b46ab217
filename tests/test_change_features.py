"""Features of change (features/change.py): each against a plain definition over generated
histories, and point-in-time through the lake (a change after the as-of month is not seen)."""
import numpy as np
import pandas as pd
from hypothesis import given, strategies as st

from contract.months import month_end, shift
from features import change
from features.catalog import CATALOG, describe
from pipelines.catalog import lake
from pipelines.catalog.features import features_from_lake
from contract.storage import write_json, write_parquet

AS_OF = "2026-06"
PIDS = [f"{i:032x}" for i in range(6)]

histories = st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=12), min_size=len(PIDS), max_size=len(PIDS))


@given(histories, st.lists(st.integers(1, 4), min_size=len(PIDS), max_size=len(PIDS)))
def test_household_shrank_when_any_earlier_month_had_more_members(earlier_sizes, now):
    residents = pd.DataFrame({"pid": PIDS, "household_size": now})
    earlier = {}
    for i in range(12):
        month = shift(AS_OF, -(i + 1))
        rows = [(p, sizes[i]) for p, sizes in zip(PIDS, earlier_sizes) if i < len(sizes)]
        earlier[month] = pd.DataFrame(rows, columns=["pid", "household_size"])
    got = change.household_shrank(residents, earlier)
    want = [float(bool(sizes) and max(sizes) > n) for sizes, n in zip(earlier_sizes, now)]
    assert got.tolist() == want


months_ago = st.lists(st.lists(st.integers(0, 40), max_size=5), min_size=len(PIDS), max_size=len(PIDS))


def _events(ago_per_person, column):
    as_of = month_end(AS_OF)
    rows = [(p, (as_of - pd.DateOffset(months=a)).replace(day=1)) for p, agos in zip(PIDS, ago_per_person) for a in agos]
    return pd.DataFrame(rows, columns=["pid", column]).astype({column: "datetime64[us]"})


@given(months_ago)
def test_checkup_lapsed_means_a_checkup_13_to_36_months_ago_and_none_in_the_last_12(agos):
    got = change.checkup_lapsed(_events(agos, "exam_date"), pd.Index(PIDS), month_end(AS_OF))
    want = [float(any(13 <= a <= 36 for a in x) and not any(a < 12 for a in x)) for x in agos]
    assert got.tolist() == want


@given(months_ago)
def test_contact_lapsed_needs_two_earlier_contacts_and_none_in_the_last_12_months(agos):
    got = change.contact_lapsed(_events(agos, "contact_date"), pd.Index(PIDS), month_end(AS_OF))
    want = [float(sum(13 <= a <= 36 for a in x) >= 2 and not any(a < 12 for a in x)) for x in agos]
    assert got.tolist() == want


bills = st.lists(st.lists(st.sampled_from(["paid", "unpaid", "none"]), min_size=18, max_size=18),
                 min_size=len(PIDS), max_size=len(PIDS))


@given(bills)
def test_arrears_onset_is_new_arrears_after_twelve_paid_months(states):
    rows = [(p, shift(AS_OF, -i), 3000, 3000 if s == "paid" else 0)
            for p, person in zip(PIDS, states) for i, s in enumerate(person) if s != "none"]
    frame = pd.DataFrame(rows, columns=["pid", "billing_month", "amount_due", "amount_paid"])
    got = change.arrears_onset(frame, "pid", pd.Index(PIDS), AS_OF)
    # index i = months before as-of: 0-5 the recent half year, 6-17 the paying history
    want = [float("unpaid" in person[:6] and all(s == "paid" for s in person[6:18])) for person in states]
    assert got.tolist() == want


@given(st.lists(st.lists(st.tuples(st.integers(0, 179), st.booleans()), max_size=8), min_size=len(PIDS),
                max_size=len(PIDS)))
def test_garbage_trend_is_the_last_90_days_minus_the_90_before(pickups):
    as_of = month_end(AS_OF)
    rows = [(p, as_of - pd.Timedelta(days=d), "no_response" if missed else "collected")
            for p, person in zip(PIDS, pickups) for d, missed in person]
    frame = pd.DataFrame(rows, columns=["pid", "pickup_date", "result"]).astype({"pickup_date": "datetime64[us]"})
    got = change.garbage_trend(frame, pd.Index(PIDS), as_of)
    want = [float(sum(m and d < 90 for d, m in x) - sum(m and 90 <= d < 180 for d, m in x)) for x in pickups]
    assert got.tolist() == want


@given(st.lists(st.tuples(st.sets(st.integers(1, 12), max_size=4), st.booleans()), min_size=len(PIDS),
                max_size=len(PIDS)))
def test_returned_home_means_away_at_an_earlier_month_end_and_not_now(stays):
    """Each person: the months (1-12 before as-of) whose snapshot shows them away, and away now?"""
    def snapshot(pids):
        return pd.DataFrame({"pid": pids, "reason": "institution", "valid_from": pd.NaT, "valid_to": pd.NaT}
                            ).astype({"valid_from": "datetime64[us]", "valid_to": "datetime64[us]"})
    earlier = {shift(AS_OF, -i): snapshot([p for p, (away, _) in zip(PIDS, stays) if i in away]) for i in range(1, 13)}
    now = snapshot([p for p, (_, here) in zip(PIDS, stays) if here])
    got = change.returned_home(now, earlier, pd.Index(PIDS), month_end(AS_OF))
    assert got.tolist() == [float(bool(away) and not here) for away, here in stays]


def _lake(tmp_path, sizes_by_month):
    root = tmp_path / "lake"
    for month, sizes in sizes_by_month.items():
        residents = pd.DataFrame({"pid": PIDS[:2], "hid": ["c" * 32, "d" * 32], "sex": ["female", "male"],
                                  "district": ["本町", "本町"], "relationship": ["世帯主", "世帯主"],
                                  "age": pd.array([81, 77], dtype="Int64"),
                                  "household_size": pd.array(sizes, dtype="Int64"),
                                  "months_at_address": pd.array([100, 5], dtype="Int64"), "known_on": month_end(month)})
        write_parquet(residents, lake.source_file(root, "residents", month))
        write_json({"month": month, "key_id": "k", "sources": {}}, lake.record_file(root, month))
    return root


def test_a_household_that_shrinks_after_the_as_of_month_is_not_seen_before_it(tmp_path):
    root = _lake(tmp_path, {"2026-04": [2, 2], "2026-05": [2, 2], "2026-06": [1, 2]})
    may = features_from_lake(root, "2026-05").set_index("pid")
    june = features_from_lake(root, "2026-06").set_index("pid")
    assert may["household_shrank_12m"].tolist() == [0.0, 0.0]
    assert june["household_shrank_12m"].tolist() == [1.0, 0.0]
    assert june["moved_12m"].tolist() == [0.0, 1.0]   # 100 and 5 months at the address


def test_every_change_feature_reads_naturally_in_both_languages_for_both_values():
    for name, feature in CATALOG.items():
        if feature.group == "snapshot":
            continue
        for value in (0.0, 1.0, 3.0):
            ja, en = describe(name, value)
            assert ja and en and "nan" not in ja and "{" not in ja + en
        assert describe(name, 1.0) != describe(name, 0.0)
        assert feature.ask_ja and feature.label_ja


def test_the_session_ward_shows_the_changes_the_files_hold(ward):
    """On the synthetic ward, the changes the generator makes happen are found (bereavement
    and children leaving shrink households; checkups, contacts and bills lapse as people drift)."""
    feats = features_from_lake(ward.cfg.lake, ward.month)
    for name in ["household_shrank_12m", "moved_12m", "checkup_lapsed", "contact_lapsed"]:
        assert feats[name].sum() > 0, name
    assert set(np.unique(feats["household_shrank_12m"])) <= {0.0, 1.0}
    # arrears that *start* need 12 paid months before the last 6: a lake of fewer than 18 months
    # cannot show a paying history, and the feature says nothing rather than guessing
    months = len(lake.ingested_months(ward.cfg.lake))
    if months < 18:
        assert feats["care_arrears_onset"].sum() == 0 and feats["nhi_arrears_onset"].sum() == 0
