"""The public Algorithm API (version API_VERSION): what an FL algorithm implements to run in fednlp-bench.

The harness (fl/simulation.py) owns everything an algorithm must not change: client selection, the batch order,
DP, evaluation, checkpoints and ranks. An algorithm fills in the hooks below; docs/algorithms.md explains them
with a worked example. One round, as the harness runs it:

    for each chosen client (this rank's share):
        load the global weights; ctx = ClientContext(...)
        algorithm.client_begin(ctx)
        for each local step: grad += algorithm.gradient_correction(ctx, w); optimizer step;
                             w -= algorithm.step_correction(ctx, w_before_step)
        delta = global - local                                    (the client's pseudo-gradient)
        contribution = algorithm.client_end(ctx, delta)           (vectors and scalars to sum)
    sums = float64 sum of every client's contribution over all ranks (one all_reduce)
    updates = every client's delta, sorted by client id          (only when gather_updates is True)
    global = algorithm.aggregate(ServerRound(...))               (runs on every rank, so it must be deterministic)

Rules that keep results reproducible: use ctx.generator() (seeded by seed, round and client) or a generator seeded
from RunInfo.seed for randomness, never the global RNGs; state_dict() holds tensors and plain Python values only
(checkpoints are loaded with weights_only=True); aggregate() must give the same result on every rank.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..errors import AlgorithmError  # noqa: F401 - part of the API: raise it from check() to refuse settings

API_VERSION = 1


@dataclass(frozen=True)
class RunInfo:
    """What an algorithm knows about the run when it is built; the same on every rank."""

    num_clients: int
    clients_per_round: int
    rounds: int
    seed: int
    client: Any  # fl.client.ClientConfig: local optimizer, lr, epochs, batch size
    server: Any  # fl.strategies.ServerConfig: --server-optimizer, --server-lr, --server-momentum, ...
    weighting: str  # examples | batches | uniform: how ClientContext.weight is computed
    device: torch.device = torch.device("cpu")
    client_dp: bool = False  # client-level DP-FedAvg is on (deltas clipped, noise on the sum)


@dataclass
class ClientContext:
    """One client's local training in one round, handed to every client hook."""

    client: int
    round: int
    seed: int  # this client's seed in this round (the harness seeds its batch order and dropout with it)
    global_weights: torch.Tensor  # the round's global model as one flat vector (read only)
    lr: float  # the client learning rate
    num_examples: int
    num_batches: int  # local steps this round
    state: dict[str, Any]  # this client's persistent state (Algorithm.client_state = True), empty on first visit
    weight: float = 1.0  # aggregation weight by --weighting (1 under client-level DP); set before client_end
    scratch: dict[str, Any] = field(default_factory=dict)  # the algorithm's values for this client and round only
    _loss: Callable[[], float] | None = field(default=None, repr=False)

    def generator(self, tag: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
        """A torch generator seeded by (seed, round, client, tag): the same on every rank and after a resume."""
        gen = torch.Generator(device=device)
        gen.manual_seed(int(np.random.SeedSequence([self.seed, 0xA1, tag]).generate_state(1)[0]))
        return gen

    def loss_at_global(self) -> float:
        """Mean loss of the global model on all of this client's training examples (one forward pass over them).
        Only for algorithms that declare needs_global_loss = True; call it in client_begin."""
        if self._loss is None:
            raise AlgorithmError("loss_at_global() needs `needs_global_loss = True` on the algorithm class")
        return self._loss()


@dataclass
class Contribution:
    """What one client uploads, summed over the round's clients and ranks in float64.

    vectors: name -> flat vector (the size of the model); the server gets sum_k weights[name]_k * vectors[name]_k.
    weights: the multiplier of each vector (1.0 when missing). scalars: name -> number, summed likewise.
    Every name must be declared in the algorithm's `vectors` / `scalars`.
    """

    vectors: dict[str, torch.Tensor] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)

    @classmethod
    def weighted_delta(cls, delta: torch.Tensor, weight: float) -> "Contribution":
        """FedAvg's upload: weight * delta, and the weight."""
        return cls({"delta": delta}, {"delta": weight}, {"weight": weight})


@dataclass
class ClientUpdates:
    """Every client's delta of a round (gather_updates = True), sorted by client id: the same on every rank."""

    clients: torch.Tensor  # [K] int64 client ids, ascending
    deltas: torch.Tensor  # [K, P] float32 (the model's dtype): global - local, as uploaded
    weights: torch.Tensor  # [K] float64 aggregation weights (ClientContext.weight)


