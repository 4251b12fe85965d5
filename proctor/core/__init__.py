"""proctor's core: contracts and engine. Nothing here imports from outside ``core``."""
