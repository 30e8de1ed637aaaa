"""The synthesizer base class: the registry refuses to overwrite a name, and the noise provenance a
release gates on."""

from __future__ import annotations

import pytest

import dpsynth.synth.base as base
from dpsynth.exceptions import ParameterError
from dpsynth.synth import AIM, MST, get_synthesizer, register, registered


@pytest.fixture
def registry(monkeypatch):
    """A copy of the registry for the test: what it registers is gone afterwards."""
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))


class OtherMST(MST):
    name = "mst"


class NewName(MST):
    name = "new_name_for_a_test"


def test_register_refuses_another_class_under_a_taken_name(registry):
    with pytest.raises(ParameterError) as caught:
        register(OtherMST)
    assert str(caught.value) == (
        "synthesizer name ('mst') must be unique: it is already registered to dpsynth.synth.mst.MST, so "
        f"{OtherMST.__module__}.OtherMST needs another name")
    assert get_synthesizer("mst") is MST  # unchanged


def test_register_accepts_the_same_class_again_and_a_new_name(registry):
    assert register(MST) is MST
    assert get_synthesizer("mst") is MST
    assert register(NewName) is NewName
    assert registered()["new_name_for_a_test"] is NewName


def test_the_registry_is_restored_after_a_test():
    assert "new_name_for_a_test" not in registered()


@pytest.mark.parametrize("cls", [MST, AIM])
def test_noise_provenance_of_the_mbi_synthesizers(cls):
    assert cls(epsilon=1.0, delta=1e-6).noise_provenance() == (True, "noise from OpenDP's exact samplers")
    assert cls(epsilon=1.0, delta=1e-6, insecure_seed=3).noise_provenance() == (
        False, "the noise is seeded (insecure_seed): for tests only")


def test_noise_provenance_of_a_plugin_is_its_own_claim():
    class Wrapped(MST):
        plugin = True

    assert Wrapped(epsilon=1.0, delta=1e-6).noise_provenance() == (
        True, "the generator reports secure_noise_ after its fit (its own claim, unverified)")
    assert Wrapped(epsilon=1.0, delta=1e-6, insecure_seed=0).noise_provenance()[0] is False
