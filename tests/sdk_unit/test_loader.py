"""Loading definitions from a module or a file; load errors carry their traceback."""

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tether_api.codeserver import LoadError
from tether_sdk import Definitions
from tether_sdk.loader import load_definitions

GOOD = """
from tether_sdk import Definitions, job, step

@step
def only() -> int:
    return 1

defs = Definitions(jobs=[job("{job}", steps=[only])])
"""


@pytest.fixture(autouse=True)
def _restore_process_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The loader changes the cwd and sys.path on purpose; undo it after each test.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))


def _write(directory: Path, source: str) -> Path:
    path = directory / f"defs_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_load_module() -> None:
    loaded = load_definitions(module="tether_sdk.examples.quickstart")
    assert isinstance(loaded, Definitions)
    assert set(loaded.jobs) == {"etl", "refresh_sales"}


def test_load_python_file_with_sibling_import(tmp_path: Path) -> None:
    helper = f"helper_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{helper}.py").write_text("JOB = 'from_helper'\n")
    path = _write(tmp_path, f"from {helper} import JOB\n" + GOOD.replace('"{job}"', "JOB"))
    loaded = load_definitions(python_file=str(path))
    assert isinstance(loaded, Definitions)
    assert list(loaded.jobs) == ["from_helper"]


def test_working_directory_is_cwd_and_on_sys_path(tmp_path: Path) -> None:
    package = tmp_path / "proj"
    package.mkdir()
    name = f"mod_{uuid.uuid4().hex[:8]}"
    (package / f"{name}.py").write_text(GOOD.format(job="wd"))
    loaded = load_definitions(module=name, working_directory=str(package))
    assert isinstance(loaded, Definitions) and list(loaded.jobs) == ["wd"]
    assert Path.cwd() == package


def test_import_error_returns_the_traceback() -> None:
    loaded = load_definitions(module="tether_sdk.examples.broken")
    assert isinstance(loaded, LoadError)
    assert loaded.message == (
        "RuntimeError: the warehouse is unreachable (this module fails on purpose)"
    )
    assert "Traceback (most recent call last)" in loaded.traceback
    assert "_connect_to_warehouse" in loaded.traceback


def test_definition_error_at_import_is_a_load_error(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.format(job="bad name"))
    loaded = load_definitions(python_file=str(path))
    assert isinstance(loaded, LoadError)
    assert loaded.message.startswith("DefinitionError: invalid job name 'bad name'")


def test_sys_exit_at_import_is_a_load_error(tmp_path: Path) -> None:
    loaded = load_definitions(python_file=str(_write(tmp_path, "import sys\nsys.exit(3)\n")))
    assert isinstance(loaded, LoadError) and loaded.message.startswith("SystemExit")


def test_missing_module_and_file() -> None:
    missing = load_definitions(module="no_such_module_hopefully")
    assert isinstance(missing, LoadError) and "ModuleNotFoundError" in missing.message
    nofile = load_definitions(python_file="/nonexistent/defs.py")
    assert isinstance(nofile, LoadError) and "FileNotFoundError" in nofile.message


@pytest.mark.parametrize("module", ["../../../etc/passwd", "defs.py/x", "a..b", ".rel", "a-b"])
def test_module_that_is_not_a_dotted_name_is_a_clear_load_error(module: str) -> None:
    # What an older control plane may have stored: no TypeError about relative imports.
    loaded = load_definitions(module=module)
    assert isinstance(loaded, LoadError)
    assert loaded.message.startswith(
        "module must be a dotted Python module name such as 'my_project.definitions'; "
        f"{module!r} is not one"
    )
    assert "TypeError" not in loaded.traceback


def test_no_definitions(tmp_path: Path) -> None:
    loaded = load_definitions(python_file=str(_write(tmp_path, "x = 1\n")))
    assert isinstance(loaded, LoadError) and "no Definitions found" in loaded.message


def test_several_definitions_need_one_named_defs(tmp_path: Path) -> None:
    source = "from tether_sdk import Definitions\none = Definitions()\ntwo = Definitions()\n"
    loaded = load_definitions(python_file=str(_write(tmp_path, source)))
    assert isinstance(loaded, LoadError)
    assert "several Definitions found" in loaded.message and "one, two" in loaded.message
    chosen = load_definitions(python_file=str(_write(tmp_path, source + "defs = two\n")))
    assert isinstance(chosen, Definitions)


def test_single_definitions_under_another_name(tmp_path: Path) -> None:
    source = "from tether_sdk import Definitions\nmine = Definitions()\n"
    assert isinstance(load_definitions(python_file=str(_write(tmp_path, source))), Definitions)
