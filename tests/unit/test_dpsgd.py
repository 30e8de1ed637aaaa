"""DP-SGD generators: the public-schema transformer, parameters, bad input (exit 2, nothing
charged), the CLI road with --device, and the loud insecure-RNG notice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

from dpsynth import UNTRACKED  # noqa: E402
from dpsynth.cli import main  # noqa: E402
from dpsynth.exceptions import InsecureNoiseWarning, ParameterError, SchemaError  # noqa: E402
from dpsynth.privacy import ApproxDP  # noqa: E402
from dpsynth.privacy.ledger import Ledger  # noqa: E402
from dpsynth.schema import Schema  # noqa: E402
from dpsynth.schema.encode import encode  # noqa: E402
from dpsynth.synth.dpsgd import DPCTGAN, DPVAE, common  # noqa: E402

FAST = ["--param", "sample_rate=0.1", "--param", "epochs=1", "--param", "embedding_dim=8"]


def test_transformer_uses_public_bounds_and_round_trips(small_schema, small_data):
    t = common.TableTransformer(small_schema, max_levels=100, synthesizer="dpvae", numeric="scaled")
    m = t.transform(small_data, encode(small_data, small_schema))
    assert m.shape == (400, t.output_dim) and m.min() >= -1.0 and m.max() <= 1.0
    age = [s for s in t.spans if s.activation == "tanh"][0]
    # 0 and 99 are the declared bounds: scaled with them, not with the data's min and max
    expected = 2 * small_data["age"].astype(float).to_numpy() / 99 - 1
    np.testing.assert_allclose(m[:, age.start], expected, atol=1e-6)
    back = t.inverse(m, np.random.default_rng(0))
    assert (back["size"] == small_data["size"]).all()
    assert (back["age"] == small_data["age"].astype(int)).all()
    np.testing.assert_allclose(back["score"], small_data["score"].astype(float), atol=1e-6)
    assert back["color"].isna().sum() == (small_data["color"] == "?").sum()


def test_transformer_bins_numeric_columns_on_public_edges_and_round_trips(small_schema, small_data):
    codes = encode(small_data, small_schema)
    t = common.TableTransformer(small_schema, max_levels=100, synthesizer="dpvae")
    m = t.transform(small_data, codes)
    assert m.min() >= -1.0 and m.max() <= 1.0
    age = [s for s in t.spans if s.column == 2]
    assert [(s.role, s.width) for s in age] == [("code", 5), ("position", 1)]  # the 5 declared bins
    np.testing.assert_array_equal(m[:, age[0].start:age[0].stop].argmax(1), codes[:, 2])
    values = small_data["age"].astype(float).to_numpy()
    edges = np.array([0, 18, 30, 45, 65, 99], dtype=float)
    b = codes[:, 2]
    np.testing.assert_allclose(m[:, age[1].start], 2 * (values - edges[b]) / (edges[b + 1] - edges[b]) - 1, atol=1e-6)
    back = t.inverse(m, np.random.default_rng(0))
    assert (back["age"] == small_data["age"].astype(int)).all()
    np.testing.assert_allclose(back["score"], small_data["score"].astype(float), atol=1e-6)
    assert back["color"].isna().sum() == (small_data["color"] == "?").sum()
    np.testing.assert_array_equal(encode(back, small_schema), codes)
    # model outputs anywhere in [-1, 1] decode inside the chosen bin and the bounds
    rng = np.random.default_rng(1)
    noisy = m.copy()
    noisy[:, age[1].start] = rng.uniform(-1, 1, len(m))
    again = t.inverse(noisy, rng)
    np.testing.assert_array_equal(encode(again, small_schema)[:, 2], codes[:, 2])



def test_transformer_subbins_one_hot_the_part_of_the_bin_and_sample_inside_it(small_schema, small_data):
    from dpsynth.synth.dpsgd.transform import SUB_BINS

    codes = encode(small_data, small_schema)
    t = common.TableTransformer(small_schema, max_levels=100, synthesizer="dpvae", numeric="subbins")
    m = t.transform(small_data, codes)
    age = [s for s in t.spans if s.column == 2]
    assert [(s.role, s.activation, s.width) for s in age] == [("code", "softmax", 5), ("position", "softmax", SUB_BINS)]
    block = m[:, age[1].start:age[1].stop]
    np.testing.assert_array_equal(block.sum(1), 1.0)  # one part per row
    values = small_data["age"].astype(float).to_numpy()
    edges = np.array([0, 18, 30, 45, 65, 99], dtype=float)
    b = codes[:, 2]
    width = (edges[b + 1] - edges[b]) / SUB_BINS
    part = np.minimum(((values - edges[b]) / width).astype(int), SUB_BINS - 1)
    np.testing.assert_array_equal(block.argmax(1), part)
    back = t.inverse(m, np.random.default_rng(0))
    np.testing.assert_array_equal(encode(back, small_schema), codes)  # every value in its own bin
    got = back["age"].to_numpy(dtype=float)
    # drawn uniformly inside the row's part, then rounded down to a whole number of the bin
    assert (got >= np.floor(edges[b] + part * width) - 1e-9).all() and (got < edges[b] + (part + 1) * width).all()
    assert len(np.unique(got[b == 2])) > 5  # not one value per bin (a mean position would give one)

def test_transformer_refuses_what_it_cannot_model():
    schema = Schema.from_dict({"version": 1, "columns": [
        {"name": "wide", "kind": "categorical", "levels": [str(i) for i in range(50)]},
        {"name": "ok", "kind": "integer", "bounds": [0, 5]}]})
    with pytest.raises(SchemaError, match="column 'wide' has 50 levels, more than dpctgan models one-hot"):
        DPCTGAN(epsilon=1.0, delta=1e-6, max_levels=20).plan(schema)


@pytest.mark.parametrize("params,message", [
    ({"batch_size": 500, "rows": 400}, "batch_size (500) must be at most rows (400)"),
    ({"batch_size": 50}, "batch_size (50) needs the public row count rows=N"),
    ({"batch_size": 50, "sample_rate": 0.1}, "give sample_rate or batch_size"),
    ({"sample_rate": 1.5}, "sample_rate (1.5) must be in (0, 1]"),
    ({"epochs": 0}, "epochs (0) must be a finite number > 0"),
    ({"device": "tpu"}, "device ('tpu') must be 'auto', 'cpu' or 'cuda'"),
    ({"conditional": "exact"}, "conditional ('exact') must be one of: uniform, dp_frequencies"),
    ({"condition_on": "all"}, "condition_on ('all') must be one of: categorical, codes"),
    ({"generator_steps": 0}, "generator_steps"),
    ({"generator_average": 1.5}, "generator_average (1.5) must be in [0, 1]"),
    ({"generator_average": -0.5}, "generator_average"),
    ({"calibration_pool": 0}, "calibration_pool"),
    ({"count_split": 0}, "count_split (0) must be a finite number > 0"),
    ({"count_split": 1.0}, "count_split (1.0) must be in (0, 1)"),
    ({"count_split": 0.6, "conditional": "dp_frequencies", "split_frequencies": 0.5},
     "leaves nothing for DP-SGD"),
])
def test_bad_parameters(params, message, small_schema, small_data):
    with pytest.raises(ParameterError) as err:
        DPCTGAN(epsilon=1.0, delta=1e-6, **params).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert message in str(err.value)


SHARED = ["epsilon", "delta", "insecure_seed", "count_split", "epochs", "sample_rate", "batch_size", "rows",
          "max_grad_norm", "max_noise_multiplier", "device", "secure_mode", "max_levels", "clipping",
          "numeric_encoding"]


@pytest.mark.parametrize("cls,own,epochs", [
    (DPCTGAN, ["conditional", "split_frequencies", "embedding_dim", "generator_dims", "discriminator_dims",
               "generator_lr", "discriminator_lr", "weight_decay", "generator_batch_size", "generator_steps",
               "generator_average", "condition_on", "calibration_pool"], 20.0),
    (DPVAE, ["embedding_dim", "compress_dims", "decompress_dims", "learning_rate", "weight_decay", "loss_factor",
             "numeric_sigma", "split_marginals", "calibration_pool", "decoder_average"], 100.0),
])
def test_parameters_are_keyword_only_fields_defined_once(cls, own, epochs):
    """Keyword-only dataclass parameters: the shared ones (one definition, in DPSGDParameters),
    then the model's own; get_params (what the ledger records) lists them in that order."""
    import dataclasses
    import inspect

    params = inspect.signature(cls).parameters
    assert list(params) == SHARED + own
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert params["epochs"].default == epochs and params["max_grad_norm"].default == 1.0
    synth = cls(epsilon=1.0, delta=1e-6)
    assert list(synth.get_params()) == SHARED + own
    assert repr(synth).startswith(f"{cls.__name__}(epsilon=1.0, delta=1e-06, insecure_seed=None, ")
    assert "_training_observer" not in repr(synth) and "_training_observer" not in synth.get_params()
    assert synth != cls(epsilon=1.0, delta=1e-6) and len({synth, synth}) == 1  # identity equality, hashable
    shared = {f.name for f in dataclasses.fields(common.DPSGDParameters)}
    assert shared == set(SHARED)
    with pytest.raises(TypeError):
        cls(1.0, 1e-6)  # positional: refused


