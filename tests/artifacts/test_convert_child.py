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
