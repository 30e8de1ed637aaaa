"""PII scan benchmark: recall per entity type, false positives on clean columns, throughput against
``AnalyzerEngine.analyze`` once per cell, peak memory. A Faker table with a fixed seed.

    python benchmarks/pii_scan.py --rows 20000 [--baseline-sample 1500] [--json OUT]

Two per-cell baselines, ``AnalyzerEngine.analyze(cell)`` once per cell (NER on every cell, no cache),
are timed on the same random sample of cells (seeded), in three chunks alternating with the two
scans, and extrapolated to the table:

- ``stock``: stock Presidio as a user sets it up offline with the same spaCy model: an
  ``AnalyzerEngine`` over ``NlpEngineProvider({"nlp_engine_name": "spacy", "models": [...]})``, its
  default recognizer registry and NER configuration, the model's full pipeline (parser on). This is
  the issue's "calling ``AnalyzerEngine.analyze`` once per cell".
- ``tuned``: dpsynth's own engine (parser off, dpsynth's extra recognizers), a faster baseline.

The baselines are for time only: recall is measured on the scan's answer. Their per-cell answers on
the sample are compared for the pattern (non-NER) results, with the differences counted by cause.
``--check-identity`` compares the scan's answer with the tuned engine's full ``analyze`` on every
distinct value.

``--compare-batch N`` measures only what the scan's reading of Presidio's internals
(:mod:`dpsynth.pii.presidio_compat`: prefilter, regex screen, reach, lemmas on demand) is worth:
the scan of the table (no schema, cold cache) N times each way, in alternating order, as dpsynth
runs it (``scan``) and with Presidio's ``BatchAnalyzerEngine`` on every distinct value, no shortcut
but the cache (``batch``); median CPU seconds, and whether the findings are the same.
Both wall-clock and CPU time (``time.process_time``, this process only) are measured: on a shared
machine the CPU-time ratio is the one other processes do not disturb.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from faker import Faker

from dpsynth.pii.engine import LANGUAGE, MODEL_PACKAGE, Engine
from dpsynth.pii.findings import Match, ScanReport, resolve_overlaps
from dpsynth.pii.profile import ColumnProfile
from dpsynth.pii.scan import PIIScanner
from dpsynth.schema.schema import Schema

PRODUCTS = ["Stainless Steel Water Bottle", "Wireless Mouse", "USB-C Charging Cable", "Organic Green Tea",
            "Ceramic Coffee Mug", "Yoga Mat", "LED Desk Lamp", "Bluetooth Speaker", "Cotton T-Shirt",
            "Running Shoes", "Notebook A5", "Garden Hose 15m", "Electric Kettle", "Phone Case", "Backpack 20L"]
CLEAN = ["product", "amount", "category"]
# entity types planted in each column (notes: per row, see make_table)
TRUTH = {"name": "PERSON", "address": "LOCATION", "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER",
         "credit_card": "CREDIT_CARD", "ssn": "US_SSN", "iban": "IBAN_CODE", "ip": "IP_ADDRESS"}


def make_table(rows: int, seed: int) -> tuple[pd.DataFrame, list[set[str]]]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rnd = random.Random(seed)
    data: dict[str, list[str]] = {k: [] for k in [*TRUTH, "notes", *CLEAN]}
    notes_truth: list[set[str]] = []
    for _ in range(rows):
        name = fake.name()
        data["name"].append(name)
        data["address"].append(fake.address().replace("\n", ", "))
        email, phone = fake.email(), fake.phone_number()
        data["email"].append(email)
        data["phone"].append(phone)
        data["credit_card"].append(fake.credit_card_number())
        data["ssn"].append(fake.ssn())
        data["iban"].append(fake.iban())
        data["ip"].append(fake.ipv4())
        kind = rnd.randrange(4)
        if kind == 0:
            note, truth = f"Customer {name} asked for a refund; call back on {phone}.", {"PERSON", "PHONE_NUMBER"}
        elif kind == 1:
            note, truth = f"Send the invoice to {email} before Friday.", {"EMAIL_ADDRESS"}
        elif kind == 2:
            note, truth = f"{name} updated the card on file to {fake.credit_card_number()}.", {"PERSON", "CREDIT_CARD"}
        else:
            note, truth = fake.sentence(nb_words=10), set()
        data["notes"].append(note)
        notes_truth.append(truth)
        data["product"].append(rnd.choice(PRODUCTS))
        data["amount"].append(f"{rnd.uniform(1, 500):.2f}")
        data["category"].append(f"CAT-{rnd.randrange(1, 25):02d}")
    return pd.DataFrame(data), notes_truth


def schema_of_clean_columns() -> Schema:
    """What a dpsynth release declares for the clean columns (the PII columns are undeclared)."""
    return Schema.from_dict({"columns": [
        {"name": "product", "kind": "categorical", "levels": PRODUCTS},
        {"name": "amount", "kind": "continuous", "bounds": [0, 500], "bins": 10},
        {"name": "category", "kind": "categorical", "levels": [f"CAT-{i:02d}" for i in range(1, 25)]},
    ]})


def measure(report: ScanReport, table: pd.DataFrame, notes_truth: list[set[str]]) -> dict:
    cells = report.cell_entities
    if cells is None:
        raise SystemExit("measure() needs a scan with keep_cells=True")
    recall: dict[str, list[int]] = {}
    for column, entity in TRUTH.items():
        hits = sum(entity in s for s in cells[column])
        recall.setdefault(entity, [0, 0])
        recall[entity][0] += hits
        recall[entity][1] += len(table)
    for truth, found in zip(notes_truth, cells["notes"], strict=True):
        for entity in truth:
            recall.setdefault(entity, [0, 0])
            recall[entity][0] += entity in found
            recall[entity][1] += 1
    column_recall = {c: round(sum(e in s for s in cells[c]) / len(table), 4) for c, e in TRUTH.items()}
    fp_cells = sum(bool(s) for c in CLEAN for s in cells[c])
    return {"recall": {e: round(h / n, 4) for e, (h, n) in sorted(recall.items())}, "column_recall": column_recall,
            "clean_false_positive_share": round(fp_cells / (len(CLEAN) * len(table)), 5),
            "clean_false_positive_cells": fp_cells}


def stock_presidio_engine() -> Any:
    """Stock Presidio as a user would set it up offline with the model dpsynth loads: the default
    recognizer registry, Presidio's default NER configuration and the model's full pipeline."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp_engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": LANGUAGE, "model_name": MODEL_PACKAGE}]}).create_engine()
    return AnalyzerEngine(nlp_engine=nlp_engine)


