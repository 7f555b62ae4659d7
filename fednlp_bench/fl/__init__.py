"""FL core: client update, server strategies, client sampling, in-process simulation, centralized baseline."""
