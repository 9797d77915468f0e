"""Site configuration: YAML with line numbers, strict pydantic models, cross-reference checks."""

from monitor.config.errors import ConfigError, ConfigIssue
from monitor.config.load import load_config, load_config_text
from monitor.config.model import SiteConfig

__all__ = ["ConfigError", "ConfigIssue", "SiteConfig", "load_config", "load_config_text"]
