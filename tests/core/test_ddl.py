"""Tables are created once however many processes open a new database at the same moment."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import sys, time
from sqlalchemy import create_engine
from koppla.core.ddl import create_all
from koppla.platform.profiles import tables
engine = create_engine(f"sqlite:///{sys.argv[1]}", connect_args={"timeout": 30})
start = float(sys.argv[2])
while time.time() < start:
    pass
create_all(tables.metadata, engine)
"""


def test_processes_creating_tables_in_a_new_database_together_all_succeed(tmp_path: Path) -> None:
    for round_ in range(4):
        database = tmp_path / f"store-{round_}.sqlite"
        start = str(time.time() + 2)
        command = [sys.executable, "-c", SCRIPT, str(database), start]
        processes = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(6)]
        errors = [(p.communicate(timeout=60)[1], p.returncode) for p in processes]
        assert [text[-300:] for text, code in errors if code] == []
