"""The checked configuration: config.toml read, every rule in it compiled and type-checked."""
