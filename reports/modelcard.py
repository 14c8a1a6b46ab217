"""Model card per registered model version, following the UK Algorithmic Transparency Recording
Standard (ATRS v3.0): Tier 1 overview, then Tier 2 owner and responsibility, description and
rationale, decision-making process, tool and model specification, data specification, risks and
mitigations. Written as Markdown and HTML from one structure, into
`<work>/model_cards/v<version>/`, and logged to the version's MLflow run under `model_card/`.

The card holds aggregates only (through disclosure control) and no personal data. Ward-specific
fields (organisation, contacts, legal basis) come from the `[model_card]` table of the ward's
mimamori.toml when present; the defaults below say what to fill in.

A card is a record of one version: it is written once, when the version is registered, from
that version's own training record (`registration_record`), never from a later month's report,
and is never rewritten (pipelines/training.py keeps it and checks its SHA-256 against the
version's MLflow tag). What changes month by month (serving status, this month's fairness and
SHAP summary) is in each month's report, not in the card.
"""
from __future__ import annotations

import html
from types import SimpleNamespace

from features.catalog import AGE_TOP, CATALOG, FLAGGED
from models.baselines import BASELINES
from models.candidates import CANDIDATES
from models.explain import method_text, threshold_text
from contract.sources import SOURCES
from reports.label_policy import bias_text, task_text
from reports.cells import candidate_ranker, holdout_audit_keys, register_holdout, register_labels
from reports.disclosure import Cells, Disclosed, disclose, total
from reports.fairness_tables import audit_table, flat_rows
from reports.model_sections import metric_row
from reports.rankers import RANKER_TITLES, ranker_title

TO_FILL = "（区が記入 / to be filled in by the ward）"
CARD_DEFAULTS = {
    "organisation": TO_FILL,
    "team": TO_FILL,
    "senior_responsible_owner": TO_FILL,
    "contact_email": TO_FILL,
    "website": TO_FILL,
    "legal_basis": ("個人情報保護法第69条第2項第2号（行政機関等の内部利用・相当の理由）、社会福祉法第106条の6（支援会議） / "
                    "APPI Art. 69(2)(ii) (internal use with good reason) and Social Welfare Act Art. 106-6 (support "
                    "meetings); the release of named sheets needs two approvers who record the basis"),
}

Table = tuple[list[str], list[list[str]]]


def _settings(settings: dict) -> dict:
    return CARD_DEFAULTS | dict(settings.get("model_card", {}) or {})


def registration_record(result, month: str, version: str, run_id: str, tags: dict[str, str]) -> dict:
    """What the card of a newly registered version is written from: that version's own training
    record (TrainResult.record of the month it was registered in), with its number, run and
    provenance. The registered version is the month's challenger, whoever serves."""
    return result.record() | {"model_version": version, "mlflow_run_id": run_id, "trained_month": month,
                              "promoted": result.serving == "challenger",
                              "config_hash": tags.get("config_hash", "—"), "code_version": tags.get("code_version", "—")} | (
        {"ward": tags["ward"], "registered_model": tags["registered_model"]} if "ward" in tags else {})


def version_description(record: dict, card_sha256: str) -> str:
    """The MLflow description of a registered version: what its card says in one paragraph."""
    labels = record.get("label_counts") or {}
    months = list(record.get("train_months") or []) + ([record["holdout_month"]] if record.get("holdout_month") else [])
    return (f"Trained in batch {record['trained_month']}: {record.get('challenger')} "
            f"({CANDIDATES.get(record.get('challenger') or '', ('', '?'))[1]}), calibration {record.get('calibration') or '—'}; "
            f"evaluated on as-of months {', '.join(record.get('train_months') or []) or '—'} "
            f"({labels.get('train_labelled', '—')} labelled rows, {labels.get('train_positive', '—')} positive), "
            f"holdout {record.get('holdout_month') or '—'}; refitted on {', '.join(months) or '—'}. "
            f"{'Promoted' if record['promoted'] else 'Not promoted'} on {record.get('criterion') or '—'}: "
            f"{record.get('reason', '')}. Model card: model_card/model_card.html (SHA-256 {card_sha256}).")


