"""Classes the application gets from the client but never builds itself."""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class NoPublicConstructor(ABCMeta):
    """A metaclass whose classes cannot be called: the package makes their instances with
    ``Class._create(...)`` (trio's pattern), so that a constructor taking internals is not
    part of the public API."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor"
        )

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        instance: T = super().__call__(*args, **kwargs)  # type: ignore[misc]
        return instance


def claim_names(
    module: str, names: Iterable[str], namespace: Mapping[str, Any]
) -> None:
    """Make the objects a public namespace exports report it as their ``__module__`` (trio and
    httpx do the same), unless they already report a public one."""
    for name in names:
        obj = namespace[name]
        path = getattr(obj, "__module__", "") or ""
        if path.startswith("trio_mqtt.") and any(
            part.startswith("_") for part in path.split(".")
        ):
            obj.__module__ = module
