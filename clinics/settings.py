"""The clinics plugin's own settings (CAUNOI_CLINICS_*), documented in README.md."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from clinics.eligibility import DEFAULT_MANIFEST

DEFAULT_CONSENT_TEXTS = Path(__file__).parent / "data" / "consent-texts.json"


class ClinicsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAUNOI_CLINICS_", extra="ignore")

    conditions_manifest: Path = DEFAULT_MANIFEST
    """The Thông tư 30 list (a JSON manifest naming its CSV), replaceable by an administrator."""
    consent_texts: Path = DEFAULT_CONSENT_TEXTS
    """The consent texts (per purpose, version and language), replaceable by the facility."""
