"""Settings from environment, `.env` and an optional YAML file."""

from sigma.config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
