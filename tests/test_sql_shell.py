"""`returnwatch sql`: the prompt (statements across lines, dot-commands, errors that do not end
the session), the sandbox (one test per way out, each refused in one line), and `--live`, which
never holds the writers out between statements.

The tables here are constructed (a handful of rows to query), not published figures.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from returnwatch import settings, sql_shell, transform
from returnwatch.cli import main

FAKE_TOKEN = "xoxb-constructed-test-token-0000"


@pytest.fixture
def warehouses(data_dir: Path) -> Path:
    """A live warehouse (raw.files with two rows), its snapshot and the snapshot's Parquet."""
    live = settings.warehouse_path()
    with duckdb.connect(str(live)) as con:
        con.execute(
            "create schema raw; create table raw.files as "
            "select * from (values ('a', 1), ('b', 2)) t(sha256, rows_loaded)"
        )
    snapshot = settings.snapshot_path()
    snapshot.parent.mkdir(parents=True)
    transform.parquet_dir().mkdir()
    with duckdb.connect(str(snapshot)) as con:
        con.execute("create schema marts; create table marts.t as select 1 as a, 'x' as b")
        con.execute(f"copy marts.t to '{transform.parquet_dir() / 't.parquet'}' (format parquet)")
    return data_dir


def session_text(text: str, *, live: bool = False) -> str:
    out = io.StringIO()
    path = settings.warehouse_path() if live else settings.snapshot_path()
    with sql_shell.Session(path, live=live, wait_seconds=0) as session:
        sql_shell.repl(session, inp=io.StringIO(text), out=out)
    return out.getvalue()