#: dpsynth's recognizers that stock Presidio does not have (dpsynth/pii/recognizers.py)
DPSYNTH_RECOGNIZERS = {"LuhnCreditCardRecognizer", "NorthAmericanPhoneRecognizer"}


def compare_pattern_results(tuned: dict, stock: dict, stock_unthresholded: Callable[[Any], list]) -> dict:
    """Per-cell pattern results (every recognizer but spaCy's NER) of the two baselines on the same
    cells, as (entity type, start, end) spans; differences counted by entity type and cause. A span
    only the tuned engine reports, from a recognizer both have, is looked up in the stock engine's
    answer without a threshold (``stock_unthresholded(cell)``): there it scores below 0.5 when only a
    context word the stock engine drops as a stop word ("call") lifts it. Kinds and counts only,
    never a value."""
    def spans(results: list) -> dict:
        return {(e, a, b): (score, rec) for e, a, b, score, rec in results if rec != "SpacyRecognizer"}

    cells = differing = 0
    causes: dict[str, int] = {}
    scores_differ = 0
    for key in tuned:
        t, s = spans(tuned[key]), spans(stock[key])
        cells += 1
        differing += t.keys() != s.keys()
        scores_differ += any(abs(t[k][0] - s[k][0]) > 1e-9 for k in t.keys() & s.keys())
        for k in t.keys() - s.keys():
            label = f"only tuned: {k[0]} by {t[k][1]}"
            if t[k][1] not in DPSYNTH_RECOGNIZERS:
                low = spans(stock_unthresholded(key)).get(k)
                label += (f" (stock: same recognizer, score {low[0]:.2f} < 0.5, tuned {t[k][0]:.2f})" if low
                          else " (stock: not found at any score)")
            causes[label] = causes.get(label, 0) + 1
        for k in s.keys() - t.keys():
            label = f"only stock: {k[0]} by {s[k][1]}"
            causes[label] = causes.get(label, 0) + 1
    return {"cells": cells, "cells_differing": differing, "cells_with_a_score_difference": scores_differ,
            "spans_by_cause": dict(sorted(causes.items()))}


