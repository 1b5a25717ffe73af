"""Message catalogue for every user-facing string of the app, in English and Simplified Chinese.

Messages live in TOML files under ``messages/``, one file per section (``common.toml``,
``second_read.toml``, ``model_card.toml``, ...), so that each page's owner edits only their own
file. A key is ``<section>.<name>``: the table ``[verdict_band]`` in ``second_read.toml`` is
``second_read.verdict_band``. Each table contains one string per language code::

    [verdict_band]
    en = "Probability {percent}"
    zh-CN = "概率 {percent}"

Placeholders use :meth:`str.format` syntax and must be the same in every language.
"""

from __future__ import annotations

import logging
import string
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from mpmmu.errors import MpmmuError

logger = logging.getLogger(__name__)

#: Language codes and the name each language calls itself, in the order the switch shows them.
SUPPORTED_LANGUAGES: dict[str, str] = {"en": "English", "zh-CN": "简体中文"}
DEFAULT_LANGUAGE = "en"
MESSAGES_DIR = Path(__file__).resolve().parent / "messages"


class CatalogueError(MpmmuError):
    """A message file is malformed, or a key or language is not in the catalogue."""


def _load_section(path: Path) -> dict[str, dict[str, str]]:
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"message file {path.name} is not valid TOML: {error}") from error

    section = path.stem
    messages: dict[str, dict[str, str]] = {}
    for name, translations in raw.items():
        if not isinstance(translations, dict):
            raise CatalogueError(
                f"{path.name}: entry {name!r} must be a table of language = text, got {type(translations).__name__}"
            )
        messages[f"{section}.{name}"] = {str(lang): str(text) for lang, text in translations.items()}
    return messages


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """Load every message file once and return ``{key: {language: text}}``.

    Raises
    ------
    CatalogueError
        When a file is not valid TOML or an entry is not a table.
    """
    messages: dict[str, dict[str, str]] = {}
    for path in sorted(MESSAGES_DIR.glob("*.toml")):
        messages.update(_load_section(path))
    logger.debug("loaded %d messages from %s", len(messages), MESSAGES_DIR)
    return messages


def placeholders(text: str) -> set[str]:
    """Return the names of the ``{placeholder}`` fields in ``text``."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def t(key: str, lang: str = DEFAULT_LANGUAGE, **kwargs: Any) -> str:
    """Return the message ``key`` in language ``lang`` with ``kwargs`` filled in.

    A message missing in ``lang`` falls back to English with a logged warning, so a half-finished
    translation never breaks a page. The catalogue test keeps both languages complete.

    Parameters
    ----------
    key : str
        ``<section>.<name>``, for example ``"common.research_use"``.
    lang : str
        A code from :data:`SUPPORTED_LANGUAGES`.
    **kwargs
        Values for the message's placeholders.

    Raises
    ------
    CatalogueError
        When ``key`` is not in the catalogue, ``lang`` is not supported, or a placeholder has no
        value.
    """
    if lang not in SUPPORTED_LANGUAGES:
        raise CatalogueError(f"language {lang!r} is not supported; use one of {sorted(SUPPORTED_LANGUAGES)}")
    translations = catalogue().get(key)
    if translations is None:
        raise CatalogueError(f"message key {key!r} is not in the catalogue; add it to {MESSAGES_DIR}/<section>.toml")

    text = translations.get(lang)
    if text is None:
        logger.warning("message %r has no %s text; showing English", key, lang)
        text = translations[DEFAULT_LANGUAGE]
    try:
        return text.format(**kwargs)
    except KeyError as error:
        raise CatalogueError(f"message {key!r} needs a value for placeholder {error}") from error
