"""Settings: config.toml read through pydantic-settings, ``CRM_*`` variables override."""