def check_identity(table: pd.DataFrame, engine: Engine) -> dict:
    """Compare the scan's per-value answer with plain ``AnalyzerEngine.analyze`` (full pipeline, all
    the profile's entity types, the column's context words) on every distinct value."""
    import numpy as np

    scanner = PIIScanner(engine=engine)
    values = differences = 0
    for column in table.columns:
        distinct = list(dict.fromkeys(table[column]))
        profile, _ = scanner._profile(column, table[column], np.asarray(distinct, dtype=object), None)
        fast = scanner._analyse(profile, distinct)
        nlp = engine.nlp if profile.ner else engine.no_op
        for text, artifacts in nlp.process_batch(distinct, language="en", batch_size=1000):
            full = resolve_overlaps(engine.analyzer.analyze(text=text, language="en", entities=list(profile.entities),
                                                    nlp_artifacts=artifacts, context=list(profile.context),
                                                    score_threshold=scanner.threshold))
            values += 1
            differences += sorted(fast[text]) != sorted(full)
    return {"values": values, "differences": differences}


class BatchScanner(PIIScanner):
    """The scan with every distinct value sent to Presidio's ``BatchAnalyzerEngine`` (no prefilter,
    no screen, no reach, no lemma gate): the cache, profiles and column rule only."""

    def _analyse(self, profile: ColumnProfile, texts: list[str]) -> dict[str, list[Match]]:
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, RecognizerRegistry

        analyzer = self.engine.analyzer
        if not profile.ner:  # the pattern-only engine, as the scan uses for columns NER does not read
            patterns = [r for r in analyzer.registry.recognizers if r.name != "SpacyRecognizer"]
            analyzer = AnalyzerEngine(registry=RecognizerRegistry(recognizers=patterns, supported_languages=[LANGUAGE]),
                                      nlp_engine=self.engine.no_op, supported_languages=[LANGUAGE])
        self.analyze_calls += len(texts)
        results = BatchAnalyzerEngine(analyzer).analyze_iterator(
            texts, LANGUAGE, batch_size=self.batch_size, entities=list(profile.entities),
            context=list(profile.context), allow_list=list(profile.allow_list) or None,
            score_threshold=self.threshold)
        return {t: resolve_overlaps(r) for t, r in zip(texts, results, strict=True)}


def compare_batch(table: pd.DataFrame, reps: int) -> dict:
    """CPU seconds of the scan as dpsynth runs it and with ``BatchAnalyzerEngine`` (see the module
    docstring); the runs alternate, each on a cold cache."""
    import statistics

    engine = PIIScanner().engine
    variants = ("scan", "batch")
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    findings: dict[str, str] = {}
    for i in range(reps):
        for variant in variants if i % 2 == 0 else variants[::-1]:
            scanner = (BatchScanner if variant == "batch" else PIIScanner)(engine=engine)
            c = time.process_time()
            report = scanner.scan(table)
            cpu[variant].append(round(time.process_time() - c, 2))
            findings.setdefault(variant, json.dumps([f.to_dict() for f in report.findings], sort_keys=True))
    out: dict = {"reps": reps}
    scan = statistics.median(cpu["scan"])
    for variant in variants:
        median = statistics.median(cpu[variant])
        out[variant] = {"cpu_seconds": cpu[variant], "median_cpu_seconds": round(median, 2),
                        "ratio_to_scan": round(median / scan, 2),
                        "same_findings_as_scan": findings[variant] == findings["scan"]}
    return out


