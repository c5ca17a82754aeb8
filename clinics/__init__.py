"""Clinics: health facilities, patients, remote consultations (thin for now: demo rooms)."""

from clinics.demo import seed_demo
from clinics.routes import setup
from server.plugins import Plugin

plugin = Plugin(name="clinics", setup=setup, seed_demo=seed_demo, models="clinics.models", order=50)
