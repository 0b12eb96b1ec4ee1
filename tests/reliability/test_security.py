"""The cache's trust model and secrets: a private cache dir, no unpickling of an entry whose
checksum does not match, and a ``SecretStr`` context param that reaches its step intact and
shows nowhere else (logs, event log, metadata, cache keys, run config, config schema, storage).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import fault_pipelines as fp
import pytest
from dagster._serdes import serialize_value
from pydantic import BaseModel, SecretStr
from reliability_support import lines
from run_support import Run, execute, run_config

from flowyml import CacheStore, Pipeline, step
from flowyml.core.cache_store import _HEADER_SIZE, _LENGTH, _MAGIC
from flowyml_dagster import build_definitions
from flowyml_dagster.constants import CACHE_METADATA_KEY

SECRET = fp.SECRET_VALUE
SECRET_BYTES = SECRET.encode()
SEEN = {"type": "SecretStr", "sha256": hashlib.sha256(SECRET_BYTES).hexdigest()}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_below(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def mentions_secret(root: Path) -> list[str]:
    """Files below ``root`` whose path or content holds the secret in clear."""
    return [
        str(path)
        for path in files_below(root)
        if SECRET in str(path.relative_to(root)) or SECRET_BYTES in path.read_bytes()
    ]


# --- the cache directory is private -------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave new directories world-readable (and writable) if not overridden."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_the_cache_dir_is_created_private_to_the_user(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "deeper" / "cache")

    assert store.writable
    assert mode(store.root) == 0o700


@pytest.mark.usefixtures("permissive_umask")
def test_cache_entries_and_their_folders_are_private_to_the_user(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")

    assert store.put("step:key", pickle.dumps({"value": 1}))

    entry = store.path_for("step:key")
    assert mode(entry.parent) == 0o700
    assert mode(entry) == 0o600


def test_a_run_creates_its_default_cache_dir_private_to_the_user(
    private_cache_dir: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()

    result = fp.CACHED.run(context={"workdir": str(workdir)})

    assert result.success
    assert mode(private_cache_dir) == 0o700


# --- an entry whose checksum does not match is never unpickled ----------------------------------


class Detonator:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def booby_trapped_payload(marker: Path) -> bytes:
    return pickle.dumps({"cached/source": Detonator(marker)}, protocol=5)


def craft_entry(payload: bytes, how: str) -> bytes:
    """An entry in the store's layout (magic, payload length, SHA-256 of the payload, payload),
    made wrong."""
    digest = hashlib.sha256(payload).digest()
    length = _LENGTH.pack(len(payload))
    if how == "wrong-checksum":
        return _MAGIC + length + hashlib.sha256(b"another payload").digest() + payload
    if how == "checksum-of-a-prefix":  # pickle.loads would ignore the appended bytes
        padded = payload + b"trailing bytes"
        return _MAGIC + _LENGTH.pack(len(padded)) + digest + padded
    if how == "foreign-format":
        return b"FLOWYML-CACHE-0\n" + length + digest + payload
    raise ValueError(how)


def test_the_crafted_payload_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The control: the payload the next tests plant is live, so its absence of effect counts."""
    marker = tmp_path / "exploded"

    pickle.loads(booby_trapped_payload(marker))

    assert marker.is_dir()


@dataclass(frozen=True)
class Planted:
    marker: Path
    entry: Path
    calls: int
    succeeded: bool
    value: Any


def plant_and_run(
    runner: str, how: str, root: Path, instance: dg.DagsterInstance | None
) -> Planted:
    """Plant a booby-trapped entry under the source step's real cache key, then run."""
    workdir = root / "work"
    workdir.mkdir()
    cache_dir = root / "cache"
    marker = root / "exploded"
    store = CacheStore(cache_dir)
    entry = store.path_for(fp.cached_source.get_cache_key({}, {"workdir": str(workdir)}))
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(craft_entry(booby_trapped_payload(marker), how))
    if runner == "plain":
        pipeline = Pipeline("cached", cache_dir=cache_dir, steps=fp.CACHED.steps)
        result = pipeline.run(context={"workdir": str(workdir)})
        succeeded, value = result.success, result["cached/source"]
    else:
        assert instance is not None
        run = execute(
            fp.cached_job,
            instance,
            run_config(fp.cached_job(), cache_dir=cache_dir, workdir=str(workdir)),
        )
        succeeded = run.succeeded
        value = fp.definitions(fp.CACHED).load_asset_value(
            dg.AssetKey(["cached", "source"]), instance=instance
        )
    calls = len(lines(workdir / "cached_source.calls"))
    return Planted(marker, entry, calls, succeeded, value)


PLANTED_CASES = [
    pytest.param(("plain", "wrong-checksum"), id="plain-wrong-checksum"),
    pytest.param(("plain", "checksum-of-a-prefix"), id="plain-checksum-of-a-prefix"),
    pytest.param(("plain", "foreign-format"), id="plain-foreign-format"),
    pytest.param(("dagster", "wrong-checksum"), id="dagster-wrong-checksum"),
]


