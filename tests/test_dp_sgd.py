"""Example-level DP-SGD: vectorised per-example gradients, clipping, noise, seeding and epsilon accounting."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fednlp_bench.cli import main
from fednlp_bench.config import RunConfig
from fednlp_bench.data import demo_dataset
from fednlp_bench.errors import UserError
from fednlp_bench.fl import dp_sgd
from fednlp_bench.fl.client import ClientConfig, client_update
from fednlp_bench.fl.params import FlatParams
from fednlp_bench.tasks import TextClassificationTask

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return TextClassificationTask(demo_dataset(num_train=120, num_test=20, seed=2), model="tiny", max_length=24,
                                  cache_dir=tmp_path_factory.mktemp("cache"), dropout=0.0)


def tagging_task(cache):
    from fednlp_bench.data.tagging import SequenceTaggingData
    from fednlp_bench.tasks.tagging import SequenceTaggingTask

    rng = np.random.default_rng(0)
    words = ["rain", "Paris", "team", "Oslo", "vote", "Ann", "storm"]

    def sentence(n):
        w = [words[j] for j in rng.integers(0, len(words), n)]
        return w, ["B-LOC" if x in ("Paris", "Oslo") else "B-PER" if x == "Ann" else "O" for x in w]

    train, test = [sentence(int(rng.integers(2, 9))) for _ in range(10)], [sentence(4) for _ in range(3)]
    data = SequenceTaggingData.create("toy", [s[0] for s in train], [s[1] for s in train], [s[0] for s in test],
                                      [s[1] for s in test])
    return SequenceTaggingTask(data, model="tiny", max_length=16, cache_dir=cache, dropout=0.0)


def seq2seq_task(cache):
    from fednlp_bench.data.seq2seq import Seq2SeqData
    from fednlp_bench.tasks.seq2seq import Seq2SeqTask

    rng = np.random.default_rng(0)
    words = ["rain", "snow", "market", "team", "space", "vote"]
    pairs = []
    for i in range(14):
        w = [words[j] for j in rng.integers(0, len(words), 3)]
        pairs.append((f"report {i}: the {w[0]} and the {w[1]} met the {w[2]}", f"{w[0]} meets {w[2]}"))
    data = Seq2SeqData.create("toy", [p[0] for p in pairs[:10]], [p[1] for p in pairs[:10]],
                              [p[0] for p in pairs[10:]], [p[1] for p in pairs[10:]])
    return Seq2SeqTask(data, model="tiny", max_length=24, cache_dir=cache, max_new_tokens=4, max_target_length=8,
                       dropout=0.0)


def lm_task(cache):
    from fednlp_bench.data.splits import TextClassificationData
    from fednlp_bench.tasks.language_modeling import LanguageModelingTask

    texts = demo_dataset(num_train=14, num_test=4, seed=4)
    data = TextClassificationData.create("toy_lm", texts.train_texts, np.zeros(14, np.int64), texts.test_texts,
                                         np.zeros(4, np.int64), ["all"])
    return LanguageModelingTask(data, model="tiny", max_length=16, cache_dir=cache, dropout=0.0)


def fresh(task, seed=0):
    model = task.new_model(seed)
    flat = FlatParams(model)
    model.train()
    return model, flat


@pytest.mark.parametrize("family", ["text_classification", "sequence_tagging", "seq2seq", "language_modeling"])
def test_vectorised_per_example_grads_equal_the_per_example_loop(family, task, tmp_path):
    t = {"text_classification": lambda: task, "sequence_tagging": lambda: tagging_task(tmp_path),
         "seq2seq": lambda: seq2seq_task(tmp_path), "language_modeling": lambda: lm_task(tmp_path)}[family]()
    model, flat = fresh(t)
    batch = t.batch("train", np.arange(6))
    engine = dp_sgd.PerExampleGrads(t, model, flat.params)
    assert model.config._attn_implementation == "eager"
    # classification and tagging take the embedding shortcut (untied input embedding); seq2seq and GPT-2 tie it
    assert (engine.embed_name is not None) == (family not in ("seq2seq", "language_modeling"))
    vec = engine.flat(batch)
    loop, losses = dp_sgd.naive_per_example_grads(t, model, flat.params, batch)
    assert vec.shape == (6, flat.numel)
    assert torch.allclose(vec, loop, atol=1e-5, rtol=1e-4), float((vec - loop).abs().max())
    assert not torch.allclose(loop[0], loop[1])  # really per example
    # their mean is the ordinary batch gradient (classification, tagging: same per-example weight)
    if family == "text_classification":
        flat.flat.grad = None
        model.zero_grad()
        t.loss(model, batch).backward()
        assert torch.allclose(vec.mean(0), torch.cat([p.grad.reshape(-1) for p in flat.params]), atol=1e-6)
    _, _, vec_losses = engine.clipped_sum(batch, 1.0)
    assert torch.allclose(vec_losses, losses, atol=1e-5)


def test_clipping_bounds_every_example_and_leaves_small_ones_alone(task):
    model, flat = fresh(task)
    batch = task.batch("train", np.arange(10))
    engine = dp_sgd.PerExampleGrads(task, model, flat.params)
    grads = engine.flat(batch)
    norms = torch.linalg.vector_norm(grads, dim=1)
    clip = float(norms.median())
    clipped = grads * dp_sgd.clip_factors(norms, clip).unsqueeze(1)
    clipped_norms = torch.linalg.vector_norm(clipped, dim=1)
    above, below = norms > clip, norms < clip
    assert above.any() and below.any()
    assert bool((clipped_norms <= clip * (1 + 1e-6)).all())
    assert torch.allclose(clipped_norms[above], torch.full_like(clipped_norms[above], clip), rtol=1e-5)
    assert torch.equal(clipped[below], grads[below])  # under C: untouched
    # the engine's clipped sum (embedding rows scattered, never expanded) is the same sum
    sums, engine_norms, _ = engine.clipped_sum(batch, clip)
    assert torch.allclose(engine_norms, norms, rtol=1e-5)
    assert torch.allclose(torch.cat([s.reshape(-1) for s in sums]), clipped.sum(0), atol=1e-5)


def test_without_noise_the_dp_step_is_the_mean_of_clipped_gradients(task):
    model, flat = fresh(task)
    batch = task.batch("train", np.arange(8))
    clip = 0.5
    grads, _ = dp_sgd.naive_per_example_grads(task, model, flat.params, batch)
    norms = torch.linalg.vector_norm(grads, dim=1)
    assert bool((norms > clip).all())
    expected = (grads * dp_sgd.clip_factors(norms, clip).unsqueeze(1)).mean(0)
    engine = dp_sgd.PerExampleGrads(task, model, flat.params)
    for eng in (engine, None):  # vectorised and the loop
        dp_sgd.dp_sgd_step(eng, task, model, flat.params, batch, dp_sgd.ExampleDP(clip, 0.0), 8,
                           dp_sgd.noise_generator(0, 0))
        got = torch.cat([p.grad.reshape(-1) for p in flat.params])
        assert torch.allclose(got, expected, atol=1e-6)
    assert float(torch.linalg.vector_norm(expected)) <= clip + 1e-6


def test_noise_has_std_sigma_clip_over_batch_size_and_is_seeded(task):
    model, flat = fresh(task)
    batch = task.batch("train", np.arange(8))
    engine = dp_sgd.PerExampleGrads(task, model, flat.params)
    sums, _, _ = engine.clipped_sum(batch, 0.7)
    dp = dp_sgd.ExampleDP(clip=0.7, noise_multiplier=1.3)
    plain = torch.cat([g.reshape(-1) for g in dp_sgd.private_grads(sums, dp_sgd.ExampleDP(0.7, 0.0), 8,
                                                                    dp_sgd.noise_generator(3, 5))])
    noised = torch.cat([g.reshape(-1) for g in dp_sgd.private_grads(sums, dp, 8, dp_sgd.noise_generator(3, 5))])
    noise = noised - plain
    assert noise.numel() > 50_000
    assert float(noise.std()) == pytest.approx(1.3 * 0.7 / 8, rel=0.02)
    assert abs(float(noise.mean())) < 0.01 * 1.3 * 0.7 / 8 * 10
    again = torch.cat([g.reshape(-1) for g in dp_sgd.private_grads(sums, dp, 8, dp_sgd.noise_generator(3, 5))])
    other = torch.cat([g.reshape(-1) for g in dp_sgd.private_grads(sums, dp, 8, dp_sgd.noise_generator(3, 6))])
    assert torch.equal(again, noised) and not torch.allclose(other, noised)


def test_same_seed_gives_identical_weights_after_a_dp_client_update(tmp_path):
    t = TextClassificationTask(demo_dataset(num_train=60, num_test=10, seed=4), model="tiny", max_length=16,
                               cache_dir=tmp_path, dropout=0.1)  # dropout on: its masks are seeded too
    from fednlp_bench.algorithms import ClientContext
    from fednlp_bench.algorithms.fedprox import FedProx, FedProxArgs

    cfg = ClientConfig(optimizer="adamw", lr=1e-3, batch_size=16, local_epochs=2, dp_sgd_clip=1.0,
                       dp_sgd_noise_multiplier=1.0)
    ids = np.arange(40)
    prox = FedProx(FedProxArgs(mu=0.1), None)  # FedProx's pull on top of the private step

    def update(seed):
        model, flat = fresh(t)
        w0 = flat.get()
        ctx = ClientContext(0, 1, seed, w0, cfg.lr, len(ids), 0, {})
        res = client_update(t, model, flat, w0, ids, cfg, CPU, seed=seed, algorithm=prox, ctx=ctx)
        assert res.num_batches == 6 and np.isfinite(res.train_loss)
        return w0, flat.get()

    w0, a = update(7)
    _, b = update(7)
    _, c = update(8)
    assert not torch.equal(a, w0)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_run_reports_the_worst_clients_epsilon_from_opacus(tmp_path):
    from opacus.accountants import RDPAccountant

    from fednlp_bench.runner import make_partition_for, prepare, run_fl

    cfg = dict(task="demo", max_train=150, max_test=30, clients=5, clients_per_round=2, rounds=3, batch_size=16,
               partition="quantity", beta=2.0, dp_sgd_clip=1.0, dp_sgd_noise_multiplier=1.1, dp_delta=1e-4,
               output=str(tmp_path), progress=False)
    rec = run_fl(RunConfig(**cfg))
    priv = rec["privacy"]
    assert priv["level"] == "example" and priv["accountant"] == "opacus.accountants.RDPAccountant"
    assert priv["clip"] == 1.0 and priv["noise_multiplier"] == 1.1 and "Poisson" in priv["note"]
    assert rec["config"]["dp_sgd_clip"] == 1.0 and rec["config"]["dp_sgd_noise_multiplier"] == 1.1
    # independently: each client's steps from the rounds it was chosen in (the curve) and its partition size
    rc, task = prepare(RunConfig(**cfg))
    sizes = [len(p) for p in make_partition_for(rc, task).train]
    times = {}
    for point in rec["curve"]:
        for c in point["clients"]:
            times[c] = times.get(c, 0) + 1
    eps = []
    for c, t in times.items():
        acc = RDPAccountant()
        for _ in range(t * int(np.ceil(sizes[c] / 16))):
            acc.step(noise_multiplier=1.1, sample_rate=min(1.0, 16 / sizes[c]))
        eps.append(acc.get_epsilon(delta=1e-4))
    assert len(set(sizes)) > 1 and priv["clients_trained"] == len(times)
    assert priv["epsilon"] == pytest.approx(max(eps), rel=1e-9)
    assert priv["epsilon_median"] == pytest.approx(float(np.median(eps)), rel=1e-9)
    assert np.isfinite(priv["epsilon"]) and priv["epsilon"] > 0


def test_settings_change_the_run_key():
    from fednlp_bench.runner import checkpoint_key

    base = RunConfig(task="demo").resolved()
    dp = RunConfig(task="demo", dp_sgd_clip=1.0).resolved()
    noisy = RunConfig(task="demo", dp_sgd_clip=1.0, dp_sgd_noise_multiplier=0.5).resolved()
    assert len({checkpoint_key(base), checkpoint_key(dp), checkpoint_key(noisy)}) == 3


@pytest.mark.parametrize(("argv", "words"), [
    (["run", "--dp-sgd-clip", "0"], "--dp-sgd-clip must be > 0"),
    (["centralized", "--dp-sgd-clip", "1", "--dp-sgd-noise-multiplier", "-1"], "--dp-sgd-noise-multiplier must be"),
    (["run", "--dp-sgd-clip", "1", "--dp-clip", "1"], "cannot be combined"),
    (["run", "--dp-sgd-clip", "1", "--selection", "activity"], "uniform client selection"),
    (["run", "--dp-sgd-noise-multiplier", "1"], "needs --dp-sgd-clip"),
    (["run", "--task", "squad", "--dp-sgd-clip", "1"], "not extractive_qa"),
])
def test_bad_settings_are_one_line_and_exit_2(argv, words, tmp_path, capsys):
    rc = main([*argv, "--output", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not list((tmp_path / "out").glob("*.json"))


def test_qa_adapter_is_refused_in_code_too():
    class FakeQA:
        family = "extractive_qa"

    with pytest.raises(UserError, match="not extractive_qa"):
        dp_sgd.check_family(FakeQA())


# ------------------------------------------------------------------------------------------------ ghost clipping
@pytest.mark.parametrize("clip", [1e9, 0.3])
def test_ghost_clipping_equals_the_per_example_gradients(task, clip):
    """Norms from layer inputs and output gradients, and the reweighted backward, give what per-example gradients
    give (BERT's position embeddings, computed once for the batch, included)."""
    from fednlp_bench.fl.ghost_clipping import GhostClipping, make_engine

    model, flat = fresh(task)
    batch = task.batch("train", np.arange(10))
    ghost = make_engine(task, model, flat.params)
    assert isinstance(ghost, GhostClipping)
    g_sums, g_norms, g_losses = ghost.clipped_sum(batch, clip)
    assert ghost._fallback is None  # ghost norms were used, not the fallback
    loop_grads, loop_losses = dp_sgd.naive_per_example_grads(task, model, flat.params, batch)
    norms = torch.linalg.vector_norm(loop_grads, dim=1)
    assert torch.allclose(g_norms, norms, rtol=1e-4, atol=1e-6)
    assert torch.allclose(g_losses, loop_losses, atol=1e-5)
    expected = dp_sgd.clip_factors(norms, clip) @ loop_grads
    assert torch.allclose(torch.cat([s.reshape(-1) for s in g_sums]), expected, atol=1e-5, rtol=1e-4)
    if clip < 1:
        assert (norms > clip).all()  # the clip really bit


def test_other_families_use_the_torch_func_engine(tmp_path):
    from fednlp_bench.fl.ghost_clipping import make_engine

    t = lm_task(tmp_path)
    model, flat = fresh(t)
    assert isinstance(make_engine(t, model, flat.params), dp_sgd.PerExampleGrads)  # GPT-2 ties its embeddings