SECURE = ("DP-SGD noise and Poisson sampling from a ChaCha20 keystream (cryptography ", "), keyed from os.urandom "
          "(Gaussian: sum of 4 float64 Box-Muller draws over 2); the row count from OpenDP's exact samplers")


@pytest.mark.parametrize("params,expected", [
    ({"insecure_seed": 3}, (False, "the noise is seeded (insecure_seed): for tests only")),
    ({"secure_mode": False}, (False, "secure_mode is off: DP-SGD noise would come from torch's non-cryptographic "
                                     "generator")),
    ({}, (True, SECURE)),
    ({"secure_mode": True}, (True, SECURE)),
])
def test_noise_provenance_from_the_parameters(params, expected):
    """Secure by default (issue 22: a ChaCha20 keystream, no torchcsprng); insecure only when seeded or off."""
    for cls in (DPCTGAN, DPVAE):
        secure, why = cls(epsilon=1.0, delta=1e-6, **params).noise_provenance()
        assert secure is expected[0]
        if secure:
            assert why.startswith(expected[1][0]) and why.endswith(expected[1][1])
        else:
            assert why == expected[1]


@pytest.mark.parametrize("cls,extra,kept", [
    (DPVAE, {"compress_dims": (16,), "decompress_dims": (16,), "decoder_average": 0}, "decoder_"),
    (DPCTGAN, {"generator_dims": (16,), "discriminator_dims": (16,), "generator_batch_size": 16}, None),
])
def test_observe_training_sees_the_module_dp_sgd_trains_for_this_instance_only(cls, extra, kept, small_schema,
                                                                                small_data):
    import torch

    params = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "device": "cpu", "insecure_seed": 2, **extra}
    seen: list = []
    synth, other = cls(epsilon=1.0, delta=1e-6, **params), cls(epsilon=1.0, delta=1e-6, **params)

    def observe(module):
        seen.append((module, [p.detach().clone() for p in module.parameters()]))

    with synth.observe_training(observe):
        other.fit(small_data, schema=small_schema, ledger=UNTRACKED)  # another instance: not observed
        assert seen == []
        synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    ((module, initial),) = seen
    assert isinstance(module, torch.nn.Module)
    trained = list(module.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(initial, trained, strict=True))  # trained in place after
    if kept:
        assert module.decoder is getattr(synth, kept)
    synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)  # outside the block: no observer
    assert len(seen) == 1


