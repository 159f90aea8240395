import pytest

from quantscope.errors import UserError
from quantscope.registry import Registry

pytestmark = pytest.mark.unit


def test_duplicate_is_rejected():
    r = Registry("backend")
    r.add("torch", object)
    with pytest.raises(ValueError, match="already registered"):
        r.add("torch", object)


def test_typo_suggests_the_near_name():
    r = Registry("backend")
    r.add("torchao", object)
    r.add("llamacpp", object)
    with pytest.raises(UserError, match="Did you mean 'torchao'"):
        r.get("torchoa")


def test_lazy_entry_is_imported_on_first_use():
    r = Registry("thing")
    r.add("json-dumps", "json:dumps")
    import json

    assert r.get("json-dumps") is json.dumps
