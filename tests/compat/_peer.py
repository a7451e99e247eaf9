"""Runs a peer library's own test suite against tacitrec through a rename-only shim.

The peer's test files are read from a local checkout outside this repository (never copied into
it): the environment variable named by each suite points to the checkout's root. The files are
copied into a temporary folder at run time (so the peer's own package, next to its tests, cannot
shadow the shim), a shim package named like the peer is written beside them whose modules only
re-export tacitrec names, and pytest runs them in a child process. The outcome of every test is
read from pytest's JUnit XML report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, Mapping

import pytest


def peer_root(env_var: str) -> Path:
    """The checkout named by ``env_var``; skips the calling test when it is unset or missing."""
    value = os.environ.get(env_var)
    if not value:
        pytest.skip(f"{env_var} is not set (point it to a checkout of the peer's repository)")
    root = Path(value)
    if not (root / "tests").is_dir():
        pytest.skip(f"{env_var}={value} has no tests/ folder")
    return root


def write_shim(folder: Path, modules: Mapping[str, str]) -> None:
    """Writes a package of re-exporting modules: ``{"implicit.als": "tacitrec.als", ...}``.

    Each module does ``from TARGET import *`` and forwards any other attribute to the target,
    so private and non-``__all__`` names resolve as well. A package's own shimmed submodules
    take precedence over the target's attributes of the same name: with ``{"lightfm":
    "tacitrec", "lightfm.evaluation": "X"}``, ``from lightfm import evaluation`` gives the shim
    of X, not ``tacitrec.evaluation``."""
    for name, target in modules.items():
        parts = name.split(".")
        pkg = folder.joinpath(*parts[:-1]) if len(parts) > 1 else folder
        for i in range(1, len(parts)):
            init = folder.joinpath(*parts[:i], "__init__.py")
            init.parent.mkdir(parents=True, exist_ok=True)
            if not init.exists():
                init.write_text("")
        children = sorted(
            {
                other[len(name) + 1 :].split(".")[0]
                for other in modules
                if other.startswith(name + ".")
            }
        )
        path = folder.joinpath(*parts, "__init__.py") if children else pkg / f"{parts[-1]}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"import importlib as _il\n"
            f"_t = _il.import_module({target!r})\n"
            f"from {target} import *  # noqa: F401,F403\n"
            f"_children = {children!r}\n"
            f"for _c in _children:  # the shimmed submodules, not the target's attributes\n"
            f"    globals().pop(_c, None)\n"
            f"def __getattr__(name):\n"
            f"    if name in _children:\n"
            f"        return _il.import_module(__name__ + '.' + name)\n"
            f"    return getattr(_t, name)\n"
        )


def run_suite(
    root: Path,
    test_files: Iterable[str],
    modules: Mapping[str, str],
    work: Path,
    timeout: float = 1200,
) -> Dict[str, str]:
    """Runs ``test_files`` (paths under ``root/tests``) against the shim ``modules``; returns
    ``{"file::Class::test": "passed" | "failed" | "skipped"}`` (errors count as failed)."""
    tests = work / "tests"
    tests.mkdir(parents=True)
    for f in test_files:
        shutil.copy(root / "tests" / f, tests / f)
    shim = work / "shim"
    shim.mkdir()
    write_shim(shim, modules)
    report = work / "report.xml"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(shim), str(tests)]), PYTHONDONTWRITEBYTECODE="1"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(work),
            "-c",
            os.devnull,
            f"--junitxml={report}",
            *sorted(test_files),
        ],
        cwd=tests,
        env=env,
        timeout=timeout,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    (work / "output.txt").write_bytes(proc.stdout)
    if not report.exists():
        raise AssertionError("the peer suite produced no report")
    outcomes: Dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "")
        key = f"{module}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[key] = "failed"
        elif case.find("skipped") is not None:
            outcomes[key] = "skipped"
        else:
            outcomes[key] = "passed"
    return outcomes


def summarize(outcomes: Mapping[str, str]) -> str:
    counts = {
        k: sum(1 for v in outcomes.values() if v == k) for k in ("passed", "failed", "skipped")
    }
    failed = sorted(k for k, v in outcomes.items() if v == "failed")
    return (
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        + "".join(f"\n  failed: {k}" for k in failed)
    )
