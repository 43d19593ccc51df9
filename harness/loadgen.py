"""Where the LoadGen build of a round is, when it is not the installed one.

A round is tied to one LoadGen build (its seeds, and from v4.1 on its embedded mlperf.conf). The
installed ``mlcommons-loadgen`` serves its own round; builds for other rounds live beside it, one
folder per version under ``$HARNESS_LOADGEN_DIR`` (default ``<python prefix>/loadgen``), each a
``pip install --target`` of that build (``images/loadgen-build.sh`` makes them; ``make setup`` and
the images of such rounds run it). A LoadGen test of such a round runs in a process that puts the
folder first on its module path before it imports LoadGen (``activate``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

from harness.errors import RoundMismatch

DIST = "mlcommons-loadgen"


def root() -> Path:
    return Path(os.environ.get("HARNESS_LOADGEN_DIR") or Path(sys.prefix) / "loadgen")


def installed_version() -> str | None:
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        return None


def side_folder(version: str) -> Path | None:
    """The folder holding LoadGen ``version`` beside the installed one, if there is one."""
    folder = root() / version
    found = [d.version for d in importlib.metadata.distributions(name=DIST, path=[str(folder)])]
    return folder if found == [version] else None


def locate(version: str, round_name: str) -> Path | None:
    """None when the installed LoadGen is ``version``; else the folder beside it that holds it.
    Raises naming the fix when neither is."""
    installed = installed_version()
    if installed == version:
        return None
    folder = side_folder(version)
    if folder is None:
        raise RoundMismatch(
            f"round {round_name} needs mlcommons-loadgen=={version}, but {installed or 'none'} is installed and "
            f"{root() / version} does not hold {version}. Build it there: images/loadgen-build.sh {version} "
            f"{root() / version} (make setup does; the benchmark images of that round carry it), or set "
            f"HARNESS_LOADGEN_DIR to the folder that holds <version>/")
    return folder


def activate(version: str, round_name: str) -> None:
    """Make ``import mlperf_loadgen`` load ``version`` in this process (before its first import)."""
    folder = locate(version, round_name)
    if folder is None:
        return
    loaded = sys.modules.get("mlperf_loadgen")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(str(folder)):
        raise RoundMismatch(f"LoadGen {installed_version()} is already loaded in this process; round {round_name} "
                            f"needs {version} from {folder}, which must come first")
    sys.path.insert(0, str(folder))


def module_file(version: str, round_name: str) -> Path:
    """The compiled module of LoadGen ``version`` (read, not imported: its embedded mlperf.conf)."""
    folder = locate(version, round_name)
    if folder is not None:
        found = sorted(folder.glob("mlperf_loadgen*.so"))
        if found:
            return found[0]
        raise RoundMismatch(f"{folder} holds no mlperf_loadgen module: build LoadGen {version} there again")
    spec = importlib.util.find_spec("mlperf_loadgen")
    if spec is None or spec.origin is None:
        raise RoundMismatch(f"mlperf_loadgen is not importable: install {DIST}=={version}")
    return Path(spec.origin)