@pytest.fixture(params=PLANTED_CASES)
def planted(request: pytest.FixtureRequest, tmp_path: Path) -> Planted:
    runner, how = request.param
    instance = request.getfixturevalue("instance") if runner == "dagster" else None
    return plant_and_run(runner, how, tmp_path, instance)


def test_an_entry_whose_checksum_does_not_match_is_never_unpickled(planted: Planted) -> None:
    assert not planted.marker.exists()


def test_a_step_whose_entry_fails_its_checksum_computes_its_value(planted: Planted) -> None:
    assert planted.succeeded
    assert planted.calls == 1
    assert planted.value == list(range(100))


def test_a_planted_entry_is_replaced_by_a_valid_one(planted: Planted) -> None:
    data = planted.entry.read_bytes()
    payload = data[_HEADER_SIZE:]

    assert data.startswith(_MAGIC)
    assert data[_HEADER_SIZE - 32 : _HEADER_SIZE] == hashlib.sha256(payload).digest()
    assert pickle.loads(payload) == {"cached/source": list(range(100))}


# --- a SecretStr context param ------------------------------------------------------------------


@dataclass(frozen=True)
class SecretRun:
    runner: str
    values: dict[str, Any]
    cache_keys: list[str]
    cache_dir: Path
    logs: str
    run: Run | None = None