def test_batch_larger_than_the_data_is_refused_before_anything_is_charged(small_schema, small_data, tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    with pytest.raises(ParameterError, match=r"batch_size \(300\) must be at most the number of rows of the data"):
        DPVAE(epsilon=1.0, delta=1e-6, batch_size=300, rows=1000).fit(
            small_data.iloc[:200], schema=small_schema, ledger=ledger, dataset="d")
    assert ledger.statement("d").reservations == []


def _cli_fit(tmp_path, small_schema, small_data, *extra, synthesizer="dpvae", epsilon="1"):
    data = tmp_path / "data.csv"
    small_data.to_csv(data, index=False)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(small_schema.to_dict()))
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    if not (tmp_path / "ledger.db").exists():
        assert main(["ledger", "create", "--ledger", ledger, "--dataset", "d", "--epsilon", "5",
                     "--delta", "1e-6"]) == 0
    code = main(["fit", "--data", str(data), "--schema", str(schema), "--synthesizer", synthesizer,
                 "--epsilon", epsilon, "--delta", "1e-6", "--rows", "50", "--out", str(tmp_path / "out.csv"),
                 "--ledger", ledger, "--dataset", "d", "--json", *extra])
    return code, Ledger(ledger, create=True)


@pytest.mark.parametrize("extra,epsilon,message", [
    (["--param", "max_levels=3"], "1", "column 'size' has 4 levels, more than dpvae models one-hot"),
    (["--param", "batch_size=500", "--param", "rows=400"], "1", "batch_size (500) must be at most rows (400)"),
    (["--param", "sample_rate=0.5"], "0.001", "is too small to train even one DP-SGD step"),
])
def test_cli_bad_input_exits_2_with_one_line_and_charges_nothing(extra, epsilon, message, tmp_path, small_schema,
                                                                 small_data, capsys):
    capsys.readouterr()
    code, ledger = _cli_fit(tmp_path, small_schema, small_data, *extra, epsilon=epsilon)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and err[0].startswith("dpsynth fit: error:")
    assert ledger.statement("d").reservations == []


