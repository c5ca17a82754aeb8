"""Layering rules (docs/architecture.md): who may import whom, checked on the source with ``ast``.

media/ is the WebRTC engine and knows nothing of the app; server/ is the core and reaches the web
layer and the verticals only through the ``caunoi.plugins`` entry points; the two verticals are
independent of each other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("media", "server", "clinics", "classrooms", "web")

FORBIDDEN: dict[str, frozenset[str]] = {
    "media": frozenset({"server", "clinics", "classrooms", "web"}),
    "server": frozenset({"clinics", "classrooms", "web"}),
    "clinics": frozenset({"classrooms"}),
    "classrooms": frozenset({"clinics"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement: the top-level package it reaches, where, and how it was written."""

    package: str
    line: int
    statement: str


def module_parts(path: Path, root: Path) -> list[str]:
    """Dotted module name of ``path`` as parts, e.g. server/auth/tokens.py -> [server, auth, tokens]."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def collect_imports(source: str, module: list[str], is_package: bool = False) -> list[Import]:
    """Every import anywhere in ``source`` (functions, TYPE_CHECKING blocks, try/except included).

    Relative imports are resolved against ``module`` so that ``from .. import x`` counts as
    importing the package it lands in.
    """
    tree = ast.parse(source)
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(alias.name.split(".")[0], node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            written = "." * node.level + (node.module or "")
            if node.level == 0:
                assert node.module is not None
                target = node.module.split(".")
            else:
                anchor = module if is_package else module[:-1]
                base = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from . import x" at the top of a tree: the names are packages
                    target = [alias.name for alias in node.names][:1]
            names = ", ".join(alias.name for alias in node.names)
            found.append(Import(target[0], node.lineno, f"from {written} import {names}"))
    return found


def source_files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    return [path for path in files if "__pycache__" not in path.parts]


def imports_of(path: Path) -> list[Import]:
    return collect_imports(path.read_text(encoding="utf-8"), module_parts(path, ROOT),
                           is_package=path.name == "__init__.py")


def violations(package: str) -> list[str]:
    """One line per forbidden import in ``package``: file, line and the statement as written."""
    found = []
    for path in source_files(package):
        for imp in imports_of(path):
            if imp.package in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)}:{imp.line}: {imp.statement}")
    return found


# --- the collector itself -----------------------------------------------------------------------

SYNTHETIC = '''
from __future__ import annotations
import os, json as j
import server.settings
from typing import TYPE_CHECKING
from aiohttp import web

if TYPE_CHECKING:
    from clinics.models import Visit

def later() -> None:
    import classrooms.routes
    from web import pages

class Thing:
    def method(self) -> None:
        try:
            from media.sfu import Sfu
        except ImportError:
            pass
'''


def test_collector_finds_imports_everywhere() -> None:
    """Top-level, aliased, dotted, TYPE_CHECKING, function-local and method-local imports all count."""
    packages = {imp.package for imp in collect_imports(SYNTHETIC, ["media", "fake"])}
    assert packages == {"__future__", "os", "json", "server", "typing", "aiohttp", "clinics", "classrooms",
                        "web", "media"}


def test_collector_reports_line_and_statement() -> None:
    by_package = {imp.package: imp for imp in collect_imports(SYNTHETIC, ["media", "fake"])}
    assert by_package["clinics"].line == 9
    assert by_package["clinics"].statement == "from clinics.models import Visit"
    assert by_package["classrooms"].statement == "import classrooms.routes"


def test_collector_resolves_relative_imports() -> None:
    """Inside server/signalling/handler.py, ``from ..x`` is server.x and ``from ...y`` leaves server."""
    source = "from . import protocol\nfrom ..auth import tokens\nfrom ...clinics import routes\n"
    found = collect_imports(source, ["server", "signalling", "handler"])
    assert [imp.package for imp in found] == ["server", "server", "clinics"]
    in_init = collect_imports("from .routes import setup\n", ["clinics"], is_package=True)
    assert [imp.package for imp in in_init] == ["clinics"]


def test_rule_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The rule check fires on a planted violation, so a passing rule test means something."""
    planted = tmp_path / "media" / "leak.py"
    planted.parent.mkdir()
    planted.write_text("def f() -> None:\n    from server.keys import SFU\n")
    imports = collect_imports(planted.read_text(), module_parts(planted, tmp_path))
    bad = [imp for imp in imports if imp.package in FORBIDDEN["media"]]
    assert [(imp.package, imp.line, imp.statement) for imp in bad] == [
        ("server", 2, "from server.keys import SFU")]


def test_every_package_has_sources() -> None:
    """A renamed or moved package would make the rule tests pass vacuously."""
    for package in PACKAGES:
        assert source_files(package), f"no .py files under {package}/"


# --- the rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package: str) -> None:
    found = violations(package)
    allowed = ", ".join(sorted(FORBIDDEN[package]))
    assert not found, f"{package}/ must not import {allowed}:\n  " + "\n  ".join(found)


def test_media_is_used_by_server() -> None:
    """Sanity check of the direction: server/ does import media/ (the collector sees real imports)."""
    packages = {imp.package for path in source_files("server") for imp in imports_of(path)}
    assert "media" in packages