def cli_sql(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["sql", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


# ----------------------------------------------------------------------------- the prompt ---


def test_statements_commands_and_errors(warehouses: Path) -> None:
    text = session_text(
        ".tables\nselect a + 41 as answer\nfrom marts.t;\nselect nope;\n"
        ".schema marts.t\n.quit\nselect 'never run';\n"
    )
    assert "marts.t" in text and "42" in text
    assert "Error:" in text and "nope" in text  # the error is shown, the session goes on
    assert "varchar" in text.lower()  # .schema ran after the error
    assert "never run" not in text


def test_the_snapshot_is_opened_read_only(warehouses: Path) -> None:
    text = session_text("create table marts.u as select 1;\n")
    assert "read-only" in text.lower()


def test_a_missing_snapshot_says_what_to_run(data_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make demo"):
        sql_shell.Session(settings.snapshot_path())
    code, output = cli_sql("select 1")
    assert code == 1 and "make demo" in output and "Traceback" not in output


# ---------------------------------------------------- ordinary analyst queries still work ---


@pytest.mark.parametrize(
    "statement, expected",
    [
        ("with t2 as (select a * 2 as d from marts.t) select d + 40 as answer from t2", "42"),
        ("summarize marts.t", "column_name"),
        ("describe marts.t", "varchar"),
        ("show all tables", "marts"),
        ("pragma table_info('marts.t')", "VARCHAR"),
        ("select * from read_parquet('{parquet}/*.parquet')", "x"),
        ("select count(*) as n from '{parquet}/t.parquet'", "1"),
        ("use marts; select b from t", "x"),
        (
            "create temp table picked as select * from marts.t; select b || 'y' as c from picked",
            "xy",
        ),
    ],
)
def test_analyst_queries_run(warehouses: Path, statement: str, expected: str) -> None:
    code, output = cli_sql(statement.format(parquet=transform.parquet_dir()))
    assert code == 0, output
    assert expected in output


def test_csv_output_for_scripts(warehouses: Path) -> None:
    code, output = cli_sql("--csv", "from marts.t")
    assert code == 0 and output.splitlines() == ["a,b", "1,x"]


def test_live_reads_the_live_warehouse(warehouses: Path) -> None:
    code, output = cli_sql("--live", "select count(*) as files from raw.files")
    assert code == 0 and "2" in output


# ------------------------------------------------------- the sandbox: one test per escape ---


def _escapes(tmp: Path, live: Path, parquet: Path) -> dict[str, str]:
    return {
        "copy to a file": f"copy (select 42) to '{tmp / 'dag_evil.py'}' (format csv)",
        "copy over a parquet export": f"copy (select 42 as a) to '{parquet / 't.parquet'}'",
        "copy from a file": f"copy marts.t from '{tmp / 'token.txt'}'",
        "export database": f"export database '{tmp / 'dump'}'",
        "read_text /proc/self/environ": "select * from read_text('/proc/self/environ')",
        "read_text a token file": f"select content from read_text('{tmp / 'token.txt'}')",
        "read_csv a token file": f"select * from read_csv('{tmp / 'token.txt'}')",
        "read_blob a token file": f"select content from read_blob('{tmp / 'token.txt'}')",
        "a path out of the parquet folder": f"select content from read_text('{parquet}/../../../"
        f"{tmp.name}/token.txt')",
        "glob": "select * from glob('/etc/*')",
        "a URL": "select * from read_csv('http://127.0.0.1:9/x.csv')",
        "attach the live warehouse read-write": f"attach '{live}' as w (READ_WRITE); "
        "delete from w.raw.files",
        "attach the live warehouse read-only": f"attach '{live}' as w (READ_ONLY)",
        "install httpfs": "install httpfs",
        "load httpfs": "load httpfs",
        "set external access back on": "set enable_external_access = true",
        "reset external access": "reset enable_external_access",
        "unlock the configuration": "set lock_configuration = false",
        "set allowed_directories": "set allowed_directories = ['/']",
        "pragma changing a setting": "pragma threads = 1",
        "pragma enable_profiling": "pragma enable_profiling",
        "pragma import_database": f"import database '{tmp}'",
        "prepare a copy": f"prepare p as copy (select 1) to '{tmp / 'x.csv'}'",
        "a refused statement after an allowed one": f"select 1; copy (select 1) to "
        f"'{tmp / 'x.csv'}'",
    }


ESCAPE_NAMES = list(_escapes(Path("/t"), Path("/l"), Path("/p")))


@pytest.mark.parametrize("live", [False, True], ids=["snapshot", "live"])
@pytest.mark.parametrize("name", ESCAPE_NAMES)
def test_each_escape_is_refused_in_one_line(
    warehouses: Path, tmp_path: Path, name: str, live: bool
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "token.txt").write_text(f"SLACK_BOT_TOKEN={FAKE_TOKEN}\n")
    parquet = transform.parquet_dir()
    export_before = (parquet / "t.parquet").read_bytes()
    statement = _escapes(outside, settings.warehouse_path(), parquet)[name]

    code, output = cli_sql(*(["--live"] if live else []), statement)

    assert code == 1
    assert output.startswith("Error: refused: ") and output.count("\n") == 1, output
    assert "Traceback" not in output and FAKE_TOKEN not in output
    assert sorted(p.name for p in outside.iterdir()) == ["token.txt"]  # nothing written
    assert (parquet / "t.parquet").read_bytes() == export_before
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as con:
        assert con.execute("select count(*) from raw.files").fetchone()[0] == 2


def test_refusals_do_not_end_the_prompt(warehouses: Path) -> None:
    text = session_text("install httpfs;\nset threads = 1;\nselect 'still here' as s;\n")
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(lines) == 2 and all(line.startswith("Error: refused: ") for line in lines)
    assert "still here" in text


def test_the_sandbox_is_set_and_locked(warehouses: Path) -> None:
    with sql_shell.Session(settings.snapshot_path()) as session:
        shown = session.run(
            "select name, value from duckdb_settings() where name in ('enable_external_access',"
            " 'autoinstall_known_extensions', 'autoload_known_extensions',"
            " 'allow_community_extensions', 'lock_configuration') order by name",
            csv=True,
        )
    assert shown.splitlines()[1:] == [
        "allow_community_extensions,false",
        "autoinstall_known_extensions,false",
        "autoload_known_extensions,false",
        "enable_external_access,false",
        "lock_configuration,true",
    ]


# ------------------------------------------------ --live never holds the writers out ---

WRITER = """
import sys, duckdb
try:
    con = duckdb.connect(sys.argv[1])
except duckdb.IOException as error:
    print("locked" if "lock" in str(error).lower() else error); sys.exit(3)
con.execute("insert into raw.files values ('c', 3)")
con.close()
print("written")
"""

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
con.close()
print("released", flush=True)
sys.stdin.readline()
"""


def _write_from_another_process(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip() or done.stderr.strip()


def test_a_writer_proceeds_while_a_live_session_is_open(warehouses: Path) -> None:
    live = settings.warehouse_path()
    with sql_shell.Session(live, live=True, wait_seconds=0) as session:
        assert "2" in session.run("select count(*) from raw.files")
        # Between two statements of an open session: another process writes.
        assert _write_from_another_process(live) == "written"
        assert "3" in session.run("select count(*) from raw.files")


def test_a_held_read_only_connection_would_block_that_writer(warehouses: Path) -> None:
    """The control for the test above: what `--live` did before (one connection for the
    whole session) keeps the writer out, so the test above can fail."""
    live = settings.warehouse_path()
    with duckdb.connect(str(live), read_only=True):
        assert _write_from_another_process(live) == "locked"


@pytest.fixture
def lock_holder(warehouses: Path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.warehouse_path())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    yield holder
    holder.stdin.close()
    holder.wait(timeout=60)


def test_live_waits_for_a_writer_and_says_so(lock_holder: subprocess.Popen) -> None:
    notices: list[str] = []

    def writer_lets_go(message: str) -> None:  # called once, when the statement starts waiting
        notices.append(message)
        lock_holder.stdin.write("go\n")
        lock_holder.stdin.flush()
        assert lock_holder.stdout.readline().strip() == "released"

    with sql_shell.Session(
        settings.warehouse_path(), live=True, wait_seconds=120, notice=writer_lets_go
    ) as session:
        assert "2" in session.run("select count(*) from raw.files")
    assert len(notices) == 1 and "waiting up to 120 s" in notices[0]


def test_live_gives_up_after_its_bounded_wait_in_one_line(lock_holder: subprocess.Popen) -> None:
    code, output = cli_sql("--live", "--wait", "0.3", "select count(*) from raw.files")
    assert code == 1 and "Traceback" not in output
    assert "waiting up to 0 s" in output  # the notice (stderr is mixed into output here)
    error = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "still being written" in error[0] and "snapshot" in error[0]


def test_a_refused_statement_never_waits_for_the_lock(lock_holder: subprocess.Popen) -> None:
    code, output = cli_sql("--live", "--wait", "30", "install httpfs")
    assert code == 1 and output.startswith("Error: refused: ") and "waiting" not in output
