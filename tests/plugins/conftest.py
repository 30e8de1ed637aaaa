from __future__ import annotations

import pytest
from plugin_fixtures import Files


@pytest.fixture
def files(tmp_path, monkeypatch) -> Files:
    return Files(tmp_path, monkeypatch)