@dataclass
class ServerRound:
    """What the server sees at the end of a round."""

    round: int
    global_weights: torch.Tensor
    sums: dict[str, torch.Tensor]  # vector name -> float64 sum over clients
    scalars: dict[str, float]  # scalar name -> sum over clients
    num_clients: int  # clients that trained this round
    updates: ClientUpdates | None = None  # every client's delta when gather_updates is True


class Algorithm:
    """Base class of every FL algorithm; the defaults are FedAvg's.

    Class attributes (declarations the harness relies on):
      name             the short name shown in results
      api_version      the API version the class was written for (API_VERSION)
      Args             a dataclass of typed hyperparameters (--algorithm-arg key=value, YAML algorithm_args), or None
      vectors          names of the vectors a Contribution may hold (each the size of the model)
      scalars          names of its scalars
      gather_updates   True: aggregate() also gets every client's delta (ServerRound.updates); costs K*P floats
      client_state     True: ClientContext.state persists per client (clients are pinned to a rank) and is saved
                       in checkpoints
      needs_global_loss  True: ClientContext.loss_at_global() is available (it reads the client's data outside
                       local training, which example-level DP cannot account for)
      supports_client_dp True only if the upload is exactly Contribution.weighted_delta and aggregate() divides
                       sums["delta"] by scalars["weight"]: then client-level DP can clip each delta and noise the sum
      uses_weighting   False: clients count equally whatever --weighting says (--weighting batches is refused)
    """

    name: ClassVar[str] = "custom"
    api_version: ClassVar[int] = API_VERSION
    Args: ClassVar[type | None] = None
    vectors: ClassVar[tuple[str, ...]] = ("delta",)
    scalars: ClassVar[tuple[str, ...]] = ("weight",)
    gather_updates: ClassVar[bool] = False
    client_state: ClassVar[bool] = False
    needs_global_loss: ClassVar[bool] = False
    supports_client_dp: ClassVar[bool] = False
    uses_weighting: ClassVar[bool] = True

    def __init__(self, args: Any, info: RunInfo) -> None:
        self.args = args
        self.info = info

    def check(self) -> None:
        """Refuse settings this algorithm cannot run with: raise AlgorithmError naming the setting and the fix."""

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Change the model before its trainable parameters are flattened (e.g. add adapters); the default keeps it."""
        return model

    def start(self, initial: torch.Tensor) -> None:
        """Set up server state for the initial global weights (called once, before round 1 or a resume)."""

    def client_begin(self, ctx: ClientContext) -> None:
        """Before a client's local training (the working model holds the global weights)."""

    def gradient_correction(self, ctx: ClientContext, weights: torch.Tensor) -> torch.Tensor | None:
        """Per local step: a vector added to the gradient before the optimizer step (the gradient of a term the
        algorithm adds to the local objective), from the weights before the step (`weights`, read only). None: none.
        It is added after gradient clipping and DP-SGD noise, which concern the data's gradient."""
        return None

    def step_correction(self, ctx: ClientContext, weights: torch.Tensor) -> torch.Tensor | None:
        """Per local step: a vector subtracted from the weights after the optimizer step (decoupled from the
        optimizer, like AdamW's weight decay), from the weights before it (`weights`, read only). None: none.
        The learning rate is not applied for you."""
        return None

    def client_end(self, ctx: ClientContext, delta: torch.Tensor) -> Contribution:
        """After local training: what the client uploads. `delta` = global - local weights."""
        return Contribution.weighted_delta(delta, ctx.weight)

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        """The new global weights (runs on every rank with the same input)."""
        pseudo_grad = (rnd.sums["delta"] / rnd.scalars["weight"]).to(rnd.global_weights.dtype)
        return rnd.global_weights - pseudo_grad

    def state_dict(self) -> dict[str, Any]:
        """Server state for checkpoints: tensors, numbers, strings, lists and dicts only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned (after a resume)."""


class GatheredAggregator(Algorithm):
    """Base of the aggregators that read every client's update (median, trimmed mean, Krum) instead of sums:
    clients upload only their delta, and `aggregate` gets them all in `ServerRound.updates`."""

    vectors = ()
    scalars = ()
    gather_updates = True

    def client_end(self, ctx, delta) -> Contribution:  # the server reads the updates themselves
        return Contribution()
