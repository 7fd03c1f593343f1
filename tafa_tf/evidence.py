"""Evidence a person can read: one self-contained HTML file per verification.

``tafa verify owner.tafa suspect --report evidence.html`` writes it. Everything is in
the one file (plots are PNG images embedded as base64, no script, no style sheet or
font from the network), so it can be archived, mailed or printed as it is:

- the verdict, the score, the threshold(s), and the error rates behind them (measured
  false-positive rate with its 95% upper bound, p-value, reference counts) or, without
  a calibration, the word "uncalibrated" and what that means;
- the suspect's score against the innocent and pirated reference scores;
- the suspect's features against the references' features;
- the calibration's ROC curve (cross-validated over the reference models);
- the fingerprint's identity (sha256 of the .tafa file, creation date, points, domain);
- the suspect's identity (path or hf:// reference, commit, file sha256);
- the library version and the command that produced it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import io
import os
import platform
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SECTIONS = ("verdict", "scores", "features", "roc", "fingerprint", "suspect", "provenance")
"""The id of every <section> of the report, in order."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- plots


def _figure(width: float = 6.0, height: float = 3.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # headless: never touches pyplot's global state
    return fig


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def draw_roc(ax: Any, labels: np.ndarray, scores: np.ndarray, *, auc: float, target_fpr: float) -> None:
    """The ROC curve of cross-validated reference scores on ``ax``, with the target FPR marked."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    ax.plot(fpr, tpr, drawstyle="steps-post", lw=2, label=f"TAFA, cross-validated (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="chance")
    ax.axvline(target_fpr, ls="--", color="tab:red", lw=1, label=f"target FPR {target_fpr:g}")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false-positive rate (innocent models flagged)")
    ax.set_ylabel("true-positive rate (pirated models caught)")
    ax.legend(loc="lower right", fontsize=8)


def _strip(ax: Any, rows: Sequence[tuple[str, np.ndarray, str]], suspect: float | None, lines: dict[str, float]) -> None:
    rng = np.random.default_rng(0)
    for i, (name, values, color) in enumerate(rows):
        v = np.asarray(values, dtype="float64")
        ax.scatter(v, i + rng.uniform(-0.15, 0.15, len(v)), s=18, color=color, alpha=0.7, label=f"{name} ({len(v)})")
    if suspect is not None and np.isfinite(suspect):
        ax.axvline(suspect, color="black", lw=2, label=f"suspect {suspect:.3f}")
    for (name, x), style in zip(lines.items(), ("--", ":", "-.")):
        ax.axvline(x, color="tab:red", ls=style, lw=1, label=f"{name} {x:.3f}")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("score")
    ax.legend(loc="upper left", fontsize=7, bbox_to_anchor=(1.01, 1.0))


def scores_plot(report: Any, calibration: Any) -> str:
    fig = _figure(7.0, 2.6)
    ax = fig.add_subplot()
    if calibration is not None and len(getattr(calibration, "cv_labels_", ())) > 0:
        labels, scores = calibration.cv_labels_, calibration.cv_scores_
        rows = [("innocent references", scores[labels == 0], "tab:green"),
                ("pirated references", scores[labels == 1], "tab:orange")]
        _strip(ax, rows, report.score, {"threshold": report.threshold})
        ax.set_title("suspect's calibrated score against the references' (cross-validated) scores", fontsize=9)
    else:
        refs = getattr(report, "references", None) or {}
        rows = [("data-free references", np.array(list(refs.values())), "tab:green")]
        lines = {"clear under": report.clear_threshold, "accuse from": report.threshold} \
            if getattr(report, "clear_threshold", None) is not None else {"threshold": report.threshold}
        _strip(ax, rows, report.score, lines)
        ax.set_title("uncalibrated: suspect's score against the data-free references", fontsize=9)
    ax.set_xlim(-0.02, 1.02)
    return _png(fig)


def features_plot(report: Any, calibration: Any) -> str:
    from tafa_tf.verification import DEFAULT_SCORE_FEATURE, default_score

    ref_names = list(getattr(calibration, "feature_names_", []) or [])
    features = dict(report.features)
    if DEFAULT_SCORE_FEATURE in ref_names and features:  # a calibration on the uncalibrated score
        features[DEFAULT_SCORE_FEATURE] = default_score(features)
    names = sorted(features)
    fig = _figure(7.0, 0.45 * max(len(names), 2) + 1.2)
    ax = fig.add_subplot()
    matrix = getattr(calibration, "cv_features_", None) if calibration is not None else None
    matrix = matrix if matrix is not None and len(matrix) else None
    labels = getattr(calibration, "cv_labels_", None) if calibration is not None else None
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        if matrix is not None and name in ref_names:
            col = matrix[:, ref_names.index(name)]
            for lab, color, text in ((0, "tab:green", "innocent references"), (1, "tab:orange", "pirated references")):
                v = col[labels == lab]
                ax.scatter(v, i + rng.uniform(-0.15, 0.15, len(v)), s=14, color=color, alpha=0.6,
                           label=text if i == 0 else None)
        ax.scatter([features[name]], [i], marker="D", s=50, color="black", label="suspect" if i == 0 else None)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("feature value")
    ax.set_title("the suspect's verification features" + (" against the references'" if matrix is not None else ""),
                 fontsize=9)
    if names:
        ax.legend(loc="upper left", fontsize=7, bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def roc_plot(calibration: Any) -> str | None:
    labels = getattr(calibration, "cv_labels_", None) if calibration is not None else None
    if labels is None or len(set(np.asarray(labels).tolist())) < 2:
        return None
    fig = _figure(4.5, 4.5)
    ax = fig.add_subplot()
    draw_roc(ax, labels, calibration.cv_scores_, auc=calibration.auc, target_fpr=calibration.target_fpr)
    ax.set_title(f"calibration: {int(labels.sum())} pirated vs {int((labels == 0).sum())} innocent references",
                 fontsize=9)
    return _png(fig)


# --------------------------------------------------------------------------- html


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _img(b64: str | None, alt: str) -> str:
    if b64 is None:
        return f"<p>{html.escape(alt)}: not available.</p>"
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _verdict_rows(report: Any) -> list[tuple[str, Any]]:
    word = report.verdict if report.calibrated else f"{report.verdict} (uncalibrated)"
    rows: list[tuple[str, Any]] = [("verdict", word),
                                   ("score", report.score), ("regime", "calibrated" if report.calibrated else "uncalibrated")]
    if report.calibrated:
        rows += [("threshold", report.threshold), ("measured FPR of the threshold (innocent references)", report.fpr),
                 ("95% upper bound of that FPR (Clopper-Pearson)", report.fpr_upper),
                 ("p-value against the innocent references", report.p_value),
                 ("innocent references", report.n_negatives), ("pirated references", report.n_positives)]
    else:
        rows += [("cleared under", getattr(report, "clear_threshold", None)), ("accused from", report.threshold),
                 ("note", "uncalibrated: no error rate can be stated; calibrate with `tafa calibrate`")]
    return rows + [("status", report.status), ("mode", report.mode), ("queries", report.queries)]


def _fingerprint_rows(fp: Any, fingerprint_path: str | None) -> list[tuple[str, Any]]:
    return [
        ("file", fingerprint_path), ("sha256", file_sha256(fingerprint_path) if fingerprint_path else None),
        ("created", getattr(fp, "created", None)), ("task", fp.task), ("points", fp.n_points),
        ("queries", 3 * fp.n_points), ("domain", fp.domain.to_dict() if fp.domain is not None else None),
        ("owner model", (fp.owner or {}).get("sha256") or (fp.owner or {}).get("digest")),
        ("public base given", getattr(fp, "yb", None) is not None),
    ]


def _suspect_rows(report: Any, suspect_ref: str | None) -> list[tuple[str, Any]]:
    src = dict(report.source or {})
    files = src.get("files") or []
    rows: list[tuple[str, Any]] = [("reference", suspect_ref or src.get("source") or src.get("name")),
                                   ("format", src.get("format")), ("commit sha", src.get("commit_sha"))]
    rows += [(f"file {f.get('path', i)} sha256", f.get("sha256")) for i, f in enumerate(files)]
    if suspect_ref and not files and os.path.isfile(suspect_ref):
        rows.append(("file sha256", file_sha256(suspect_ref)))
    return rows


def render(fp: Any, report: Any, *, fingerprint_path: str | None = None, suspect_ref: str | None = None,
           command: Sequence[str] | str | None = None) -> str:
    """The evidence report as one HTML string (see the module docstring)."""
    import tafa_tf

    cal = fp.calibration if report.calibrated else None
    cmd = command if isinstance(command, str) or command is None else " ".join(command)
    body = [
        ("verdict", "Verdict", _table(_verdict_rows(report)) + "".join(
            f"<p class=warning>{html.escape(w)}</p>" for w in report.warnings)),
        ("scores", "Score against the references", _img(scores_plot(report, cal), "scores")),
        ("features", "Features against the references", _img(features_plot(report, cal), "features")
         + _table(sorted(report.features.items()))),
        ("roc", "Calibration ROC", _img(roc_plot(cal), "ROC curve of the calibration")
         if cal is not None else "<p>uncalibrated: no calibration, no ROC curve.</p>"),
        ("fingerprint", "Fingerprint", _table(_fingerprint_rows(fp, fingerprint_path))),
        ("suspect", "Suspect", _table(_suspect_rows(report, suspect_ref))),
        ("provenance", "Provenance", _table([
            ("tafa-tf version", tafa_tf.__version__), ("command", cmd), ("python", platform.python_version()),
            ("written", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))])),
    ]
    sections = "\n".join(f'<section id="{sid}"><h2>{html.escape(title)}</h2>{content}</section>'
                          for sid, title, content in body)
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}img{max-width:100%}"
             ".warning{color:#a60}")
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>tafa evidence</title>"
            f"<style>{style}</style></head><body><h1>tafa-tf verification evidence</h1>\n{sections}\n</body></html>\n")


def write_html(path: str | os.PathLike[str], fp: Any, report: Any, **kwargs: Any) -> Path:
    """Write :func:`render`'s report to ``path`` atomically; return the path."""
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(fp, report, **kwargs)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


__all__ = ["SECTIONS", "draw_roc", "file_sha256", "render", "write_html"]