def emit(out: dict, path: str | None) -> None:
    """Print the figures, and write them to ``path`` when given."""
    print(json.dumps(out, indent=1))
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-sample", type=int, default=1500, help="cells timed for the per-cell baseline")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--check-identity", action="store_true",
                        help="also check that the scan's answer equals plain Presidio's (full spaCy pipeline, every "
                             "entity type) on every distinct value of every column; exit 1 if not")
    parser.add_argument("--compare-batch", type=int, metavar="N", default=0,
                        help="only time the scan N times as dpsynth runs it and N times with Presidio's "
                             "BatchAnalyzerEngine on every distinct value (alternating), and print the medians")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    table, notes_truth = make_table(args.rows, args.seed)
    if args.compare_batch:
        emit({"rows": args.rows, "compare_batch": compare_batch(table, args.compare_batch)}, args.json)
        return
    t0 = time.perf_counter()
    scanner = PIIScanner()
    build = time.perf_counter() - t0
    out: dict = {"rows": args.rows, "columns": len(table.columns), "cells": table.size,
                 "engine_build_s": round(build, 2),
                 "ner": scanner.engine.ner}
    t0 = time.perf_counter()
    stock = stock_presidio_engine()
    stock_nlp = stock.nlp_engine.nlp[LANGUAGE]
    out["stock_engine"] = {"build_s": round(time.perf_counter() - t0, 2), "model": MODEL_PACKAGE,
                           "pipeline": list(stock_nlp.pipe_names),
                           "recognizers": len(stock.registry.recognizers),
                           "shares_vocab_with_tuned": stock_nlp.vocab is scanner.engine.nlp.nlp[LANGUAGE].vocab
                           if scanner.engine.nlp is not None else False}
    # the per-cell baselines: AnalyzerEngine.analyze on each cell of a random sample, timed in three
    # chunks alternating with the two scans (before, between, after), so that load from other
    # processes on a shared machine falls on both sides; within a chunk the two engines take turns
    # going first
    rnd = random.Random(args.seed + 1)
    cells = [(r, c) for r in range(len(table)) for c in table.columns]
    sample = rnd.sample(cells, min(args.baseline_sample, len(cells)))
    chunks = [sample[i::3] for i in range(3)]
    analyzers = {"stock": stock, "tuned": scanner.engine.analyzer}
    timed = {label: [0.0, 0.0] for label in analyzers}  # wall, CPU
    answers: dict[str, dict] = {label: {} for label in analyzers}

    def baseline(label: str, chunk: list[tuple[int, str]]) -> None:
        analyzer, kept = analyzers[label], answers[label]
        t, c = time.perf_counter(), time.process_time()
        for r, col in chunk:
            kept[r, col] = analyzer.analyze(text=str(table.iat[r, table.columns.get_loc(col)]), language="en",
                                            score_threshold=0.5)
        timed[label][0] += time.perf_counter() - t
        timed[label][1] += time.process_time() - c

    def baselines(i: int) -> None:
        for label in (("stock", "tuned") if i % 2 == 0 else ("tuned", "stock")):
            baseline(label, chunks[i])

    baselines(0)
    for i, (label, schema) in enumerate((("no_schema", None), ("schema", schema_of_clean_columns()))):
        scanner = PIIScanner(engine=scanner.engine)  # a cold cache for each run
        t, c = time.perf_counter(), time.process_time()
        report = scanner.scan(table, schema=schema, keep_cells=True)
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
        out[label] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                      "cells_per_s": round(table.size / seconds, 1),
                      **measure(report, table, notes_truth), "stats": report.stats,
                      "modes": {c.name: c.mode for c in report.columns},
                      "suppressed": {c.name: c.suppressed for c in report.columns if c.suppressed}}
        baselines(i + 1)
    for label, (wall, cpu) in timed.items():
        per_cell, per_cell_cpu = wall / len(sample), cpu / len(sample)
        out[f"per_cell_baseline_{label}"] = {
            "sampled_cells": len(sample), "ms_per_cell": round(per_cell * 1e3, 3),
            "cpu_ms_per_cell": round(per_cell_cpu * 1e3, 3),
            "extrapolated_seconds": round(per_cell * table.size, 1),
            "extrapolated_cpu_seconds": round(per_cell_cpu * table.size, 1), "cells_per_s": round(1 / per_cell, 1)}
        for scan in ("no_schema", "schema"):
            out[scan][f"speedup_vs_{label}"] = round(per_cell * table.size / out[scan]["seconds"], 1)
            out[scan][f"cpu_speedup_vs_{label}"] = round(per_cell_cpu * table.size / out[scan]["cpu_seconds"], 1)
    flat = {label: {key: [(r.entity_type, r.start, r.end, r.score,
                           (r.recognition_metadata or {}).get("recognizer_name")) for r in results]
                    for key, results in kept.items()} for label, kept in answers.items()}

    def stock_unthresholded(key: tuple[int, str]) -> list:
        text = str(table.iat[key[0], table.columns.get_loc(key[1])])
        return [(r.entity_type, r.start, r.end, r.score, (r.recognition_metadata or {}).get("recognizer_name"))
                for r in stock.analyze(text=text, language="en")]

    out["baseline_pattern_comparison"] = compare_pattern_results(flat["tuned"], flat["stock"], stock_unthresholded)
    if args.check_identity:
        out["identity"] = check_identity(table, scanner.engine)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    emit(out, args.json)
    if args.check_identity and out["identity"]["differences"]:
        raise SystemExit(f"the scan differs from plain Presidio on {out['identity']['differences']} values")


if __name__ == "__main__":
    main()
