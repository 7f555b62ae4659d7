"""Bridges to other FL runtimes. Each submodule is imported only when asked for; the core imports none."""
