"""The matching core as installed: compiled by mypyc, current with its sources, and matching as the sources do.

Compiled code is not the same program: a tuple built again where the source kept the same object, or a value
of a type the annotations did not foresee, changes results or raises. So the S orgs are matched both ways and
the results must be equal, field by field.
"""

from __future__ import annotations

import importlib.machinery
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

import matching
from matching import AccountLinkResult, MatchResult, Pin, PreviousMatch, compiled

ROOT = Path(__file__).resolve().parent.parent

# Matches the S org of a seed with the matcher this process imported, and prints the results' digest.
_MATCH_S_ORG = textwrap.dedent("""
    import hashlib, sys
    from config.matching import MatchingConfig
    from matching import match
    from matching.compiled import running_compiled
    from tests.test_matching_accuracy import small_org
    accounts, leads, contacts, _ = small_org(int(sys.argv[1]))
    results = match(leads, accounts, MatchingConfig(), contacts=contacts)
    print("compiled" if running_compiled() else "sources", len(results),
          hashlib.sha256(repr(results).encode()).hexdigest())
""")


def _match_s_org(seed: int, sources: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != compiled.SOURCES_VARIABLE}
    if sources:
        env[compiled.SOURCES_VARIABLE] = "1"
    done = subprocess.run([sys.executable, "-c", _MATCH_S_ORG, str(seed)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=True)
    return done.stdout.split()


def test_the_compiled_modules_are_those_pyproject_compiles() -> None:
    hook = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "hooks"]["mypyc"]
    assert sorted(hook["include"]) == [f"/matching/{name}.py" for name in sorted(compiled.COMPILED_MODULES)]


def test_the_installed_core_is_compiled_and_current() -> None:
    """`make install` compiles it; the speed figures of issue 6 are the compiled core's."""
    assert Path(matching.__file__).resolve().parent == ROOT / "matching"
    assert compiled.stale_modules() == []
    for name in compiled.COMPILED_MODULES:
        assert compiled.compiled_file(name) is not None, f"matching/{name}.py is not compiled: run `make install`"
    assert compiled.running_compiled()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_and_source_core_match_alike(seed: int) -> None:
    from_sources = _match_s_org(seed, sources=True)
    as_compiled = _match_s_org(seed, sources=False)
    assert from_sources[0] == "sources" and as_compiled[0] == "compiled"
    assert int(from_sources[1]) > 1000  # the S org's leads
    assert as_compiled[1:] == from_sources[1:]


def test_results_cross_process_boundaries() -> None:
    """Forked jobs send these back pickled; a result that cannot be unpickled leaves the pool waiting for good."""
    made = [MatchResult(1, 2, "auto", 0.97, "domain+name", "domain acme.com = acme.com", {"candidates": 3}, 2),
            AccountLinkResult(7, 3, "salesforceaccountid", 1.0), Pin(9, "admin@example.com"),
            PreviousMatch(9, 0.8, "review")]
    assert [pickle.loads(pickle.dumps(item)) for item in made] == made


def _fake_module(folder: Path, name: str, source_age: float, built_age: float) -> None:
    now = time.time()
    source, built = folder / f"{name}.py", folder / f"{name}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    source.write_text("")
    built.write_bytes(b"")
    os.utime(source, (now - source_age, now - source_age))
    os.utime(built, (now - built_age, now - built_age))


def test_a_source_edited_after_the_build_is_stale(tmp_path: Path) -> None:
    _fake_module(tmp_path, "engine", source_age=60, built_age=600)   # edited nine minutes after the build
    _fake_module(tmp_path, "score", source_age=600, built_age=60)    # built after its last edit
    _fake_module(tmp_path, "names", source_age=600, built_age=602)   # unpacked from one wheel, two seconds apart
    (tmp_path / "geo.py").write_text("")                              # never compiled
    assert compiled.stale_modules(tmp_path, ["engine", "score", "names", "geo"]) == ["engine"]


def test_a_stale_core_runs_from_source_with_a_warning(tmp_path: Path) -> None:
    """A copy of the installed packages with engine.py edited after the build: every core module from source."""
    if not compiled.running_compiled():
        pytest.skip("the installed core is not compiled (test_the_installed_core_is_compiled_and_current fails)")
    for package in ("matching", "config", "store"):
        shutil.copytree(ROOT / package, tmp_path / package, copy_function=shutil.copy2)
    for group in ROOT.glob("*__mypyc*"):  # the library the compiled modules share
        shutil.copy2(group, tmp_path / group.name)
    later = time.time() + 60
    os.utime(tmp_path / "matching" / "engine.py", (later, later))
    probe = ("import warnings; warnings.simplefilter('always')\n"
             "import matching, matching.engine as e, matching.score as s\n"
             "print(e.__file__); print(s.__file__)")
    env = {k: v for k, v in os.environ.items() if k != compiled.SOURCES_VARIABLE}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == [str(tmp_path / "matching" / "engine.py"), str(tmp_path / "matching" / "score.py")]
    assert "engine.py changed after the core was compiled" in done.stderr and "make install" in done.stderr