def card_disclosure(record: dict, threshold: int) -> Disclosed:
    """The card's own disclosure pass over the holdout cells its tables show (the same cells, under
    the same identities, as the report of the month the version was registered in)."""
    cells = Cells()
    register_holdout(cells, record.get("evaluation") or {}, record.get("candidates") or {}, record.get("challenger"),
                     record.get("fairness") or {})
    register_labels(cells, record.get("label_counts") or {})
    return disclose(cells, threshold)


def _scale(settings: dict, record: dict, shown: Disclosed) -> str:
    """ATRS 2.3.3 (scale), from the version's own holdout month where it has one. k is the
    holdout month's visiting capacity, set before anyone is ranked (public)."""
    share = settings["capacity"]["share_of_residents"]
    labels, model = record.get("label_counts") or {}, (record.get("evaluation") or {}).get("model") or {}
    if "holdout_cohort" not in labels or "k" not in model:
        return f"Monthly; about {share:.1%} of residents listed per month (the ward's visiting capacity)."
    return (f"Monthly. In this version's holdout month ({record.get('holdout_month')}) "
            f"{shown.text(total('holdout'))} residents aged {settings['prioritise']['min_age']}+ were ranked and "
            f"{model['k']} would be listed at capacity (about {share:.1%} of residents per month).")


def _label_coverage(record: dict, shown: Disclosed) -> str:
    """ATRS 2.4.3 (completeness) of the labels: how few of the ranked people have a known outcome."""
    if "holdout_cohort" not in (record.get("label_counts") or {}):
        return ""
    return (f"Labels are selective: in the holdout month {shown.rate_text(total('holdout labels'), total('holdout'))} "
            "of the ranked residents had a known outcome (95% Wilson interval; known outcomes / ranked).")


