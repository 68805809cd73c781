"""The error every configuration check raises: its own module so that the session's
configuration (``config``) and the texts it names (``workload_text``) share it without
importing each other."""


class ConfigError(ValueError):
    """A session configuration that cannot run; the message says what is valid."""
