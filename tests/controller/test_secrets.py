"""A password in the storage URL never reaches output, files on disk or stored rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autopeft.testing import tiny_model_dir

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.usefixtures("shared_data")]


def test_password_stays_secret(tmp_path, request):
    if os.environ.get("AUTOPEFT_SKIP_POSTGRES") == "1":
        pytest.skip("AUTOPEFT_SKIP_POSTGRES=1")
    from sqlalchemy.engine import make_url

    from tests.conftest import _postgres_database

    gen = _postgres_database()
    plain = next(gen)
    request.addfinalizer(lambda: next(gen, None))
    # the local server trusts every connection: the password is accepted and ignored
    url = make_url(plain).set(password="s3cret").render_as_string(hide_password=False)
    model = tiny_model_dir("bert", tmp_path / "bert")
    home = tmp_path / "home"
    env = {**os.environ, "AUTOPEFT_HOME": str(home)}
    out = []
    for args in (
        ["search", "--task", "glue/sst2", "--model", str(model), "--space", "quick",
         "--trials", "2", "--max-steps", "2", "--batch-size", "8", "--train-samples", "32",
         "--eval-samples", "16", "--max-length", "64", "--study", "secret", "--storage", url],
        ["trials", "--study", "secret", "--storage", url, "-f", "json"],
        ["studies", "--storage", url],
        ["front", "--study", "secret", "--storage", url, "-f", "csv"],
    ):
        run = subprocess.run([sys.executable, "-m", "autopeft.cli.main", *args],
                             capture_output=True, text=True, timeout=600, env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        out.append(run.stdout + run.stderr)
    assert len(json.loads(out[1].split("\n", 0)[0])) == 2
    assert not any("s3cret" in text for text in out)
    leaked = [str(p) for p in home.rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]
    assert leaked == []
    from autopeft.store import Store

    store = Store(url)
    rows = [store.get_study("secret"), *store.trials("secret")]
    assert "s3cret" not in repr(rows) and "s3cret" not in repr(store)