def card_sections(settings: dict, record: dict) -> list[tuple[str, list[tuple[str, str | Table]]]]:
    """The card's content: [(section title, [(field, text or (header, rows))])], from the
    version's registration record only."""
    s = _settings(settings)
    t = settings["training"]
    share = float(settings.get("prioritise", {}).get("exploration_share", 0) or 0)
    threshold = settings["report"]["small_cell"]
    bounds = (float(settings["fairness"]["ratio_bounds"][0]), float(settings["fairness"]["ratio_bounds"][1]))
    min_labelled = settings["fairness"]["min_labelled"]
    version, month = record["model_version"], record["trained_month"]
    names = SimpleNamespace(challenger=record.get("challenger"), champion_version=record.get("champion_version"))
    features: Table = (["feature", "名称 / label", "source", "window", "imputation"],
                       [[name, f"{f.label_ja} / {f.label_en}", f.source, f.window,
                         f.imputation + (f" (flag `{name}_imp`: {f.imputed_en})" if name in FLAGGED else "")]
                        for name, f in CATALOG.items()])
    evaluation = record.get("evaluation") or {}
    shown = card_disclosure(record, threshold)
    rankers = [who for who in ["model", "champion", *BASELINES] if who in evaluation]
    rows = [metric_row(ranker_title(who, names), who, evaluation[who], shown) for who in rankers]
    rows += [metric_row(ranker_title(who, names), candidate_ranker(who, record.get("challenger")), m, shown)
             for who, m in sorted((record.get("candidates") or {}).items())]
    performance: Table = (["ranker", "k", "precision@k (ties worst – best)", "ROC AUC", "average precision", "Brier"],
                          [[r.name, str(r.k), r.precision_ties, r.roc_auc, r.average_precision, r.brier]
                           for r in rows])
    sources: Table = (["source", "名称", "kind", "required"],
                      [[n, src.title_ja, src.kind, "yes" if src.required else "no"] for n, src in SOURCES.items()])
    kind = record.get("challenger") or "hgb"
    explanation = method_text(kind)[1]
    words = {"precision_at_k": "precision@k", "average_precision": "average precision"}.get(record.get("criterion"),
                                                                                            record.get("criterion"))
    status = (f"promoted to champion when registered (batch {month}): {record['reason']}" if record["promoted"] else
              f"registered but not promoted (batch {month}): {record['reason']}")
    train_months = list(record.get("train_months") or [])
    holdout = record.get("holdout_month")

    def said(key) -> str:
        return shown.text(key) if key in shown.cells.values else "—"

    architecture = {
        "hgb": f"declared imputer → HistGradientBoostingClassifier(max_iter={t['max_iter']}, learning_rate="
               f"{t['learning_rate']}, max_leaf_nodes={t['max_leaf_nodes']}, min_samples_leaf={t['min_samples_leaf']}, "
               f"l2_regularization=1.0, no early stopping, seed {t['seed']})",
        "logit": f"declared imputer → StandardScaler → LogisticRegression(C={t['logit_c']}, lbfgs, seed {t['seed']})",
    }.get(kind, kind)
    calibration = record.get("calibration") or "—"
    return [
        ("Metadata", [
            ("Standard", "UK Algorithmic Transparency Recording Standard (ATRS) v3.0 fields"),
            ("Model", f"{record.get('registered_model', 'mimamori-risk')} version {version} (MLflow run {record.get('mlflow_run_id') or '—'})"),
            ("Batch month it was trained in", month),
            ("Candidate kind", f"{kind}: {CANDIDATES.get(kind, (kind, kind))[1]}"),
            ("Status at registration", status),
            ("Promotion criterion", f"{words} on the holdout"),
            ("This card", "written once when the version was registered and never rewritten; whether the "
             "version serves a later month is in that month's report and in MLflow (alias `champion`)"),
            ("Config hash / code", f"{record.get('config_hash', '—')} / git {record.get('code_version', '—')}"),
        ]),
        ("Tier 1 — Overview / 概要", [
            ("Name", "mimamori（見守り）孤立リスクの訪問優先リスト / isolation-risk outreach priority list"),
            ("Description",
             "毎月、区の業務データ（住民記録、健診、介護保険料、国保料、要介護認定、訪問収集、見守り・相談記録、訪問結果）から、"
             "社会的孤立に向かっている可能性のある高齢の住民を推定し、地区ごとの訪問枠に合わせた優先リストを作ります。"
             " Each month the ward's administrative records are used to estimate which older residents may be "
             "drifting into social isolation; the result is a priority list per district, sized to visiting capacity, "
             "with plain-language reasons for each person."),
            ("How and why", "The list helps 保健師 and 民生委員 visit first those most likely to need support, "
             "instead of visiting by age and household type alone (today's rule). It informs; a person decides."),
            ("Purpose and legal basis", s["legal_basis"]),
            ("Find out more / contact", f"{s['website']}; {s['contact_email']}"),
        ]),
        ("Tier 2 — Owner and responsibility", [
            ("Organisation", s["organisation"]),
            ("Team", s["team"]),
            ("Senior responsible owner", s["senior_responsible_owner"]),
            ("External supplier", "None: open-source code run by the ward (mimamori, MIT licence)"),
            ("Contact", s["contact_email"]),
        ]),
        ("Tier 2 — Description and rationale", [
            ("Detailed description", f"A {CANDIDATES.get(kind, (kind, kind))[1]} classifier (scikit-learn) scores every "
             "resident on point-in-time features; eligible people (aged "
             f"{settings['prioritise']['min_age']}+, not excluded, not visited in "
             f"{settings['prioritise']['recent_visit_days']} days) are ranked and each district's list is cut at its "
             f"capacity. Each listed person gets up to three risk-raising reasons ({explanation})."
             + (f" A share of {share:.0%} of each list is drawn at random from the eligible rest (exploration picks, "
                "marked on sheets, carrying 「無作為抽出（探索枠）」 instead of reasons, and kept out of precision "
                "claims), so that future labels do not only describe people a rule or model already ranks high."
                if share else "")),
            ("Scope", "Outreach prioritisation only. Not for eligibility, benefits, enforcement or any decision "
             "about a person without a visit; not for people under the minimum age."),
            ("Benefit", "More visits to people who turn out to need support, at the same visiting capacity."),
            ("Previous process and alternatives",
             "Today's rules are kept as baselines and compared every month on the holdout: "
             + "; ".join(f"{b.title_ja} / {b.title_en}" for b in BASELINES.values())
             + ". Each month both candidates (gradient-boosted trees, logistic regression) are fitted; the better "
             "is the challenger and replaces the champion only if it beats the champion and the best rule on "
             "holdout precision@k (average precision while too few visited people are in the top k) without adding "
             "a fairness flag. If no model beats the best rule, the rule makes the list."),
        ]),
        ("Tier 2 — Decision-making process / human oversight", [
            ("Process integration", "Monthly batch → pseudonymous list → two approvers (named, with a legal basis) "
             "→ release of named visiting sheets to the coordinator → visits → outcomes returned and imported."),
            ("Information provided", "Visitors see whom to visit, the reasons in plain Japanese and what to ask; "
             "民生委員 sheets carry no score. The coordinator and nurses see the rank and a rank band (「上位0.5%」: the "
             "share of the month's eligible cohort scoring at least as high), never the raw score."),
            ("Human decisions and review", "The list informs, a person decides: visitors and the coordinator may skip, "
             "add or reorder visits; outcomes (要支援・問題なし・不在・拒否) are recorded by people and become labels."),
            ("Frequency and scale", _scale(settings, record, shown)),
            ("Appeals and objections", "A resident who objects (申出) is put on the exclusions extract and is never "
             "listed; residents can request disclosure of their identified records as usual."),
            ("Required training", "Coordinators and visitors: what the reasons mean and do not mean (a reason is "
             "a statistical signal, not a finding about the person)."),
        ]),
        ("Tier 2 — Tool and model specification", [
            ("Model task", task_text(settings["labels"])),
            ("Model architecture", f"{architecture}; numeric features only. The imputer fills what is still "
             "missing as the feature catalogue declares (training-split median or 0, fitted on the training split "
             "and saved with the model); every imputed feature has a no-record flag. Probability calibration: "
             f"{calibration}. Sex and district are not features (they are audited, not used)."),
            ("Model input (features)", features),
            ("Model output", f"A score used to rank (0–1; a probability only when calibrated; calibration: "
             f"{calibration}). People are shown a rank band among the eligible cohort instead. Reasons: {explanation}, "
             "on the log-odds before any calibration (calibration is monotone, so order and reasons agree)."),
            ("Explanations: reference and threshold", f"Contributions are taken against the month's eligible cohort "
             f"(the people the list is chosen from), not the training labels: {method_text(kind)[1]}. "
             f"Σ contributions + base value = the model's log-odds, checked for every listed person; the base value "
             f"is the reference's expected log-odds. Reasons: {threshold_text()[1]}. / {method_text(kind)[0]}。"
             f"{threshold_text()[0]}。"),
            ("Training window", f"evaluated on as-of months {', '.join(train_months) or '—'} (calibration: "
             f"{', '.join(record.get('calibration_months') or []) or '—'}), holdout as-of month {holdout or '—'}; "
             f"the registered version is refitted on {', '.join(train_months + ([holdout] if holdout else []))} "
             f"({len(train_months) + (1 if holdout else 0)} months)."),
            ("Labels", f"training months: {said(total('training labels'))} labelled rows "
             f"({said(('training labels', 'label', 'positive'))} positive); holdout: {said(total('holdout labels'))} "
             f"({said(('holdout labels', 'label', 'positive'))} positive); the registered version's refit: "
             f"{said(total('refit labels'))} ({said(('refit labels', 'label', 'positive'))} positive)"),
            ("Performance on the holdout (at capacity k)", performance),
            ("Most influential features", "see the SHAP summary of each month's report (it depends on the month scored)"),
        ]),
        ("Tier 2 — Data specification", [
            ("Source data", sources),
            ("Data description", "Pseudonymised (keyed HMAC) monthly extracts; only derived fields (age in years, "
             "household size, months at address) and event dates; no names, addresses or 宛名番号 in the analyst zone."),
            ("Labels and their bias", bias_text(settings["labels"])),
            ("Sensitive attributes", "Age is a feature; sex and district are not, and are used to audit the list."),
            ("Completeness and representativeness", "Only residents known to ward services appear in the source data; "
             "people who use no service look alike (many `_imp` flags). " + _label_coverage(record, shown)
             + " Validation results are in each month's report."),
            ("Data access and storage", "Analyst zone: pseudonyms only; custody zone: key, approvals, named sheets, "
             "audit log. Named sheets expire and are purged."),
        ]),
        ("Tier 2 — Risks, mitigations and impact", [
            *[(f"Fairness audit at training (holdout at k, ratios to the whole cohort): {RANKER_TITLES.get(who, who)}",
               flat_rows(audit_table(RANKER_TITLES.get(who, who), rows, shown, holdout_audit_keys(who), bounds,
                                     min_labelled, True)))
              for who, rows in sorted((record.get("fairness") or {}).items())],
            ("New fairness flags at registration", ", ".join(record.get("new_fairness_flags") or []) or "none"),
            ("Fairness of a month's list", "in that month's report"),
            ("Limitations", "Selective labels (above); small numbers of labelled people make holdout metrics noisy; "
             "the model cannot see isolation that leaves no administrative trace; drift in source systems changes "
             "features (monitored monthly, PSI > 0.2 flagged)."),
            ("Risks and mitigations", "Profiling: sex and district are excluded as features and every reason is a "
             "catalogue phrase about the person's own records. Stigma: visitors get reasons and questions, not a score. "
             "Privacy: pseudonymisation, two approvers, audit log, small-cell suppression (counts under "
             f"{threshold}), ages top-coded at {AGE_TOP}. Automation bias: the list informs and a person decides."),
            ("Impact assessment", TO_FILL),
        ]),
    ]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections) -> str:
    out = [f"# {title}", ""]
    for section, fields in sections:
        out += [f"## {section}", ""]
        for name, value in fields:
            if isinstance(value, tuple):
                header, rows = value
                out += [f"**{name}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                out.append("")
            else:
                out += [f"- **{name}:** {value}"]
        out.append("")
    return "\n".join(out)


def to_html(title: str, sections) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='ja'><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font-family:'Noto Sans JP','Hiragino Sans','Yu Gothic','IPAPGothic',sans-serif;max-width:1000px;"
             "margin:2em auto;padding:0 1em;line-height:1.55;color:#222}h1{border-bottom:3px solid #2a6f97}"
             "h2{color:#2a6f97;border-bottom:1px solid #cfe0ea;margin-top:1.8em}dt{font-weight:bold;margin-top:.6em}"
             "dd{margin-left:1.2em}table{border-collapse:collapse;font-size:.9em;margin:.4em 0}"
             "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#eef4f8}"
             "</style></head><body>", f"<h1>{e(title)}</h1>"]
    for section, fields in sections:
        parts.append(f"<h2>{e(section)}</h2><dl>")
        for name, value in fields:
            parts.append(f"<dt>{e(name)}</dt><dd>")
            if isinstance(value, tuple):
                header, rows = value
                parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows]
                parts.append("</table>")
            else:
                parts.append(e(str(value)))
            parts.append("</dd>")
        parts.append("</dl>")
    parts.append("</body></html>")
    return "".join(parts)


def model_card_documents(settings: dict, record: dict) -> tuple[str, str, str]:
    """(title, Markdown, HTML) of the card of one registered version, from its registration record."""
    title = f"Model card: {record.get('registered_model', 'mimamori-risk')} v{record['model_version']} (trained in batch {record['trained_month']})"
    sections = card_sections(settings, record)
    return title, to_markdown(title, sections), to_html(title, sections)