@pytest.mark.parametrize("synthesizer", ["dpvae", "dpctgan"])
def test_cli_fits_on_cpu_and_records_the_run(synthesizer, tmp_path, small_schema, small_data, capsys):
    code, ledger = _cli_fit(tmp_path, small_schema, small_data, *FAST, "--device", "cpu", "--insecure-seed", "1",
                            synthesizer=synthesizer)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["dpsgd"]["device"] == "cpu" and out["dpsgd"]["steps_taken"] == 10
    assert len(pd.read_csv(out["out"])) == 50
    (entry,) = ledger.statement("d").reservations
    assert entry.status == "completed" and entry.detail["dpsgd"]["opacus_epsilon_rdp"] <= 1.0
    assert ledger.verify().ok


def test_device_is_ignored_by_synthesizers_that_do_not_train(tmp_path, small_schema, small_data, capsys):
    code, _ = _cli_fit(tmp_path, small_schema, small_data, "--device", "cuda", "--insecure-seed", "1",
                       synthesizer="mst")
    assert code == 0


def test_secure_mode_off_is_loudly_not_secure(small_schema, small_data):
    """secure_mode=False: torch's generator, a loud warning, and the record says so; True and None are secure."""
    quick = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "device": "cpu"}
    with pytest.warns(InsecureNoiseWarning, match="secure_mode=False"):
        synth = DPVAE(epsilon=1.0, delta=1e-6, secure_mode=False, **quick).fit(
            small_data, schema=small_schema, ledger=UNTRACKED)
    assert synth.secure_noise_ is False and synth.dpsgd_["secure_noise"] is False
    assert "torch generator" in synth.noise_source_ and "torch generator" in synth.dpsgd_["noise_source"]
    for mode in (True, None):
        secure = DPVAE(epsilon=1.0, delta=1e-6, secure_mode=mode, **quick).fit(
            small_data, schema=small_schema, ledger=UNTRACKED)
        assert secure.secure_noise_ is True and "ChaCha20 keystream" in secure.dpsgd_["noise_source"]


def test_dp_frequencies_are_charged_and_used(small_schema, small_data):
    synth = DPCTGAN(epsilon=1.0, delta=1e-6, sample_rate=0.1, epochs=1, embedding_dim=8, device="cpu",
                    conditional="dp_frequencies", condition_on="categorical", insecure_seed=4)
    events = synth.plan(small_schema)
    assert [e.kind for e in events] == ["gaussian", "gaussian", "gaussian", "subsampled_gaussian"]
    assert [e.label for e in events][:3] == ["row_count", "cond_frequency", "cond_frequency"]
    synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert synth.condition_frequencies_ is not None and len(synth.condition_frequencies_) == 2
    assert synth.privacy_statement()["epsilon_rdp"] <= 1.0


def test_dpvae_dp_marginals_are_charged_per_code_block_and_rake_the_sample(small_schema, small_data):
    fast = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "insecure_seed": 0}
    plain = DPVAE(epsilon=1.0, delta=1e-6, split_marginals=0.0, **fast)
    synth = DPVAE(epsilon=1.0, delta=1e-6, split_marginals=0.5, **fast)
    assert DPVAE(epsilon=1.0, delta=1e-6).split_marginals == 0.1  # on by default
    t = common.TableTransformer(small_schema, max_levels=1000, synthesizer="dpvae")
    events = synth.plan(small_schema)
    assert [e.kind for e in events] == ["gaussian"] * (1 + len(t.code_spans)) + ["subsampled_gaussian"]
    assert [e.kind for e in plain.plan(small_schema)] == ["gaussian", "subsampled_gaussian"]
    synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    plain.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    # half of rho goes to the marginals: DP-SGD gets the rest, so its noise is larger
    assert synth.dpsgd_["noise_multiplier"] > plain.dpsgd_["noise_multiplier"]
    assert synth.privacy_statement()["epsilon_rdp"] <= 1.0
    assert plain.marginals_ is None
    assert len(synth.marginals_) == len(t.code_spans)
    out = synth.sample(4000, random_state=0)
    codes = encode(out, small_schema)
    # the sample's 1-way frequencies follow the DP marginals (raking), far closer than the pool's
    for span, target in zip(t.code_spans, synth.marginals_, strict=True):
        freq = np.bincount(codes[:, span.column], minlength=span.width) / len(codes)
        assert np.abs(freq - target).sum() < 0.1
    assert synth.sample(50, random_state=1).equals(synth.sample(50, random_state=1))


