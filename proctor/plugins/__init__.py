"""Built-in plugins. Each registers through the hooks in ``proctor.core.hookspecs``,
exactly as a third-party plugin does, and imports nothing heavy at module level."""
