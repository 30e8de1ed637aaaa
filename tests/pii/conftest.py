"""Shared fixtures of the PII tests: one Presidio engine for the whole session (building it loads spaCy)."""

import pytest

pytest.importorskip("presidio_analyzer", reason="the pii extra is not installed")


@pytest.fixture(scope="session")
def engine():
    from dpsynth.pii.engine import build_engine

    return build_engine()


@pytest.fixture(scope="session")
def planted():
    """A small table with planted PII (Faker, fixed seed) and clean columns; values and their types."""
    import pandas as pd
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(7)
    n = 60
    names = [fake.name() for _ in range(n)]
    table = pd.DataFrame({
        "customer_name": names,
        "email": [fake.email() for _ in range(n)],
        "ssn": [fake.ssn() for _ in range(n)],
        "credit_card": [fake.credit_card_number() for _ in range(n)],
        "iban": [fake.iban() for _ in range(n)],
        "phone": [fake.numerify("###-###-####") for _ in range(n)],
        "notes": [f"Spoke with {name}, phone {fake.numerify('(###) ###-####')}." for name in names],
        "product": [["Blue Kettle", "Garden Hose", "Desk Lamp"][i % 3] for i in range(n)],
        "amount": [f"{(i * 7.31) % 500:.2f}" for i in range(n)],
        "category": [f"C{i % 5}" for i in range(n)],
    })
    return table
