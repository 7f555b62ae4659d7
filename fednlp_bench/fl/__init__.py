"""FL core: client update, server optimizers, client sampling and selection, the round loop (which runs an algorithm
from fednlp_bench/algorithms), distributed backend, checkpoints, client state, attacks, centralized baseline."""
