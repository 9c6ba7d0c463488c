"""Application labels for the flows behind a check's findings, and on the findings.

Only flows behind findings are labelled (a finding's `members`), at most
PER_FINDING of each — those that were answered first, then the earliest: a
scan of 65,535 ports needs a few of its flows looked at, not all — so the
cost grows with the problems reported, not with the capture. Each finding
then carries how many of its labelled flows had each label (`apps`) and the
distinct details they showed (`app_details`: a TLS server name, an HTTP Host,
an SSH banner, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from portmatrix.apps.labels import Labels, label_flows

PER_FINDING = 100  # flows labelled per finding, at most
DETAILS = 5  # distinct details listed per finding


def chosen_flows(result) -> np.ndarray:
    """Indices of the flows to label: up to PER_FINDING of each finding's flows,
    answered ones first, then by time."""
    flows, cls = result.traffic.flows, result.classified
    picked = []
    for f in result.findings:
        if f.members is None or not len(f.members):
            continue
        members = np.asarray(f.members)
        order = np.lexsort((flows["first_ts"][members], ~cls.answered[members]))
        picked.append(members[order[:PER_FINDING]])
    return np.unique(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def label_result(result, paths: list[str], use_tshark: bool = True, on_batch=None) -> Labels:
    """Label the flows behind `result`'s findings from the capture files `paths`,
    put the labels on the findings, and the notices on the result."""
    if notice := unreadable_notice(paths):
        result.notices.append(notice)
        return Labels()
    flows, chosen = result.traffic.flows, chosen_flows(result)
    labels = label_flows(paths, flows, chosen, use_tshark=use_tshark, on_batch=on_batch)
    result.notices.extend(labels.notices)
    attach(result.findings, labels)
    return labels


def unreadable_notice(paths: list[str]) -> str:
    """Why no labels can be made, when an input cannot be read a second time."""
    unreadable = [p for p in paths if p == "-" or not Path(p).is_file()]
    if not unreadable:
        return ""
    return (
        f"no application labels: {unreadable[0]} cannot be read a second time (standard "
        "input or a pipe) to look at the flows' first packets — save the capture to a "
        "file first"
    )


def attach(findings, labels: Labels) -> None:
    """Each finding's label counts and distinct details, from its labelled flows."""
    for finding in findings:
        if finding.members is None:
            continue
        details: list[str] = []
        places = labels.among(finding.members)
        for k in places.tolist():
            text = detail_text(labels.labels[k], labels.details[k])
            if text and text not in details and len(details) < DETAILS:
                details.append(text)
        finding.apps = labels.counted(places)
        finding.app_details = details


def detail_text(label: str, details: dict[str, str]) -> str:
    """ "tls sni=admin.example.com alpn=h2" — "" when there are no details."""
    if not details:
        return ""
    return label + " " + " ".join(f"{k}={v}" for k, v in details.items())