def test_dpctgan_calibration_pool_rakes_the_sample_to_its_dp_frequencies_at_no_cost(small_schema, small_data):
    """calibration_pool > 1 spends nothing more (the same plan) and draws the sample's 1-way
    frequencies of every condition block close to the DP frequencies already measured."""
    fast = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "device": "cpu", "conditional": "dp_frequencies",
            "condition_on": "codes", "insecure_seed": 4}
    raked = DPCTGAN(epsilon=1.0, delta=1e-6, calibration_pool=4, **fast)
    assert raked.plan(small_schema) == DPCTGAN(epsilon=1.0, delta=1e-6, **fast).plan(small_schema)
    raked.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    codes = encode(raked.sample(4000, random_state=0), small_schema)
    t = common.TableTransformer(small_schema, max_levels=1000, synthesizer="dpctgan")
    for span, target in zip(t.code_spans, raked.condition_frequencies_, strict=True):
        assert np.abs(np.bincount(codes[:, span.column], minlength=span.width) / len(codes) - target).sum() < 0.1
    assert raked.sample(50, random_state=1).equals(raked.sample(50, random_state=1))


def test_weight_average_is_an_exponential_moving_average_of_weights_and_batchnorm_statistics():
    import torch

    from dpsynth.synth.dpsgd.averaging import WeightAverage, decay_for

    assert decay_for(0.25, 2000) == pytest.approx(0.998)
    assert decay_for(0.0, 2000) == 0.0 and decay_for(0.5, 1) == 0.0  # no average; too few steps to average

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, 0.75)
    assert avg.model is not net
    start = [t.clone() for t in (*net.parameters(), *net.buffers()) if t.is_floating_point()]
    with torch.no_grad():
        for t in (*net.parameters(), net[1].running_mean):
            t.add_(1.0)
        net[1].num_batches_tracked.add_(3)
    avg.update(net)
    after = [t for t in (*avg.model.parameters(), *avg.model.buffers()) if t.is_floating_point()]
    now = [t for t in (*net.parameters(), *net.buffers()) if t.is_floating_point()]
    for a, s0, s1 in zip(after, start, now, strict=True):
        torch.testing.assert_close(a, 0.75 * s0 + 0.25 * s1)
    assert avg.model[1].num_batches_tracked.item() == 3  # an integer buffer: copied, not averaged
    plain = WeightAverage(net, 0.0)
    assert plain.model is net
    plain.update(net)


def test_dpctgan_generator_average_changes_the_kept_generator_not_the_training_or_the_plan(small_schema,
                                                                                          small_data):
    """generator_average is post-processing: the same plan, the same seeded training (the losses,
    which the live generator and the DP discriminator give, are equal), another kept generator."""
    import torch

    fast = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "device": "cpu", "insecure_seed": 3}
    averaged = DPCTGAN(epsilon=1.0, delta=1e-6, **fast)  # the default: a quarter of the steps
    last = DPCTGAN(epsilon=1.0, delta=1e-6, generator_average=0, **fast)
    assert averaged.plan(small_schema) == last.plan(small_schema)
    averaged.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    last.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert averaged.losses_ == last.losses_
    kept = [torch.cat([p.flatten() for p in m.generator_.parameters()]) for m in (averaged, last)]
    assert not torch.equal(kept[0], kept[1])
    assert len(averaged.sample(50, random_state=0)) == 50


