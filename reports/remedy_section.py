"""§5's remedy for an under-served group: `[fairness] remedy`, and what it does on the holdout.

Whenever the report names a group whose recall lies outside the bounds (reports/fairness_tables.py
`recall_findings`) or a remedy is configured, the section says which remedy the month's list used
and shows the age-band minimum-share remedy's effect on the holdout: the holdout cut at each
district's capacity the way the list cuts it, without and with the remedy (models/fairness.py
`remedy_comparison`, over the same `ranked_slots` the list uses), with precision@k and recall per
age band. With `remedy = "none"` the configured shares are measured all the same, so that the
cost in precision is known before a ward switches the remedy on. Every count and rate goes
through the report's one disclosure pass: the cut's cells are registered here (`register_remedy`)
under populations of their own, beside the holdout's shared ones.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.fairness import WHOLE, remedy_comparison
from models.prioritise import Remedy
from reports.cells import AuditKeys, register_audit
from reports.context import Notice, RemedyView
from reports.disclosure import Cells, Disclosed
from reports.fairness_tables import AGE_EN, group_words, outside
from reports.rankers import RANKER_TITLES

CUTS = ("none", "remedy")
NAME = ("年齢区分ごとの最低割合", "minimum share per age band")


def cut_keys(who: str, cut: str) -> AuditKeys:
    """The populations of one cut of the holdout (`cut`: "none" or "remedy") by ranker `who`."""
    return AuditKeys("holdout", f"cut:{cut}:{who}", "holdout positive", f"cut positive:{cut}:{who}",
                     f"cut labelled:{cut}:{who}", f"cut negative:{cut}:{who}")


@dataclass(frozen=True)
class RemedyInputs:
    """What the section rests on, computed before the disclosure pass (which must see its cells)."""
    remedy: Remedy                           # the age-band remedy with the configured shares
    used: bool                               # this month's list was cut with it
    who: str                                 # the ranker that made the list (its evaluation key)
    comparison: dict[str, list[dict]] | None  # audit rows of each cut; None: nothing to measure on
    named: bool                              # a group's recall is outside the bounds


def remedy_inputs(settings: dict, trained, serving: str, stored: dict) -> RemedyInputs | None:
    """None when there is nothing to say: no remedy configured and no group named."""
    fairness = settings["fairness"]
    bounds = (float(fairness["ratio_bounds"][0]), float(fairness["ratio_bounds"][1]))
    used = Remedy.of(fairness).active
    named = bool(outside((stored or {}).get(serving) or [], bounds))
    if not used and not named:
        return None
    remedy = Remedy.of(fairness, offered=True)
    frame = getattr(trained, "holdout_frame", None)
    districts = ((trained.evaluation or {}).get(serving) or {}).get("districts") or {}
    caps = {d: int(m["k"]) for d, m in districts.items()}
    comparison = None
    if frame is not None and f"score_{serving}" in frame and caps and remedy.active and len(frame):
        comparison = remedy_comparison(frame, frame[f"score_{serving}"].to_numpy(dtype="float64"), caps, remedy,
                                       *bounds, min_labelled=fairness["min_labelled"])
    return RemedyInputs(remedy, used, serving, comparison, named)


def _shown_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["attribute"] in (WHOLE[0], "age_band")]


def register_remedy(cells: Cells, inputs: RemedyInputs | None) -> None:
    """Each cut's whole and age-band rows (people, selected, recall, precision) with their relations."""
    if inputs is None or inputs.comparison is None:
        return
    for cut in CUTS:
        keys, rows = cut_keys(inputs.who, cut), _shown_rows(inputs.comparison[cut])
        register_audit(cells, rows, keys)
        for r in rows:
            cells.rate(keys.key("true_positive", r), keys.key("selected_labelled", r))


def _shares_words(remedy: Remedy) -> tuple[str, str]:
    return ("、".join(f"{band}を{share:.0%}以上" for band, share in remedy.min_share),
            ", ".join(f"at least {share:.0%} {AGE_EN.get(band, band)}" for band, share in remedy.min_share))


def _figures(r: dict, keys: AuditKeys, shown: Disclosed) -> tuple[str, str, str, str]:
    """selected, recall, its ratio to the cut's whole, precision: as the pass shows them."""
    selected = shown.text(keys.key("selected", r))
    if r.get("suppressed"):
        return selected, "—", "—", "—"
    recall = shown.rate_text(keys.key("true_positive", r), keys.key("positive", r))
    ratio = f"×{r['tpr_ratio']:.2f}" if r.get("tpr_ratio") is not None and recall[:1].isdigit() else "—"
    precision = shown.rate_text(keys.key("true_positive", r), keys.key("selected_labelled", r))
    return selected, recall, ratio, precision


def _table(inputs: RemedyInputs, shown: Disclosed) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    header = ("年齢区分 / age band", "最低割合 / minimum share", "掲載 なし→あり / selected without → with",
              "再現率 なし / recall without", "全体比 / × whole", "再現率 あり / recall with", "全体比 / × whole",
              "適合率 なし / precision without", "適合率 あり / precision with")
    shares = dict(inputs.remedy.min_share)
    rows = []
    without = {(r["attribute"], str(r["group"])): r for r in _shown_rows(inputs.comparison["none"])}
    for r in _shown_rows(inputs.comparison["remedy"]):
        before = without[(r["attribute"], str(r["group"]))]
        s0, r0, q0, p0 = _figures(before, cut_keys(inputs.who, "none"), shown)
        s1, r1, q1, p1 = _figures(r, cut_keys(inputs.who, "remedy"), shown)
        ja, en = group_words(r["attribute"], r["group"])
        share = f"{shares[r['group']]:.0%}" if r["group"] in shares else "—"
        rows.append((f"{ja} / {en}" if ja != en else ja, share, f"{s0} → {s1}", r0, q0, r1, q1, p0, p1))
    return header, tuple(rows)


