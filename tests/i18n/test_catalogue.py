"""The message catalogue: complete in every language, placeholders consistent, lookups strict."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mpmmu.i18n import SUPPORTED_LANGUAGES, CatalogueError, catalogue, placeholders, t

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_catalogue_every_key_in_every_language():
    missing = [(key, lang) for key, texts in catalogue().items() for lang in SUPPORTED_LANGUAGES if not texts.get(lang, "").strip()]
    assert missing == []


def test_catalogue_no_unknown_languages():
    unknown = [(key, lang) for key, texts in catalogue().items() for lang in texts if lang not in SUPPORTED_LANGUAGES]
    assert unknown == []


def test_catalogue_placeholders_match_across_languages():
    mismatched = []
    for key, texts in catalogue().items():
        english = placeholders(texts["en"])
        for lang in SUPPORTED_LANGUAGES:
            if placeholders(texts[lang]) != english:
                mismatched.append((key, lang, sorted(placeholders(texts[lang])), sorted(english)))
    assert mismatched == []


def test_catalogue_research_use_statement_both_languages():
    assert t("common.research_use", "en") == "Research use only, not for clinical diagnosis."
    assert "仅供科研使用" in t("common.research_use", "zh-CN")


def test_t_fills_placeholders():
    assert "report.pdf" in t("second_read.bad_file", "en", name="report.pdf", reason="not an image")


def test_t_raises_unknown_key():
    with pytest.raises(CatalogueError, match="not in the catalogue"):
        t("common.no_such_message")


def test_t_raises_unsupported_language():
    with pytest.raises(CatalogueError, match="not supported"):
        t("common.research_use", "fr")


def test_t_raises_missing_placeholder_value():
    with pytest.raises(CatalogueError, match="placeholder"):
        t("second_read.bad_file", "en", name="x.dcm")


def test_catalogue_static_keys_used_in_app_exist():
    # Literal keys in the app's code must resolve; keys built with f-strings are covered by the
    # page tests, which render every branch in both languages.
    pattern = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z_]+)["']""")
    sources = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "pages").glob("*.py")), *sorted((REPO_ROOT / "ui").glob("*.py")), REPO_ROOT / "mpmmu" / "report.py"]
    used = {key for path in sources if path.exists() for key in pattern.findall(path.read_text(encoding="utf-8"))}
    assert used, "no message keys found; the pattern or the paths are wrong"
    assert sorted(used - set(catalogue())) == []


@pytest.mark.parametrize(
    "prefix, names",
    [
        ("common.band_", ("low", "below", "above", "high")),
        ("common.fusion_", ("stacking", "late_fusion", "mammography_only", "ultrasound_only")),
        ("common.report_", ("votes_comparison", "threshold_source")),
        ("model_card.", ("fusion_reason", "bundle_training", "bundle_training_paired")),
        ("common.learner_", ("logistic_regression", "svm", "random_forest", "extra_trees", "meta_mlp")),
        ("common.label_", ("benign", "malignant")),
        ("common.", ("mammography", "ultrasound")),
        ("report.read_", ("initial", "revised")),
        ("report.", ("mammography", "ultrasound")),
        ("second_read.source_", ("upload", "example")),
        ("second_read.example_", ("synthetic", "real")),
        ("second_read.upload_", ("mammography", "ultrasound")),
    ],
)
def test_catalogue_built_keys_exist(prefix, names):
    assert sorted(f"{prefix}{name}" for name in names if f"{prefix}{name}" not in catalogue()) == []
