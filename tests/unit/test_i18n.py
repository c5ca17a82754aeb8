"""Every user-visible string in the sources is translated, in Vietnamese and in English."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from server.i18n import LOCALES, Translator, locale_var, negotiate

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "web" / "locale"
SOURCE_DIRS = ("web", "server", "clinics", "classrooms")
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}
MIN_VI_TRANSLATED = 0.8


def extracted_msgids() -> dict[str, str]:
    """msgid -> 'dir/file:line' of its first use, for every message babel finds in the sources."""
    found: dict[str, str] = {}
    for directory in SOURCE_DIRS:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / directory, method_map=METHOD_MAP, keywords=KEYWORDS
        ):
            msgids = message if isinstance(message, tuple) else (message,)
            for msgid in msgids:
                if msgid:
                    found.setdefault(msgid, f"{directory}/{filename}:{lineno}")
    return found


def catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def translation(cat: Catalog, msgid: str) -> str:
    """The msgstr for ``msgid`` ('' if absent, empty or fuzzy); plural messages by their singular."""
    message = cat.get(msgid)
    if message is None:
        for candidate in cat:
            if isinstance(candidate.id, tuple) and candidate.id[0] == msgid:
                message = candidate
                break
    if message is None or message.fuzzy:
        return ""
    string = message.string
    if isinstance(string, tuple):
        return string[0] if all(string) else ""
    return string or ""


@pytest.fixture(scope="module")
def msgids() -> dict[str, str]:
    return extracted_msgids()


def test_extraction_finds_the_known_messages(msgids: dict[str, str]) -> None:
    """The extractor sees both Python (web/pages.py) and template strings, so the checks below bite."""
    assert "Wrong e-mail or password." in msgids
    assert "Log in" in msgids
    assert msgids["Wrong e-mail or password."].startswith("web/pages.py:")
    assert len(msgids) >= 20


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(msgids: dict[str, str], locale: str) -> None:
    cat = catalog(locale)
    missing = [f"{where}: {msgid!r}" for msgid, where in sorted(msgids.items(), key=lambda kv: kv[1])
               if not translation(cat, msgid).strip()]
    assert not missing, f"untranslated in {locale}/messages.po:\n  " + "\n  ".join(missing)


def test_vietnamese_is_a_translation_not_a_copy(msgids: dict[str, str]) -> None:
    cat = catalog("vi")
    same = sorted(msgid for msgid in msgids if translation(cat, msgid) == msgid)
    translated = len(msgids) - len(same)
    assert translated >= MIN_VI_TRANSLATED * len(msgids), (
        f"only {translated}/{len(msgids)} Vietnamese strings differ from English; identical: {same}")


def test_catalog_headers_name_their_language() -> None:
    for locale in LOCALES:
        assert str(catalog(locale).locale) == locale


@pytest.fixture
def translator() -> Translator:
    loaded = Translator()
    loaded.load(LOCALE_DIR)
    return loaded


@pytest.fixture
def fresh_context() -> Iterator[contextvars.Context]:
    """A copy of the current context, so that setting locale_var does not leak between tests."""
    yield contextvars.copy_context()


def in_locale(context: contextvars.Context, locale: str, translator: Translator, message: str) -> str:
    def run() -> str:
        locale_var.set(locale)
        return translator.gettext(message)

    return context.run(run)


def test_translator_translates_log_in(translator: Translator, fresh_context: contextvars.Context) -> None:
    assert in_locale(fresh_context, "vi", translator, "Log in") == "Đăng nhập"
    assert in_locale(fresh_context, "en", translator, "Log in") == "Log in"


def test_translator_follows_the_context_variable(translator: Translator) -> None:
    """Two concurrent requests in different contexts each get their own language."""
    vi = contextvars.copy_context()
    en = contextvars.copy_context()
    vi.run(locale_var.set, "vi")
    en.run(locale_var.set, "en")
    assert vi.run(translator.gettext, "Log out") != en.run(translator.gettext, "Log out")
    assert en.run(translator.gettext, "Log out") == "Log out"


def test_default_locale_is_vietnamese(translator: Translator) -> None:
    assert contextvars.Context().run(translator.gettext, "Log in") == "Đăng nhập"


def test_unknown_message_falls_back_to_the_msgid(translator: Translator,
                                                  fresh_context: contextvars.Context) -> None:
    assert in_locale(fresh_context, "vi", translator, "No such message 42") == "No such message 42"


def test_unloaded_translator_returns_msgids(fresh_context: contextvars.Context) -> None:
    assert in_locale(fresh_context, "vi", Translator(), "Log in") == "Log in"


def test_loading_a_missing_directory_changes_nothing(tmp_path: Path,
                                                      fresh_context: contextvars.Context) -> None:
    translator = Translator()
    translator.load(tmp_path)
    assert in_locale(fresh_context, "vi", translator, "Log in") == "Log in"


@pytest.mark.parametrize(
    ("requested", "default", "expected"),
    [("en-US", "vi", "en"), ("VI", "en", "vi"), ("fr", "vi", "vi"), (None, "en", "en"), ("", "vi", "vi"),
     ("  en", "vi", "en")],
)
def test_negotiate(requested: str | None, default: str, expected: str) -> None:
    assert negotiate(requested, default) == expected
