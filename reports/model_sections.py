"""The report's model sections: the rankers compared on the holdout, their plots and calibration,
and the global SHAP summary of the model that made (or was compared for) the list."""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import CATALOG, EXPLORATION
from models.baselines import BASELINES, describe_points
from models.candidates import kind as model_kind
from models.explain import REFERENCE, grouped, method_text, shap_values, threshold_text
from models.train import TrainResult
from reports import evaluation, plots
from reports.context import Calibration, Evaluation, Figure, Images, MetricRow, ModelTables, Notice, Shap
from reports.cells import OTHER_WORDINGS, at_k_keys, candidate_ranker, listed_reasons, reason_wording_counts, wording_key
from reports.disclosure import Disclosed
from reports.formatting import figure_text
from reports.rankers import RANKER_NAMES, RANKER_TITLES, ranker_title


# Interventional TreeSHAP costs rows × background: the summary's picture is stable well before this.
SHAP_SAMPLE = 1000


def metric_row(name: str, who: str, m: dict, shown: Disclosed, used: bool = False,
               district: str | None = None) -> MetricRow:
    """One ranker's figures at k: counts and rates as the disclosure pass shows them (the cells
    of reports/cells.py `at_k_keys`); precision and recall as rates with their 95% Wilson interval."""
    keys = {ties: at_k_keys(who, district, ties) for ties in ("", "worst", "best")}
    main = keys[""]
    ties = " – ".join(shown.rate_text(keys[t]["positive"], keys[t]["labelled"], interval=False)
                      for t in ("worst", "best"))
    return MetricRow(name=name, used=used, k=m.get("k"), labelled=shown.text(main["labelled"]),
                     positives=shown.text(main["positive"]),
                     precision=shown.rate_text(main["positive"], main["labelled"]),
                     recall=shown.rate_text(main["positive"], main["positives_total"]), precision_ties=ties,
                     roc_auc=figure_text(m.get("roc_auc")), average_precision=figure_text(m.get("average_precision")),
                     brier=figure_text(m.get("brier")))


def evaluation_section(settings: dict, trained, shown: Disclosed) -> tuple[Evaluation, object, Images, Calibration,
                                                                           ModelTables]:
    """(evaluation, holdout, plots, calibration, extra tables) for the model-vs-baselines section.

    Each part that cannot be computed this month is None (or empty) with a Notice saying why."""
    threshold = shown.threshold
    serving = evaluation.serving_ranker(trained)
    order = ["model", "champion", *BASELINES]
    rows = tuple(metric_row(ranker_title(who, trained), who, trained.evaluation[who], shown, who == serving)
                 for who in order if who in trained.evaluation)
    candidates = tuple(metric_row(ranker_title(name, trained) + (" ✦" if name == trained.challenger else ""),
                                  candidate_ranker(name, trained.challenger), m, shown)
                       for name, m in sorted(getattr(trained, "candidates", {}).items()))
    districts = []
    for who in dict.fromkeys([serving, "alone_75"]):
        for district, m in sorted(((trained.evaluation.get(who) or {}).get("districts") or {}).items()):
            districts.append(metric_row(f"{district}: {RANKER_TITLES.get(who, who)}", who, m, shown,
                                        district=district))
    held = evaluation.holdout(trained) if trained.evaluation else None
    timespan = settings["labels"]["timespan_days"]
    labelled = int(held.frame["label"].notna().sum()) if held is not None else 0
    no_holdout = None if held is not None else Notice(
        "model", f"学習用と検証用の両方の月について訪問結果を待つ期間（{timespan}日）が"
        "まだ過ぎていないため、検証月がなく、モデルとルールの比較はできません。",
        f"No holdout month yet (the {timespan}-day label windows of a training month and "
        "a later holdout month have not both closed), so the rankers cannot be compared.")
    no_precision = None
    if held is not None and labelled == 0:
        no_precision = Notice("model", "検証用の訪問結果がまだないため、精度は計算できません。",
                              "No holdout labels yet, so precision cannot be measured.")
    elif held is not None and not any((m.get("labelled_in_top_k") or 0) for m in trained.evaluation.values()):
        no_precision = Notice("model", "上位k人の中に訪問結果のある人がいないため、上位k人の適合率は計算できません。",
                              "Nobody in any ranker's top k has a known outcome, so precision@k cannot be measured.")

    if getattr(trained, "split_plot", None):
        splits = Figure(plots.data_uri(trained.split_plot))
    else:
        splits = Figure(None, Notice("model", "今月はモデルを学習していないため、学習・較正・検証の期間の図はありません。",
                                     "No model was trained this month, so there is no plot of the training, "
                                     "calibration and holdout windows."))
    calibration = Calibration((), None)
    if held is None:
        pr_at_k = Figure(None, Notice("model", "検証結果がないため、上位k人の適合率・再現率の曲線はありません。",
                                      "No holdout evaluation, so there are no precision and recall curves at k."))
    elif labelled < threshold:
        pr_at_k = Figure(None, Notice(
            "model", f"検証月に訪問結果のある人が{threshold}人未満のため、上位k人の適合率・再現率の曲線は描けません（少数の秘匿）。",
            f"Fewer than {threshold} holdout people have a known outcome, so the precision and recall curves "
            "cannot be drawn (small cells are not shown)."))
    else:
        curves = evaluation.curves(held, threshold)
        names = RANKER_NAMES | {"model": f"challenger ({trained.challenger})",
                                           "champion": f"champion v{trained.champion_version}"}
        pr_at_k = Figure(plots.data_uri(plots.precision_recall_at_k(curves, held.k, names)))
    if held is None or "model" not in held.rankers:
        calibration_figure = Figure(None, Notice(
            "model", "今月はモデルを検証していないため、較正図はありません。",
            "No model was evaluated on the holdout this month, so there is no calibration plot."))
    else:
        bins, brier = evaluation.calibration_bins(held, threshold)
        calibration = Calibration(tuple(b | {"observed_text": shown.rate_text(("holdout positive", "calibration bin", str(i)),
                                                                              ("holdout labelled", "calibration bin", str(i))),
                                             "n_text": shown.text(("holdout labelled", "calibration bin", str(i)))}
                                        for i, b in enumerate(bins)), brier)
        calibration_figure = Figure(plots.data_uri(plots.calibration(bins, brier))) if bins else Figure(None, Notice(
            "model", f"検証月に訪問結果のある人が{threshold}人未満のため、較正図は描けません（少数の秘匿）。",
            f"Fewer than {threshold} holdout people have a known outcome, so there is no calibration plot "
            "(small cells are not shown)."))
    extra = ModelTables(candidates=candidates, districts=tuple(districts),
                        points=tuple(describe_points(settings["baselines"])),
                        points_min=settings["baselines"]["points_min"])
    return (Evaluation(rows if held is not None else (), no_holdout, no_precision), held,
            Images(splits, pr_at_k, calibration_figure), calibration, extra)


