"""Fast keyword-only constructors for frozen attrs values, for the per-message hot paths.

A frozen attrs class's ``__init__`` parses keywords and sets each field through
``object.__setattr__``, around the frozen guard: for the seven fields of a PUBLISH that is four
times the cost of plain attribute stores, paid for every message received.

:func:`fast_constructor` avoids it without giving up immutability. The class declares its fields'
slots in a plain base class (``__slots__`` and nothing else), which attrs reuses instead of adding its own; the
constructor allocates an instance of that base, fills the slots with ordinary (specialised,
cheap) attribute stores, and then assigns ``__class__``: the layouts are the same, so the object
becomes an instance of the frozen class, equal, hashable and ``attrs.evolve``-able like any
other. It runs no converters or validators: it is for values whose fields the caller has
already checked (the codec has, byte by byte). Its arguments are keyword-only (h11's
``_parsed=True`` idea, without the flag): swapping two fields of the same type is a TypeError
at once, and mypy sees it through the Protocol each caller declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


def fast_constructor(cls: type[Any]) -> Callable[..., Any]:
    """A function taking ``cls``'s fields as keyword-only arguments (named as the fields,
    without a leading underscore), returning an instance. ``cls`` is a slotted attrs class
    whose fields are all slots of its base class."""
    base = cls.__base__
    names = [field.name for field in attrs.fields(cls)]
    if set(getattr(base, "__slots__", ())) - {"__weakref__"} != set(names):
        raise TypeError(f"{cls.__name__}'s base must hold exactly its fields")
    for field in attrs.fields(cls):
        if field.converter is not None or field.validator is not None:
            raise TypeError(f"{cls.__name__}.{field.name} has a converter or validator")
    params = [name.lstrip("_") for name in names]
    stores = "".join(
        f"    self.{name} = {param}\n"
        for name, param in zip(names, params, strict=True)
    )
    source = (
        f"def make(*, {', '.join(params)}):\n"
        f"    self = _new(_base)\n{stores}    self.__class__ = _cls\n    return self\n"
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_base": base, "_cls": cls}
    exec(compile(source, f"<fast {cls.__qualname__}>", "exec"), namespace)
    make: Callable[..., Any] = namespace["make"]
    make.__qualname__ = f"fast_constructor({cls.__qualname__})"
    make(
        **dict.fromkeys(params)
    )  # the layouts match, or this raises now rather than later
    return make