def test_dpvae_decoder_average_keeps_an_averaged_decoder_from_the_same_training(small_schema, small_data):
    """decoder_average is a function of the DP iterates: the same plan and the same seeded steps
    (the encoder, which only the live model has, ends equal), another kept decoder."""
    import torch

    fast = {"sample_rate": 0.1, "epochs": 2, "device": "cpu", "insecure_seed": 5}
    seen = []
    fits = []
    for share in (0.8, 0.0):
        synth = DPVAE(epsilon=1.0, delta=1e-6, decoder_average=share, **fast)
        synth._training_observer = seen.append  # the live model Opacus trains
        synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)
        fits.append(synth)
    assert fits[0].plan(small_schema) == fits[1].plan(small_schema)
    live = [torch.cat([p.flatten() for p in m.encoder.parameters()]) for m in seen]
    assert torch.equal(live[0], live[1])
    kept = [torch.cat([p.flatten() for p in f.decoder_.parameters()]) for f in fits]
    assert not torch.equal(kept[0], kept[1])
    last = torch.cat([p.flatten() for p in seen[1].decoder.parameters()])
    assert torch.equal(kept[1].cpu(), last.cpu())
    assert len(fits[0].sample(30, random_state=0)) == 30
    with pytest.raises(ParameterError, match=r"decoder_average \(2\) must be in \[0, 1\]"):
        DPVAE(epsilon=1.0, delta=1e-6, decoder_average=2).plan(small_schema)


def test_conditions_on_binned_numeric_codes_are_charged_per_block(small_schema, small_data):
    """condition_on=codes: cond vectors (and the DP frequencies, one charged histogram per block)
    cover the binned numeric columns' public bins as well as the categorical levels."""
    synth = DPCTGAN(epsilon=1.0, delta=1e-6, sample_rate=0.1, epochs=1, embedding_dim=8, device="cpu",
                    conditional="dp_frequencies", condition_on="codes", generator_steps=2, insecure_seed=4)
    t = common.TableTransformer(small_schema, max_levels=1000, synthesizer="dpctgan")
    assert len(t.code_spans) > len(t.categorical_spans)
    events = synth.plan(small_schema)
    assert [e.kind for e in events] == ["gaussian"] * (1 + len(t.code_spans)) + ["subsampled_gaussian"]
    synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert len(synth.condition_frequencies_) == len(synth.condition_spans_) == len(t.code_spans)
    assert synth.privacy_statement()["epsilon_rdp"] <= 1.0
    assert len(synth.sample(50, random_state=0)) == 50


def test_demo_releases_a_dp_sgd_generator_through_the_gate(tmp_path, monkeypatch, capsys):
    """`dpsynth demo --synthesizer dpvae` is a full release (short training; the permissive policy, so that
    the fidelity of a 0.05-epoch model does not decide), with secure noise named in the report."""
    from dpsynth import demo

    quick = {"epochs": 0.05, "sample_rate": 0.05, "embedding_dim": 8, "compress_dims": [16],
             "decompress_dims": [16], "device": "cpu"}
    monkeypatch.setitem(demo.DEMO_PARAMS, "dpvae", quick)
    assert main(["demo", "--out", str(tmp_path), "--synthesizer", "dpvae", "--policy", "permissive"]) == 0
    report = json.loads((tmp_path / "release" / "publish" / "report.json").read_text())
    assert report["decision"]["status"] == "released" and report["release"]["synthesizer"] == "dpvae"
    # the row count released is the fit's noisy count (σ ≈ 57 rows at ε = 1, δ = 1e-9), not the private 32,561
    assert report["release"]["rows_source"] == "dp_estimate" and abs(report["release"]["rows"] - 32561) < 1000
    assert report["release"]["secure_noise"] is True
    assert report["release"]["noise_source"].startswith("DP-SGD noise and Poisson sampling: ChaCha20 keystream")
    assert report["evidence"]["audit"]["method"] == "canary_one_run_blackbox"  # the gate's default audit
    assert "RELEASED" in capsys.readouterr().out


def test_the_default_policy_blocks_a_dp_sgd_demo_without_secure_noise_and_charges_nothing(tmp_path, monkeypatch,
                                                                                           capsys):
    """secure_mode=False (torch's generator): the default policy blocks before the charge."""
    from dpsynth import demo
    from dpsynth.privacy.ledger import Ledger

    monkeypatch.setitem(demo.DEMO_PARAMS, "dpctgan", {"secure_mode": False, "device": "cpu"})
    assert main(["demo", "--out", str(tmp_path), "--synthesizer", "dpctgan"]) == 1
    report = json.loads((tmp_path / "release" / "publish" / "report.json").read_text())
    assert [r.split(":")[0] for r in report["decision"]["reasons"]] == ["privacy.secure_noise"]
    assert Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True).statement("adult").to_dict()["releases"] == 0
    assert "BLOCKED" in capsys.readouterr().out
