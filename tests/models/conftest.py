from pathlib import Path

import pytest

from quantscope.models.bundled import bundled_path


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test writes its digest and dequant caches into its own folder, never ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(scope="session")
def bundled() -> Path:
    try:
        return Path(bundled_path())
    except Exception as e:  # the bundled model is an install-time extra
        pytest.skip(str(e))
