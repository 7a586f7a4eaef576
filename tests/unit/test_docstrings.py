"""Every public function and method says what it takes, gives and raises: Args (when it has
parameters), Returns (when it returns something), and Raises (always: "Nothing" is an answer)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest

import trio_mqtt
import trio_mqtt.testing


def _public_callables() -> Iterator[tuple[str, Callable[..., object]]]:
    for module in (trio_mqtt, trio_mqtt.testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj) and not issubclass(obj, BaseException):
                for attribute, value in vars(obj).items():
                    if not attribute.startswith("_") and inspect.isfunction(value):
                        yield f"{module.__name__}.{name}.{attribute}", value


def _missing(function: Callable[..., object]) -> list[str]:
    doc = inspect.getdoc(function) or ""
    signature = inspect.signature(function)
    parameters = [
        p for p in signature.parameters.values()
        if p.name not in ("self", "cls") and p.kind is not p.VAR_KEYWORD
    ]  # fmt: skip
    missing = []
    if parameters and "Args:" not in doc:
        missing.append("Args")
    if signature.return_annotation not in (
        inspect.Signature.empty,
        None,
        "None",
    ) and not ("Returns:" in doc or "Yields:" in doc):
        missing.append("Returns")
    if "Raises:" not in doc:
        missing.append("Raises")
    return missing


@pytest.mark.parametrize(("name", "function"), list(_public_callables()))
def test_the_docstring_has_its_sections(
    name: str, function: Callable[..., object]
) -> None:
    assert _missing(function) == [], name


def test_the_check_sees_a_missing_section() -> None:
    def undocumented(x: int) -> int:
        """Nothing more."""
        return x

    assert _missing(undocumented) == ["Args", "Returns", "Raises"]
