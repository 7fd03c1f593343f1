"""Verdicts a user can trust: uncalibrated reports say so, calibrated ones state their error rates,
and `tafa verify --report` writes a self-contained HTML evidence file."""

from __future__ import annotations

import base64
import hashlib
import json
from html.parser import HTMLParser

import pytest
from test_cli import tafa_cli

import tafa_tf as tafa
from tafa_tf import evidence, judge, piracy
from tafa_tf.cli import _common as c


class _Page(HTMLParser):
    """Collects section ids, image sources and every external reference of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("href", "src"):
            if key in a and not str(a[key]).startswith("data:"):
                self.external.append(a[key])
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def calibrated(owner, fp, trained):
    innocent = trained("digits_mlp", seed=1)
    positives = [piracy.quantize(owner, "float16"), piracy.quantize(owner, "int8"), piracy.add_noise(owner, 0.01)]
    negatives = [innocent, piracy.add_noise(innocent, 0.05, seed=1), piracy.quantize(innocent, "int8")]
    cal = tafa.calibrate(fp, positives, negatives, target_fpr=0.05, cv=2)
    return fp.with_calibration(cal)


def test_an_uncalibrated_report_says_so_and_never_states_error_rates(fp, owner, trained):
    report = tafa.verify(fp, piracy.quantize(owner, "float16"))
    assert report.pirated is True and not report.calibrated
    assert "uncalibrated" in str(report)
    assert report.p_value is None and report.fpr is None and report.fpr_upper is None
    assert report.clear_threshold < report.threshold and report.references
    d = report.to_dict()
    assert d["calibrated"] is False and d["p_value"] is None and "references" in d
    innocent = tafa.verify(fp, trained("digits_mlp", seed=1))
    assert innocent.pirated is not True and innocent.score < innocent.threshold


def test_an_uncalibrated_score_in_the_band_gives_no_verdict_and_exit_code_5(fp):
    from tafa_tf.cli.verify import exit_code_for
    from tafa_tf.verification import compute_features, default_score

    score_of = lambda a: default_score(compute_features(fp, a)[0])  # noqa: E731
    band = judge.decide(fp, 0.5, score_of=score_of)
    middle = (band["clear_threshold"] + band["threshold"]) / 2
    decision = judge.decide(fp, middle, score_of=score_of)
    assert decision["pirated"] is None and "tafa calibrate" in decision["warnings"][0]
    assert exit_code_for(decision["pirated"]) == c.EXIT_NO_VERDICT == 5
    assert judge.decide(fp, band["threshold"], score_of=score_of)["pirated"] is True
    assert judge.decide(fp, band["clear_threshold"] - 1e-9, score_of=score_of)["pirated"] is False


def test_a_calibrated_report_states_fpr_bound_p_value_and_counts(calibrated, owner):
    report = tafa.verify(calibrated, piracy.quantize(owner, "float16"))
    assert report.calibrated and report.n_positives == 3 and report.n_negatives == 3
    assert 1 / 4 <= report.p_value <= 1  # the smallest p-value 3 innocent references can give is 1/4
    flagged = round(report.fpr * 3)
    assert report.fpr == pytest.approx(flagged / 3)
    assert report.fpr_upper == pytest.approx(judge.clopper_pearson_upper(flagged, 3))
    d = report.to_dict()
    for key in ("p_value", "fpr", "fpr_upper", "n_positives", "n_negatives"):
        assert d[key] == getattr(report, key)
    assert "calibrated" in str(report) and "p-value" in str(report) and "uncalibrated" not in str(report)


def test_what_the_error_rates_need_travels_in_the_tafa_file(calibrated, owner, tmp_path):
    calibrated.save(tmp_path / "owner.tafa")
    again = tafa.Fingerprint.load(tmp_path / "owner.tafa")
    suspect = piracy.quantize(owner, "float16")
    a, b = tafa.verify(calibrated, suspect), tafa.verify(again, suspect)
    assert (a.p_value, a.fpr, a.fpr_upper, a.n_negatives) == (b.p_value, b.fpr, b.fpr_upper, b.n_negatives)
    cal = again.calibration
    assert cal.cv_features_.shape == (6, len(cal.feature_names_))


def test_an_uncalibrated_evidence_page_has_every_section_and_says_uncalibrated(fp, owner):
    report = tafa.verify(fp, piracy.quantize(owner, "float16"))
    page = _parse(evidence.render(fp, report, suspect_ref="f16.keras", command="tafa verify fp f16.keras"))
    assert page.sections == list(evidence.SECTIONS)
    assert len(page.images) == 2 and not page.external  # scores and features; no ROC without a calibration
    assert "uncalibrated" in " ".join(page.text)


def test_verify_writes_a_self_contained_html_evidence_report(calibrated, owner, tmp_path):
    fp_path, suspect, html_path = tmp_path / "owner.tafa", tmp_path / "f16.keras", tmp_path / "evidence.html"
    calibrated.save(fp_path)
    piracy.quantize(owner, "float16").save(suspect)
    proc = tafa_cli("verify", str(fp_path), str(suspect), "--report", str(html_path), "--json")
    assert proc.returncode == c.EXIT_PIRATED, proc.stderr
    out = json.loads(proc.stdout)
    assert out["report"]["p_value"] is not None and out["evidence"] == str(html_path)

    text = html_path.read_text(encoding="utf-8")
    page = _parse(text)
    assert page.sections == list(evidence.SECTIONS)
    assert not page.external, page.external  # nothing fetched from anywhere
    assert len(page.images) == 3  # scores, features, ROC
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    words = " ".join(page.text)
    assert hashlib.sha256(fp_path.read_bytes()).hexdigest() in words
    assert hashlib.sha256(suspect.read_bytes()).hexdigest() in words
    assert tafa.__version__ in words and "verify" in words and str(suspect) in words
    assert "p-value" in words and "Clopper-Pearson" in words and "PIRATED" in words
