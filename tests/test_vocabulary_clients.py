"""The task states are named once (``shared/states.py``, served as ``GET /api/v1/vocabulary``): the dashboard's
scripts and the CLI take the state sets from there instead of typing lists of states again."""
from __future__ import annotations

import re
from pathlib import Path

from shared.states import TaskState

ROOT = Path(__file__).resolve().parent.parent
STATES = "|".join(s.value for s in TaskState)
#: Two or more state names in one list or set literal: a retyped state set.
STATE_LIST = re.compile(rf"""[\[{{(]\s*["']({STATES})["']\s*,\s*["']({STATES})["']""")


def test_no_script_of_the_dashboard_retypes_a_state_set() -> None:
    scripts = sorted((ROOT / "web" / "dashboard" / "static").glob("*.js"))
    assert scripts
    found = [f"{p.name}: {m.group(0)}" for p in scripts for m in STATE_LIST.finditer(p.read_text())]
    assert found == []


def test_the_cli_and_shared_code_take_state_sets_from_the_vocabulary() -> None:
    files = sorted([*(ROOT / "cli").glob("*.py"), *(ROOT / "shared").rglob("*.py")])
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files if p.name != "states.py"
             for m in STATE_LIST.finditer(p.read_text())]
    assert found == []
    assert '"/vocabulary"' in (ROOT / "cli" / "client.py").read_text()


def test_the_pattern_finds_a_retyped_set() -> None:
    assert STATE_LIST.search('const done = ["succeeded", "failed", "cancelled"];')
    assert STATE_LIST.search("terminal = {'succeeded', 'failed'}")
    assert not STATE_LIST.search('if (t.state === "running")')
