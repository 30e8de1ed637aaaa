"""The Presidio compatibility check: the installed Presidio passes; another version, or a changed
signature of a function the scan calls, fails loudly before any engine is built, naming the change."""

import pytest

from dpsynth.pii import presidio_compat
from dpsynth.pii.presidio_compat import UnsupportedPresidioError


@pytest.fixture
def fresh_check():
    presidio_compat.check_presidio.cache_clear()
    yield
    presidio_compat.check_presidio.cache_clear()


def test_the_installed_presidio_is_supported(fresh_check):
    assert presidio_compat.problems() == []
    presidio_compat.check_presidio()


@pytest.mark.parametrize("version", ["2.3.0", "2.2.365", "3.0.0rc1"])
def test_another_version_fails_loudly_before_the_engine_is_built(fresh_check, monkeypatch, version):
    from dpsynth.pii.engine import build_engine

    monkeypatch.setattr(presidio_compat, "_installed_version", lambda: version)
    with pytest.raises(UnsupportedPresidioError, match=rf"presidio-analyzer {version} is installed; dpsynth's PII "
                                                       r"scan supports presidio-analyzer>=2\.2\.366,<2\.3"):
        build_engine(use_ner=False)


def test_a_changed_signature_is_named(fresh_check, monkeypatch):
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    def changed(self, doc):  # an upstream change: the language argument is gone
        return None

    monkeypatch.setattr(SpacyNlpEngine, "_doc_to_nlp_artifact", changed)
    monkeypatch.setattr(presidio_compat, "_installed_version", lambda: "2.2.370")
    message = (r"presidio-analyzer 2\.2\.370: presidio_analyzer\.nlp_engine\.SpacyNlpEngine\._doc_to_nlp_artifact "
               r"no longer takes language")
    with pytest.raises(UnsupportedPresidioError, match=message):
        presidio_compat.check_presidio()


def test_a_removed_constant_is_named(fresh_check, monkeypatch):
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    monkeypatch.delattr(PhoneRecognizer, "SCORE")
    assert presidio_compat.problems() == [
        f"presidio-analyzer {presidio_compat._installed_version()}: "
        "presidio_analyzer.predefined_recognizers.PhoneRecognizer.SCORE is gone"]


def test_the_cli_says_it_in_one_line(fresh_check, monkeypatch, tmp_path, capsys):
    from dpsynth.cli import main

    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    monkeypatch.setattr(presidio_compat, "_installed_version", lambda: "2.3.1")
    assert main(["scan", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "presidio-analyzer 2.3.1 is installed" in err