def _cost(inputs: RemedyInputs, shown: Disclosed, who_ja: str, who_en: str) -> dict:
    whole = {cut: inputs.comparison[cut][0] for cut in CUTS}
    keys = {cut: cut_keys(inputs.who, cut) for cut in CUTS}
    precision = {cut: shown.rate_text(keys[cut].key("true_positive", whole[cut]),
                                      keys[cut].key("selected_labelled", whole[cut])) for cut in CUTS}
    recall = {cut: shown.rate_text(keys[cut].key("true_positive", whole[cut]), keys[cut].key("positive", whole[cut]))
              for cut in CUTS}
    points_ja = points_en = ""
    if all(precision[c][:1].isdigit() for c in CUTS):
        # both rates are published with their counts, so their difference discloses nothing more
        rates = [whole[c]["true_positives"] / whole[c]["selected_labelled"] for c in CUTS]
        points_ja = f"（差 {100 * (rates[1] - rates[0]):+.1f}ポイント）"
        points_en = f" ({100 * (rates[1] - rates[0]):+.1f} points)"
    head_ja = f"検証月で{who_ja}の順位を各地区の訪問枠でリストと同じ方法で切ると、"
    head_en = f"On the holdout, {who_en}'s ranking cut at each district's capacity as the list is cut: "
    recall_ja = f"全体の再現率は{recall['none']}から{recall['remedy']}になります。"
    recall_en = f"the whole cohort's recall goes from {recall['none']} to {recall['remedy']}."
    if not any(precision[c][:1].isdigit() for c in CUTS):
        return {"ja": f"{head_ja}適合率（precision@k）は、選ばれた人のうち結果の分かる人が少ないため比べられません"
                      f"（是正策なし {precision['none']}、あり {precision['remedy']}）。{recall_ja}",
                "en": f"{head_en}precision@k cannot be compared, too few of those selected have a known outcome "
                      f"(without the remedy {precision['none']}, with it {precision['remedy']}); {recall_en}"}
    return {"ja": f"{head_ja}適合率（precision@k：結果の分かる人のうち要支援だった割合）は是正策なしで{precision['none']}、"
                  f"是正策ありで{precision['remedy']}です{points_ja}。{recall_ja}",
            "en": f"{head_en}precision@k (people in need among those with a known outcome) is {precision['none']} "
                  f"without the remedy and {precision['remedy']} with it{points_en}; {recall_en}"}


def remedy_section(inputs: RemedyInputs | None, shown: Disclosed) -> RemedyView | None:
    """The remedy's sentences and its table of effect on the holdout (None: nothing to say)."""
    if inputs is None:
        return None
    ja, en = RANKER_TITLES.get(inputs.who, inputs.who).split(" / ", 1)
    shares_ja, shares_en = _shares_words(inputs.remedy)
    said = []
    if inputs.used:
        said.append({"ja": f"今月のリストは是正策「{NAME[0]}」を使っています。各地区の順位で選ぶ枠（探索枠を除く）のうち"
                           f"{shares_ja}とし、足りない区分には、その区分で順位が最も高い掲載可能者を、割合に余裕のある区分の"
                           "最も順位の低い人と入れ替えて入れます（掲載可能者がいる限り）。訪問枠と区分の中の順位は変わりません。",
                     "en": f"This month's list uses the remedy \"{NAME[1]}\": of each district's ranked (non-exploration) "
                           f"slots, {shares_en}; a short band gets its highest-ranked eligible people in place of the "
                           "lowest-ranked people of bands above their minimum, as far as eligible people exist. "
                           "Capacity and the order within each band are unchanged."})
    elif inputs.remedy.active:
        said.append({"ja": f"是正策は設定されていません（[fairness] remedy = \"none\"）。使える是正策は「{NAME[0]}」"
                           f"（[fairness.min_share]：{shares_ja}）で、remedy = \"age_band_min_share\" とすると今月から"
                           "リストに使われます。検証月での効果を下に示します。",
                     "en": f"No remedy is configured ([fairness] remedy = \"none\"). The remedy on offer is \"{NAME[1]}\" "
                           f"([fairness.min_share]: {shares_en}); remedy = \"age_band_min_share\" makes the list use it. "
                           "Its effect on the holdout is below."})
    else:
        said.append({"ja": "是正策は設定されておらず、[fairness.min_share] に年齢区分の最低割合もないため、是正策の効果は示せません。",
                     "en": "No remedy is configured and [fairness.min_share] gives no minimum share per age band, so no "
                           "remedy's effect can be shown."})
    if inputs.comparison is None:
        why = None
        if inputs.remedy.active:
            why = Notice("fairness", "検証月の順位と地区ごとの訪問枠がないため、是正策の効果は測れません。",
                         "No holdout ranking with district capacities, so the remedy's effect cannot be measured.")
        return RemedyView(tuple(said), (), (), why)
    said.append(_cost(inputs, shown, ja, en))
    header, rows = _table(inputs, shown)
    return RemedyView(tuple(said), header, rows, None)
