"""FL core: the flat parameter vector, client update, server optimizers, client sampling and selection, the round
loop (which runs an algorithm from fednlp_bench/algorithms), distributed backend, checkpoints, client state,
continual data, client- and example-level differential privacy (DP-SGD, ghost clipping), attacks, centralized
baselines."""
