"""Every app's tests run in `make test` and CI, not only when someone names their folder."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_folder_with_tests_is_in_the_test_paths():
    test_paths = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    folders_with_tests = {path.parent.parent.name for path in ROOT.glob("*/tests/__init__.py")}
    assert folders_with_tests, "no tests found: the test looks in the wrong place"
    assert folders_with_tests - set(test_paths) == set()
