"""gettext for pages and messages: Vietnamese first, English second.

Catalogs are read from .po files at start-up (babel), so there is no compile step to forget; the
locale of the request being served lives in a context variable.
"""

from __future__ import annotations

import contextvars
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("vi", "en")
DOMAIN = "messages"

locale_var: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default="vi")


class Translator:
    def __init__(self) -> None:
        self._translations: dict[str, NullTranslations] = {code: NullTranslations() for code in LOCALES}

    def load(self, locale_dir: Path) -> None:
        """Merge the catalogs found under ``locale_dir/<code>/LC_MESSAGES/messages.po``."""
        import io

        for code in LOCALES:
            po = locale_dir / code / "LC_MESSAGES" / f"{DOMAIN}.po"
            if not po.exists():
                continue
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=code)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            loaded = Translations(buffer, domain=DOMAIN)
            current = self._translations[code]
            if isinstance(current, Translations):
                current.merge(loaded)
            else:
                self._translations[code] = loaded

    def gettext(self, message: str) -> str:
        return self._translations[locale_var.get()].gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._translations[locale_var.get()].ngettext(singular, plural, n)


def negotiate(requested: str | None, default: str) -> str:
    if requested:
        code = requested.strip().lower()[:2]
        if code in LOCALES:
            return code
    return default
