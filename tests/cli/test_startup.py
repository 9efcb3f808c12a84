"""The CLI starts fast because heavy modules load only inside the commands that use them."""

import subprocess
import sys

HEAVY = ["sqlmodel", "sqlalchemy", "numpy", "highspy", "pulp", "pyomo", "ray", "alembic",
         "pydantic", "requests"]


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from carbonplan.cli import run\n"
        "try:\n    run(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "carbonplan", "--version"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.startswith("carbonplan ")
