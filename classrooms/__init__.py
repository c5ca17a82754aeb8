"""Classrooms: schools, classes, live lessons (thin for now: the demo class room)."""

from classrooms.demo import seed_demo
from classrooms.routes import setup
from server.plugins import Plugin

plugin = Plugin(name="classrooms", setup=setup, seed_demo=seed_demo, order=60)
