"""Whether the matching core runs compiled (mypyc), and the sources run instead when the compiled code is stale.

Installing the package compiles the per-person path (``[tool.hatch.build.targets.wheel.hooks.mypyc]`` in
pyproject.toml): about a fifth less time a lead, towards issue 6's million leads a minute. The compiled
modules sit beside their sources and Python imports them first. In an editable install (``make install``) a
source edited or checked out after the build would then be ignored without a word, so a compiled module older
than its source is set aside and every module of the core is imported from source, with a warning that says how
to compile again. It is all or none: compiled code checks the types of what it is given, and a compiled module
rejects the classes of an uncompiled one. ``ABM_MATCHING_SOURCES=1`` asks for the sources too (to step through
them in a debugger, or to compare both, as the tests do).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# The modules pyproject.toml has mypyc compile (tests/test_matching_compiled.py checks the two lists agree).
COMPILED_MODULES: tuple[str, ...] = (
    "claims", "domains", "engine", "firmographics", "geo", "index", "inputs_key", "link", "names", "phones",
    "readings", "review", "score", "slips",
)
SOURCES_VARIABLE = "ABM_MATCHING_SOURCES"
_HERE = Path(__file__).resolve().parent
# A wheel's files are unpacked in one go, in no set order: a source written a moment after its compiled module is
# not an edit. An edit comes minutes after a build, not within seconds.
_SAME_BUILD_SECONDS = 5.0


def compiled_file(name: str, folder: Path = _HERE) -> Path | None:
    """The compiled module installed for ``matching.<name>``, if there is one."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


def stale_modules(folder: Path = _HERE, names: Sequence[str] = COMPILED_MODULES) -> list[str]:
    """The compiled modules whose source changed after they were built."""
    stale = []
    for name in names:
        built, source = compiled_file(name, folder), folder / f"{name}.py"
        if built is not None and source.exists() and \
                source.stat().st_mtime > built.stat().st_mtime + _SAME_BUILD_SECONDS:
            stale.append(name)
    return stale


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Imports the named modules of this package from their ``.py`` files, ahead of their compiled modules."""

    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self.folder = folder
        self.names = frozenset(f"{__package__}.{name}" for name in names)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, self.folder / f"{fullname.rpartition('.')[2]}.py")


def choose_sources_or_compiled() -> None:
    """Called by the package before it imports the core: sources instead of stale or unwanted compiled modules."""
    if any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        return
    wanted = os.environ.get(SOURCES_VARIABLE, "").strip().lower() in ("1", "true", "yes")
    stale = [] if wanted else stale_modules()
    if stale:
        warnings.warn(
            f"matching: {', '.join(f'{name}.py' for name in stale)} changed after the core was compiled; running "
            "it from source (slower). Run `make install` (or `pip install -e .`) to compile it again.",
            RuntimeWarning, stacklevel=3)
    if wanted or stale:
        sys.meta_path.insert(0, _SourcesFirst(_HERE, COMPILED_MODULES))


def running_compiled() -> bool:
    """Whether the core was imported compiled: the benchmarks print it beside their figures."""
    from matching import engine, score

    return all(not module.__file__ or not module.__file__.endswith(".py") for module in (engine, score))