def explaining_model(trained: TrainResult):
    """The model whose SHAP summary is shown: the serving model, else the month's registered
    (compared but not promoted) version, else None."""
    if trained.model is not None:
        return trained.model, True
    if not trained.model_version or trained.challenger_model is None:
        return None, False
    return trained.challenger_model, False


def reason_wordings(listed: pd.DataFrame, shown: Disclosed) -> tuple[dict, ...]:
    """The list's reasons as worded, identical wordings collapsed into one row with their count
    ("×n"), most frequent first. Exploration picks are one row (their count is the cohort table's).
    A wording shared by fewer than the small-cell threshold of people would describe them too
    closely, so those are pooled into one row of "other wordings" (wordings counted, not shown).
    Every count is the disclosure pass's cell (reports/cells.py `register_wordings`)."""
    if not len(listed):
        return ()
    threshold = shown.threshold
    common, rare, picked = reason_wording_counts(listed, threshold)
    rows = [{"ja": r.reasons, "en": r.reasons_en, "people": f"×{shown.text(wording_key(r.reasons))}"}
            for r in common.itertuples()]
    if len(rare):
        rows.append({"ja": f"その他の文言（{len(rare)}通り、いずれも{threshold}人未満のため文言は非表示）",
                     "en": f"other wordings ({len(rare)}, each shared by fewer than {threshold} people, not shown)",
                     "people": f"×{shown.text(OTHER_WORDINGS)}"})
    if picked:
        rows.append({"ja": EXPLORATION[0], "en": EXPLORATION[1],
                     "people": f"×{shown.text(('listed', 'exploration', 'random'))}"})
    return tuple(rows)


def shap_section(trained: TrainResult, eligible: pd.DataFrame, listed: pd.DataFrame, shown: Disclosed) -> Shap:
    reason_counts = listed_reasons(listed)
    reasons = [{"feature": n, "label": f"{CATALOG[n].label_ja} / {CATALOG[n].label_en}",
                "listed": shown.text(("listed", "reason", n))}
               for n in reason_counts.sort_values(ascending=False, kind="stable").index]
    wordings = reason_wordings(listed, shown)
    model, serving = explaining_model(trained)
    if model is None or not len(eligible):
        why = (Notice("reasons", "今月はモデルがないため、SHAP の全体像はありません（理由はルールの条件です）。",
                      "No model this month, so no SHAP summary (the reasons are the rule's criteria).")
               if model is None else
               Notice("reasons", "掲載可能な住民がいないため、SHAP の全体像はありません。",
                      "Nobody is eligible this month, so there is no SHAP summary."))
        return Shap(reasons=tuple(reasons), image=None, serving=False, version=trained.model_version, rows=(),
                    base=None, n=None, why_not=why, wordings=wordings, rule=threshold_text())
    sample = eligible.sort_values("pid", kind="stable")
    if len(sample) > SHAP_SAMPLE:
        sample = sample.sample(SHAP_SAMPLE, random_state=0).sort_values("pid", kind="stable")
    # against the same reference as every listed person's reasons: the whole eligible cohort
    values, base, _ = shap_values(model, sample, eligible)
    group_names, contrib = grouped(values)
    data = sample[group_names].to_numpy(dtype="float64")
    labels = [plots.text(CATALOG[n].label_ja, CATALOG[n].label_en) for n in group_names]
    title = plots.text("SHAP 寄与の全体像", "Global SHAP summary") + \
        f" — {len(sample)} eligible residents, model v{trained.model_version}" + ("" if serving else " (not serving)")
    rows = tuple({"label": f"{CATALOG[n].label_ja} / {CATALOG[n].label_en}",
                  "mean_abs": float(np.abs(contrib[:, j]).mean()),
                  "share_raising": float((contrib[:, j] > 0).mean())}
                 for j, n in sorted(enumerate(group_names), key=lambda t: -np.abs(contrib[:, t[0]]).mean()))
    return Shap(reasons=tuple(reasons), image=plots.data_uri(plots.shap_summary(contrib, data, labels, title)),
                serving=serving, version=trained.model_version, rows=rows, base=float(base), n=len(sample),
                why_not=None, wordings=wordings, method=method_text(model_kind(model)), rule=threshold_text(),
                reference=(f"{REFERENCE[0]}{len(eligible):,}人", f"{REFERENCE[1]} ({len(eligible):,} people)"))
