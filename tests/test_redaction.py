"""Secrets in storage URLs (issue 24): no URL form prints or stores a password.

One table of URL forms: for each, ``redact_url`` hides the secret and keeps the scheme, user,
host and database; ``has_password`` is true; a study file holding it is refused in one line that
names the fix; and the CLI (``run``/``worker``/``run --workers``, ``--storage`` or
``$LSTMSEARCH_STORAGE``) prints none of it and writes none of it into the study folder. Then
property-based tests with passwords drawn from a wide alphabet (``@/:%?#&=``, blanks, unicode),
and a run against a real PostgreSQL server with a password in the userinfo and in the query."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lstmsearch.config import parse_study
from lstmsearch.errors import SECRET_PARAMETERS, ConfigError, LstmsearchError, has_password, redact_url

from search_helpers import study_text, write_study

ROOT = Path(__file__).resolve().parents[1]

# (URL, its secrets, what every message and file shows instead)
SECRET_FORMS = [
    ("postgresql://u:S3cretPw@host/db", ["S3cretPw"], "postgresql://u:***@host/db"),
    ("postgresql://u:pa/ssW0rd@host/db", ["pa/ssW0rd"], "postgresql://u:***@host/db"),
    ("postgresql://u:p@ssW0rd@host/db", ["p@ssW0rd"], "postgresql://u:***@host/db"),
    ("postgresql://u:pa:ssW0rd@host:5432/db", ["pa:ssW0rd"], "postgresql://u:***@host:5432/db"),
    ("postgresql://u:50%off%40W0rd@host/db", ["50%off%40W0rd"], "postgresql://u:***@host/db"),
    ("postgresql://u:a/b@c:d%e?f#gW0rd@host/db", ["a/b@c:d%e?f#gW0rd"], "postgresql://u:***@host/db"),
    ("postgresql://u:my secret W0rd@host/db", ["my secret W0rd"], "postgresql://u:***@host/db"),
    ("postgresql://u:пароль密码W0rd@host/db", ["пароль密码W0rd"], "postgresql://u:***@host/db"),
    ("postgresql://:EmptyUserPw@host/db", ["EmptyUserPw"], "postgresql://:***@host/db"),
    ("postgresql://u@host/db?password=QuerySecret", ["QuerySecret"], "postgresql://u@host/db?password=***"),
    ("postgresql://u@host/db?sslmode=require&password=Qu3ry&application_name=lstm", ["Qu3ry"],
     "postgresql://u@host/db?sslmode=require&password=***&application_name=lstm"),
    ("postgresql://u@host/db?sslpassword=KeyPassphrase&sslkey=/home/u/client.key", ["KeyPassphrase"],
     "postgresql://u@host/db?sslpassword=***&sslkey=/home/u/client.key"),
    ("postgresql://u@host/db?password=a%40b%26cW0rd", ["a%40b%26cW0rd"], "postgresql://u@host/db?password=***"),
    ("postgresql://u@host/db?pass%77ord=EncodedKey", ["EncodedKey"], "postgresql://u@host/db?pass%77ord=***"),
    ("postgresql://u@host/db?dbname=password%3DInDbname", ["InDbname"], "postgresql://u@host/db?dbname=***"),
    ("postgresql:///db?host=/var/run/postgresql&password=SocketPw", ["SocketPw"],
     "postgresql:///db?host=/var/run/postgresql&password=***"),
    ("postgresql://u@host/db?oauth_client_secret=OauthS3cret&oauth_client_id=app", ["OauthS3cret"],
     "postgresql://u@host/db?oauth_client_secret=***&oauth_client_id=app"),
    ("postgresql://u@host/db?scram_client_key=ScramKeyB64", ["ScramKeyB64"], "postgresql://u@host/db?scram_client_key=***"),
    ("postgresql+psycopg://u:pa/ssW0rd@host:5432/db?sslmode=require", ["pa/ssW0rd"],
     "postgresql+psycopg://u:***@host:5432/db?sslmode=require"),
    ("postgresql+psycopg2://u@host/db?password=Psycopg2Pw", ["Psycopg2Pw"], "postgresql+psycopg2://u@host/db?password=***"),
    ("postgresql://u:pw1Secret@h1:5432,h2:5433/db?target_session_attrs=read-write", ["pw1Secret"],
     "postgresql://u:***@h1:5432,h2:5433/db?target_session_attrs=read-write"),
    ("postgresql://u:pw1Secret@[::1]:5432/db", ["pw1Secret"], "postgresql://u:***@[::1]:5432/db"),
    ("mysql://root:My5qlPw@localhost:3306/db?charset=utf8mb4", ["My5qlPw"],
     "mysql://root:***@localhost:3306/db?charset=utf8mb4"),
    ("mysql+pymysql://root@localhost/db?passwd=My5qlPw", ["My5qlPw"], "mysql+pymysql://root@localhost/db?passwd=***"),
    ("sqlite+pysqlcipher://:CipherKey@/tmp/x.db", ["CipherKey"], "sqlite+pysqlcipher://:***@/tmp/x.db"),
    # a raw @ in a query value of a URL with a password: the password runs to the last @, so all of it hides
    ("postgresql://u:Us3rPw@host/db?password=Qu@ryPw", ["Us3rPw", "Qu@ryPw"], "postgresql://u:***"),
]

# URLs without a secret: shown as they are (paths to keys are not secrets)
PLAIN_FORMS = [
    "sqlite:////tmp/a.db", "sqlite:///relative/x.db", "sqlite:///C:/x@y/z:w.db", "postgresql://u@host/db",
    "postgresql://host:5432/db", "postgresql://u:@host/db", "postgresql:///db?host=/var/run/postgresql",
    "postgresql://u@host/db?sslmode=verify-full&sslkey=/k.pem&sslcert=/c.pem&sslrootcert=/r.pem&passfile=/p",
    "postgresql+psycopg://u@host/db?application_name=me@x", "mysql://root@localhost/db",
    "memory", "journal", "sqlite", "nosuchdb://x", "",
]

FIX = r"PGPASSFILE \(~/\.pgpass\) or PGPASSWORD.*LSTMSEARCH_STORAGE or with --storage"


def _study_with_storage(url, tmp_path=Path("/tmp/none")):
    return study_text("pw", tmp_path / "data" / "pw", strategy="optuna", budget=8).replace(
        "[strategy]\n", "[strategy]\nstorage = " + json.dumps(url, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ the table
@pytest.mark.parametrize("url, secrets, shown", SECRET_FORMS)
def test_redact_url_hides_every_secret_and_keeps_the_rest(url, secrets, shown):
    out = redact_url(url)
    assert out == shown
    assert not any(s in out for s in secrets)
    assert has_password(url)
    assert redact_url(out) == out  # redacting twice changes nothing
    message = f"cannot open the Optuna storage {url}: connection refused (x@y)"  # inside a message
    assert not any(s in redact_url(message) for s in secrets), redact_url(message)


@pytest.mark.parametrize("url", PLAIN_FORMS)
def test_urls_without_a_secret_are_shown_as_they_are(url):
    assert redact_url(url) == url
    assert not has_password(url)


@pytest.mark.parametrize("url, secrets, shown", SECRET_FORMS)
def test_a_study_file_with_any_secret_form_is_refused_in_one_line(url, secrets, shown):
    with pytest.raises(ConfigError) as exc:
        parse_study(_study_with_storage(url), source="pw.toml")
    line = str(exc.value)
    assert "\n" not in line and not any(s in line for s in secrets), line
    assert re.search(r"^pw\.toml: \[strategy\] storage holds a password \(", line), line
    assert shown in line and re.search(FIX, line), line


def test_a_raw_at_after_the_host_reads_as_sqlalchemy_reads_it():
    """With a ``:`` before it, a raw ``@`` in a query value ends the userinfo: SQLAlchemy reads
    ``host:5432/db?application_name=me`` as user and password too, so it is hidden (write ``%40``)."""
    from sqlalchemy.engine import make_url

    for url in ("postgresql+psycopg://u@host:5432/db?application_name=me@x",
                "postgresql://host:5432/db?application_name=me@x"):
        assert make_url(url).password == "5432/db?application_name=me" and make_url(url).host == "x"
        assert redact_url(url).endswith(":***@x") and has_password(url)
        fixed = url.replace("me@x", "me%40x")
        assert redact_url(fixed) == fixed and not has_password(fixed)


def test_keyword_strings_and_messages():
    assert redact_url("host=db password=S3cret sslmode=require") == "host=db password=*** sslmode=require"
    assert redact_url("host=db sslpassword = 'a b c' port=1") == "host=db sslpassword = *** port=1"
    # in a message, a URL runs to the next blank, unless its password holds one
    assert redact_url("cannot open postgresql://u:my pw@host/db: refused") == "cannot open postgresql://u:***@host/db: refused"
    assert redact_url("open postgresql://host:5432/db: refused (x@y)") == "open postgresql://host:5432/db: refused (x@y)"
    assert redact_url("open postgresql://u: pw@host/db: no") == "open postgresql://u:***@host/db: no"
    assert redact_url("open postgresql://u:12 34@host/db: no") == "open postgresql://u:***@host/db: no"
    # a study file's text (manifest study_text, extract's study.toml) stays valid TOML
    text = _study_with_storage("postgresql://u@host/db?password=S3cret&sslmode=require")
    red = redact_url(text)
    assert "S3cret" not in red
    doc, doc0 = tomllib.loads(red), tomllib.loads(text)
    assert doc["strategy"]["storage"] == "postgresql://u@host/db?password=***&sslmode=require"
    doc["strategy"].pop("storage"), doc0["strategy"].pop("storage")
    assert doc == doc0


def test_the_driver_reads_the_password_as_redact_url_does():
    from sqlalchemy.engine import make_url

    from lstmsearch.search.optuna_search import _quote_password

    for url, pw in [("postgresql://u:pa/ss@host/db", "pa/ss"), ("postgresql://u:p@ss@host:5/db", "p@ss"),
                    ("postgresql://:a?b#c:d@host/db?sslmode=require", "a?b#c:d"), ("postgresql://u:50%@host/db", "50%")]:
        m = make_url(_quote_password(url))
        assert (m.password, m.host, m.database) == (pw, "host", "db"), url
    # where the last @ is inside a query password, the URL cannot be read safely: refused, redacted
    with pytest.raises(LstmsearchError, match=r"cannot tell where the password ends .*%40") as exc:
        _quote_password("postgresql://u:Us3rPw@host/db?password=Qu@ryPw")
    assert "Us3rPw" not in str(exc.value) and "Qu@ry" not in str(exc.value)


# ------------------------------------------------------------------ property-based
_ALPHABET = st.characters(blacklist_categories=("Cc", "Cs"))  # every printable character, blanks and unicode
_SPECIAL = st.sampled_from(list("@/:%?#&=+ ;'\"\\[]!$") + ["%40", "%2F", "%zz", "é", "密", "🔑"])
PASSWORDS = st.lists(st.one_of(_ALPHABET, _SPECIAL), min_size=1, max_size=24).map("".join)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(pw=PASSWORDS, user=st.sampled_from(["u", "", "postgres"]), tail=st.sampled_from(
    ["host/db", "host:5432/db", "[::1]:5432/db", "host/db?sslmode=require", "/db", "h1,h2:5/db?target_session_attrs=any"]))
def test_a_userinfo_password_never_shows(pw, user, tail):
    url = f"postgresql+psycopg://{user}:{pw}@{tail}"
    shown = f"postgresql+psycopg://{user}:***@{tail}"
    assert redact_url(url) == shown
    assert has_password(url) and redact_url(shown) == shown
    # the same, percent-encoded as a URL should be
    enc = f"postgresql+psycopg://{user}:{quote(pw, safe='')}@{tail}"
    assert redact_url(enc) == shown
    if not any(c.isspace() for c in pw):  # in a message, a URL runs to the next blank
        assert redact_url(f"cannot open the Optuna storage {url}: refused") == \
            f"cannot open the Optuna storage {shown}: refused"


@FAST
@given(pw=PASSWORDS, key=st.sampled_from(sorted(SECRET_PARAMETERS) + ["client_secret", "access_token"]),
       user=st.sampled_from(["u", "", "u:Us3r"]))
def test_a_query_secret_never_shows(pw, key, user):
    auth = f"{user}@" if user else ""
    url = f"postgresql://{auth}host/db?sslmode=require&{key}={quote(pw, safe='')}&application_name=x"
    shown = auth.replace("Us3r", "***")
    assert redact_url(url) == f"postgresql://{shown}host/db?sslmode=require&{key}=***&application_name=x"
    assert has_password(url)
    # raw, as the last parameter: the value runs to the end (all of it hides if it holds the last @)
    raw = f"postgresql://{auth}host/db?{key}={pw}"
    assume(not re.search(r"&[A-Za-z_][A-Za-z0-9_.%\-]*=", pw))  # that would start another parameter
    assert redact_url(raw) in (f"postgresql://{shown}host/db?{key}=***", "postgresql://u:***"), redact_url(raw)


@FAST
@given(pw=PASSWORDS, form=st.sampled_from(["postgresql://u:{}@host/db", "postgresql://:{}@host/db",
                                           "postgresql://u@host/db?password={}", "mysql://r@h/d?passwd={}"]))
def test_a_study_file_refusal_never_shows_the_password(pw, form):
    def refusal(pw):
        with pytest.raises(ConfigError) as exc:
            parse_study(_study_with_storage(form.format(pw if "?" not in form else quote(pw, safe=""))),
                        source="pw.toml")
        return str(exc.value)

    line = refusal(pw)
    assert line == refusal("Zz9")  # the same line whatever the password: none of it shows
    assert re.search(FIX, line) and "\n" not in line, line


@FAST
@given(text=st.text(max_size=80))
def test_redact_url_never_raises(text):
    out = redact_url(text)
    assert isinstance(out, str) and isinstance(has_password(text), bool)
    assert redact_url("postgresql://" + text) is not None


# ------------------------------------------------------------------ the CLI
def cli(*args, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    e.pop("LSTMSEARCH_STORAGE", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "lstmsearch.cli", *map(str, args)], capture_output=True, text=True,
                          env=e, cwd=ROOT, timeout=120)


def _files_hold(folder, secret):
    return [p for p in Path(folder).rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.parametrize("form, secret, how", [
    ("postgresql://u@127.0.0.1:{port}/nothing?password=QueryS3cret&sslmode=disable", "QueryS3cret", "--storage"),
    ("postgresql://u@127.0.0.1:{port}/nothing?sslpassword=KeyS3cret", "KeyS3cret", "env"),
    ("postgresql://u:pa/ss@S3cret@127.0.0.1:{port}/nothing", "pa/ss@S3cret", "--storage"),
    ("postgresql://:EmptyUs3r@127.0.0.1:{port}/nothing", "EmptyUs3r", "--workers"),
    ("postgresql+psycopg://u:a%40b:c%Secr3t@127.0.0.1:{port}/nothing?password=Two2", "Secr3t", "worker"),
])
def test_the_cli_never_prints_or_writes_a_secret(tmp_path, form, secret, how):
    pytest.importorskip("psycopg")
    from pg_server import free_port

    p, out = write_study(tmp_path, strategy="optuna", budget=16)
    url = form.format(port=free_port())
    if how == "env":
        r = cli("run", p, env={"LSTMSEARCH_STORAGE": url})
    elif how == "--workers":
        r = cli("run", p, "--workers", "2", "--storage", url)
    elif how == "worker":
        r = cli("worker", p, "--storage", url)
    else:
        r = cli("run", p, "--storage", url)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot open the Optuna storage postgresql" in lines[0], r.stderr
    assert "127.0.0.1" in lines[0]  # the rest of the URL stays useful
    for s in {secret, secret.split("@")[-1], "Two2"}:
        assert s not in r.stdout + r.stderr, lines[0]
        assert not _files_hold(tmp_path / "data", s)
    m = out / "manifest.json"
    if m.exists():
        assert secret not in m.read_text()


# ------------------------------------------------------------------ a real server
def test_a_run_on_postgres_stores_and_prints_no_secret(pg, tmp_path):
    """A password in the userinfo (with / and @) and in the query (the server trusts loopback, so it
    is never checked): the run works, and neither its output, the manifest, the other files of the
    study folder, show, check nor top hold either."""
    import psycopg
    from pg_server import wait_for

    def ready():
        try:
            psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres", connect_timeout=2).close()
            return True
        except psycopg.Error:
            return False

    assert wait_for(ready, 60)
    pg.create_db("secrets")
    url = f"postgresql://postgres:pa/ss@Us3rS3cret@127.0.0.1:{pg.port}/secrets?password=Qu3ryS3cret&sslmode=disable"
    shown = f"postgresql://postgres:***@127.0.0.1:{pg.port}/secrets?password=***&sslmode=disable"
    p, out = write_study(tmp_path, strategy="optuna", budget=16)
    runs = [cli("run", p, "--storage", url, "--quiet"), cli("run", p, "--budget", "32", "--quiet",
                                                           env={"LSTMSEARCH_STORAGE": url})]
    for r in runs:
        assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["optuna_storage"] == shown
    outputs = [cli("show", out, "best"), cli("check", out), cli("top", out)]
    for r in runs + outputs:
        for s in ("Us3rS3cret", "Qu3ryS3cret", "pa/ss"):
            assert s not in r.stdout + r.stderr
    for s in ("Us3rS3cret", "Qu3ryS3cret", "pa/ss"):
        assert not _files_hold(tmp_path, s)
    # continuing it elsewhere names the storage it is in, redacted
    r = cli("run", p, "--budget", "48", "--storage", url.replace("secrets?", "other?"))
    assert r.returncode == 2 and shown in r.stderr and "S3cret" not in r.stderr, r.stderr