@pytest.fixture
def secret_plain(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> SecretRun:
    """The secret pipeline on the plain runner, run twice (the second run reads the cache
    back), every log record captured (DEBUG and up)."""
    caplog.set_level(logging.DEBUG)
    workdir = tmp_path / "work"
    workdir.mkdir()
    cache_dir = tmp_path / "secret-cache"
    pipeline = Pipeline("secret", context=fp.SECRET.context, cache_dir=cache_dir)
    for member in fp.SECRET.steps:
        pipeline.add_step(member)
    first = pipeline.run(context={"workdir": str(workdir)})
    second = pipeline.run(context={"workdir": str(workdir)})
    assert first.success and second.success
    keys = [r.cache_key or "" for result in (first, second) for r in result.step_results.values()]
    assert all(keys) and all(r.cached for r in second.step_results.values())
    return SecretRun("plain", dict(first.outputs), keys, cache_dir, caplog.text)


@pytest.fixture(scope="module")
def secret_dagster(module_tmp: Path, module_instance: dg.DagsterInstance) -> SecretRun:
    """The secret pipeline on Dagster, run twice (the second run reads the cache back)."""
    cache_dir = module_tmp / "secret-cache"
    workdir = module_tmp / "secret-work"
    workdir.mkdir()
    config = run_config(fp.secret_job(), cache_dir=cache_dir, workdir=str(workdir))
    runs = [execute(fp.secret_job, module_instance, config) for _ in range(2)]
    assert all(run.succeeded for run in runs)
    defs = fp.definitions(fp.SECRET)
    values = {
        name: defs.load_asset_value(dg.AssetKey(name.split("/")), instance=module_instance)
        for name in fp.SECRET_OUTPUTS
    }
    versions = [
        materialization.tags.get("dagster/data_version", "") if materialization.tags else ""
        for run in runs
        for materialization in run.materializations().values()
    ]
    assert [
        run.metadata(dg.AssetKey(["secret", "in_child"]))[CACHE_METADATA_KEY] for run in runs
    ] == [
        "miss",
        "hit",
    ]
    logs = "\n".join(run.event_log_text() for run in runs)
    return SecretRun("dagster", values, versions, cache_dir, logs, runs[-1])


@pytest.fixture(params=["plain", "dagster"])
def secret_run(request: pytest.FixtureRequest) -> SecretRun:
    found: SecretRun = request.getfixturevalue(f"secret_{request.param}")
    return found


def test_a_secret_param_reaches_the_step_as_the_secretstr_given(secret_run: SecretRun) -> None:
    assert secret_run.values == dict.fromkeys(fp.SECRET_OUTPUTS, SEEN)


def test_a_secret_never_appears_in_the_logs(secret_run: SecretRun) -> None:
    masked = "the service refused the key **********"

    assert masked in secret_run.logs, "the failed attempt must be logged, or the check is empty"
    assert SECRET not in secret_run.logs


def test_a_secret_never_appears_in_cache_keys(secret_run: SecretRun) -> None:
    direct = [
        member.get_cache_key({}, {"api_key": fp.API_KEY, "workdir": "w"})
        for member in fp.SECRET.steps
    ]

    assert all(secret_run.cache_keys)
    assert not [key for key in [*secret_run.cache_keys, *direct] if SECRET in key]


def test_a_secret_never_appears_in_the_cache_dir(secret_run: SecretRun) -> None:
    entries = [p for p in files_below(secret_run.cache_dir) if p.suffix == ".pkl"]

    assert len(entries) == len(fp.SECRET_OUTPUTS)
    assert mentions_secret(secret_run.cache_dir) == []


def test_a_run_creates_its_cache_dir_private_to_the_user(secret_run: SecretRun) -> None:
    assert mode(secret_run.cache_dir) == 0o700


def test_a_secret_changes_the_cache_key_without_being_in_it() -> None:
    """Hashed like its value: another secret is another key (a stale hit would be wrong)."""
    keys = {
        fp.secret_in_process.get_cache_key({}, {"api_key": SecretStr(value)})
        for value in (SECRET, SECRET + "-rotated")
    }

    assert len(keys) == 2


def test_a_secret_never_appears_in_materialization_metadata(secret_dagster: SecretRun) -> None:
    assert secret_dagster.run is not None
    materializations = secret_dagster.run.materializations()

    assert len(materializations) == len(fp.SECRET_OUTPUTS)
    assert SECRET not in serialize_value(list(materializations.values()))


def test_a_secret_is_not_a_config_field_of_its_op() -> None:
    job = fp.secret_job()
    for node in job.graph.node_defs:
        schema = node.config_schema
        config_type = schema.as_field().config_type if schema is not None else None
        assert "api_key" not in getattr(config_type, "fields", {}), node.name


def test_a_secret_never_appears_in_the_jobs_default_run_config() -> None:
    job = fp.secret_job()
    snapshot = serialize_value(job.get_job_snapshot())

    assert SECRET not in repr(job.run_config)
    assert SECRET not in snapshot  # the config schema, with every default the Launchpad shows


def test_a_secret_never_appears_in_the_stored_run(secret_dagster: SecretRun) -> None:
    run = secret_dagster.run
    assert run is not None
    record = run.instance.get_run_by_id(run.run_id)
    assert record is not None
    snapshot = run.instance.get_job_snapshot(record.job_snapshot_id or "")

    assert SECRET not in serialize_value(record)
    assert SECRET not in serialize_value(snapshot)


def test_a_secret_appears_nowhere_in_the_instances_storage(
    secret_dagster: SecretRun, module_tmp: Path
) -> None:
    """Run and event databases, compute logs, the IO manager's stored values: no secret."""
    home = module_tmp / "dagster-home"
    masked = b"the service refused the key **********"

    assert any(masked in path.read_bytes() for path in files_below(home)), "not searchable"
    assert mentions_secret(home) == []


@pytest.fixture(scope="module")
def pin_dagster(module_tmp: Path, module_instance: dg.DagsterInstance) -> Run:
    """The PIN pipeline on Dagster: the PIN is a plain string for a ``SecretStr`` param."""
    config = run_config(fp.pin_job(), cache_dir=module_tmp / "pin-cache")
    run = execute(fp.pin_job, module_instance, config)
    assert run.succeeded
    return run


def test_a_plain_string_for_a_secret_param_reaches_the_step_as_a_secret(pin_dagster: Run) -> None:
    value = fp.definitions(fp.PIN_PIPELINE).load_asset_value(
        dg.AssetKey(["pin", "checked"]), instance=pin_dagster.instance
    )

    assert value == "SecretStr"


def test_a_param_annotated_secret_is_hidden_from_run_config_whatever_its_value() -> None:
    job = fp.pin_job()

    assert fp.PIN not in repr(job.run_config)
    assert fp.PIN not in serialize_value(job.get_job_snapshot())


def test_the_published_data_version_does_not_let_anyone_test_guesses_of_a_secret(
    pin_dagster: Run,
) -> None:
    """Everything but the store's own key is known to whoever reads the event log: the code,
    the wiring, the other params. Trying all 10,000 PINs finds none that gives the version."""
    tags = pin_dagster.materializations()[dg.AssetKey(["pin", "checked"])].tags or {}
    published = tags["dagster/data_version"]
    guessed_keys = {
        fp.check_pin.get_cache_key({}, {"pin": SecretStr(f"{guess:04d}")}, secret_key=key)
        for guess in range(10_000)
        for key in (None, bytes(32))
    }

    assert len(published) == 64
    assert not [key for key in guessed_keys if key.endswith(published)]


class Credentials(BaseModel):
    user: str
    password: SecretStr


def test_a_model_param_holding_a_secret_is_hidden_from_run_config() -> None:
    @step(outputs=["connected"], register=False)
    def connect(creds: Credentials) -> str:
        return creds.user

    pipeline = Pipeline(
        "creds",
        context={"creds": {"user": "bob", "password": "hunter2-PLAINPW"}},
        steps=[connect],
    )
    job = build_definitions([pipeline]).resolve_job_def("creds")

    assert "hunter2-PLAINPW" not in repr(job.run_config)
    assert "hunter2-PLAINPW" not in serialize_value(job.get_job_snapshot())
