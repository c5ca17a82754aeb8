"""The web layer: jinja2 pages, static ES modules and CSS, translations (vi first, en)."""

from server.plugins import Plugin
from web.setup import setup

plugin = Plugin(name="web", setup=setup, order=10)
