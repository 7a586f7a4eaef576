"""Sphinx configuration: the trio-mqtt documentation site (bash scripts/docs builds it)."""

from __future__ import annotations

import trio_mqtt

project = "trio-mqtt"
author = "the trio-mqtt developers"
release = trio_mqtt.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
html_theme = "furo"
html_title = f"trio-mqtt {release}"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
myst_heading_anchors = 3
# No intersphinx: the build must work offline (CI machines reach only package registries).
nitpicky = True  # every cross-reference must resolve, but for these:
nitpick_ignore_regex = [
    # No intersphinx (offline builds): the standard library's and Trio's names stay unlinked.
    (r"py:.*", r"(collections\.abc|contextlib|ssl|os|trio|trio\.abc)\.\w+"),
    # ... nor OpenTelemetry's (trio_mqtt.otel's signature: metrics.MeterProvider).
    (r"py:class", r"(opentelemetry\.)?metrics\.\w+"),
    # Prose in a Raises or Returns section ("Nothing.", "Whatever the storage raises"), which
    # napoleon takes for a type: any target with a space in it, and "Nothing".
    (r"py:(exc|class)", r".* .*|Nothing\.?"),
    # Type aliases and a protocol that signatures show by name: StrPath (str | os.PathLike),
    # Transport (the Literal of transport names), Acknowledgement (Message's acknowledger).
    (r"py:class", r"StrPath|Transport|Acknowledgement"),
]
exclude_patterns = ["_build"]
