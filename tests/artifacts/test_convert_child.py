import pytest

from quantscope.artifacts.child import ChildFailed, run_child
from quantscope.errors import FormatError

pytestmark = pytest.mark.unit


def test_child_returns_json_result():
    assert run_child("quantscope.artifacts.child:echo", {"x": 1, "y": [1, 2]}) == {"x": 1, "y": [1, 2]}


def test_child_errors_keep_their_type():
    with pytest.raises(FormatError, match="not a GGUF"):
        run_child("quantscope.models.gguf:validate_gguf", {"path": __file__})
    with pytest.raises(ChildFailed) as info:
        run_child("quantscope.artifacts.child:echo_missing", {})
    assert info.value.kind == "AttributeError"



def test_a_runtime_names_the_errors_that_cross_back_as_themselves():
    """The generic child imports no runtime: a converter passes its own types (Unsupported) in `raises`."""
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        run_child("ipaddress:ip_address", {"address": "not an address"}, raises=(ValueError,))
    with pytest.raises(ChildFailed) as info:
        run_child("ipaddress:ip_address", {"address": "not an address"})
    assert info.value.kind == "ValueError"


def test_artifacts_import_nothing_but_the_standard_library_paths_and_errors():
    """The generic cache and child sit below every runtime: a runtime names its converter by a
    "module:attr" string, so no import (even one inside a function) reaches backends/ or models/."""
    import ast
    import sys
    from pathlib import Path

    import quantscope.artifacts

    allowed = {"quantscope.paths", "quantscope.errors", "quantscope.progress",  # bottom-layer modules
               "quantscope.artifacts.cache", "quantscope.artifacts.child"}
    for path in Path(quantscope.artifacts.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "quantscope":
                names = [f"quantscope.{a.name}" for a in node.names]  # from quantscope import paths
            elif isinstance(node, ast.ImportFrom):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = name in allowed if top == "quantscope" else top in sys.stdlib_module_names or top == "__future__"
                assert ok, f"artifacts/{path.name} imports {name}"
