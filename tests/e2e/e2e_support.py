"""Support for the end-to-end tests: Dagster servers as real processes, and a GraphQL client.

Every server runs as its own session and process group, with SIGINT and SIGTERM back at their
defaults (a shell's ``&`` would leave them ignored, and ``dagster dev`` would then never stop).
Each server's environment carries a random token that every descendant inherits, so after a stop
``/proc/*/environ`` tells whether any process of that server (webserver, daemon, code server, run
worker, step process, a step's timeout child) is still alive, even one that left the group.

Not a test module; imported by the tests of this directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
LOCATIONS = Path(__file__).resolve().parent / "locations"
EXAMPLES_LOCATION = "flowyml_examples"
SCHEDULE_LOCATION = "e2e_schedule"
REPOSITORY = "__repository__"
TOKEN_ENV = "FLOWYML_E2E_SERVER_TOKEN"

READY_TIMEOUT = 240.0  # a server on two slow, loaded cores, loading the examples (sklearn, pandas)
STOP_TIMEOUT = 60.0
RUN_TIMEOUT = 300.0
POLL_SECONDS = 0.25
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
_PR_SET_PDEATHSIG = 1
try:  # loaded here, not between fork and exec, where dlopen could deadlock
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None

T = TypeVar("T")


def executable(name: str) -> str:
    """A console script of the virtualenv running the tests (``dagster``, ``dagster-webserver``)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"'{name}' is neither beside {sys.executable} nor on PATH")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS just handed out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = POLL_SECONDS
) -> T:
    """Poll ``probe`` until it returns something other than ``None``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- Dagster instances ------------------------------------------------------------------------


def make_dagster_home(
    path: Path, *, queued_runs: bool = True, storage: Mapping[str, Any] | None = None
) -> Path:
    """A fresh ``DAGSTER_HOME``: telemetry and the welcome dialog off.

    ``queued_runs=False`` sets the ``DefaultRunCoordinator``, which launches a run at once; the
    default (queued) coordinator needs the daemon to dequeue runs. ``storage`` is the instance's
    ``storage:`` block (e.g. ``PostgresServer.dagster_storage()``); without it, Dagster's default
    SQLite files in ``path``.
    """
    path.mkdir(parents=True, exist_ok=True)
    lines = ["telemetry:", "  enabled: false", "nux:", "  enabled: false"]
    if not queued_runs:
        lines += [
            "run_coordinator:",
            "  module: dagster.core.run_coordinator",
            "  class: DefaultRunCoordinator",
        ]
    if storage is not None:
        lines.append(f"storage: {json.dumps(dict(storage))}")  # JSON is valid YAML
    (path / "dagster.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_workspace(path: Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    """A workspace file; JSON is valid YAML, so no YAML writer is needed."""
    path.write_text(json.dumps({"load_from": list(entries)}, indent=2), encoding="utf-8")
    return path


def python_file_entry(module_file: Path, location_name: str) -> dict[str, Any]:
    return {
        "python_file": {
            "relative_path": str(module_file),
            "working_directory": str(module_file.parent),
            "location_name": location_name,
        }
    }


# --- processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    """A process as /proc shows it; ``start_ticks`` tells it from a later reuse of its pid."""

    pid: int
    ppid: int
    pgid: int
    state: str
    start_ticks: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} (ppid {self.ppid}, pgid {self.pgid}, {self.state}): {self.command}"


def process_info(pid: int) -> ProcessInfo | None:
    """The process ``pid``, or ``None`` if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        raw_command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    command = raw_command.replace(b"\0", b" ").decode(errors="replace").strip()
    return ProcessInfo(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        state=fields[0],
        start_ticks=int(fields[19]),
        command=command[:300],
    )


def is_alive(process: ProcessInfo) -> bool:
    """True while ``process`` (the same one, not a reuse of its pid) exists and is not a zombie."""
    now = process_info(process.pid)
    return now is not None and now.start_ticks == process.start_ticks and now.state != "Z"


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def processes_with_token(token: str) -> list[ProcessInfo]:
    """Live processes whose environment carries ``token`` (a server and all its descendants)."""
    needle = f"{TOKEN_ENV}={token}".encode()
    found = []
    for pid in all_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            info = process_info(pid)
            if info is not None and info.state != "Z":
                found.append(info)
    return found


def processes_in_group(pgid: int) -> list[ProcessInfo]:
    """Live (non-zombie) processes of process group ``pgid``."""
    found = []
    for pid in all_pids():
        info = process_info(pid)
        if info is not None and info.pgid == pgid and info.state != "Z":
            found.append(info)
    return found


def descendants(pid: int) -> list[ProcessInfo]:
    """``pid`` and every live process below it, as the parent links stand now."""
    infos = [info for info in map(process_info, all_pids()) if info is not None]
    children: dict[int, list[ProcessInfo]] = {}
    for info in infos:
        children.setdefault(info.ppid, []).append(info)
    root = process_info(pid)
    found = [root] if root is not None else []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child.pid)
    return [p for p in found if p.state != "Z"]


def wait_until_gone(processes: Iterable[ProcessInfo], *, timeout: float) -> list[ProcessInfo]:
    """Wait up to ``timeout`` for ``processes`` to end; return those still alive then."""
    watched = list(processes)
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in watched if is_alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(POLL_SECONDS)


def _prepare_server_process() -> None:  # pragma: no cover - runs in the child before exec
    """Reset SIGINT and SIGTERM, and ask for a Ctrl-C should the test process die.

    A shell's ``&`` leaves both signals ignored, and ``dagster dev`` then never stops. The
    death signal survives ``exec``, so a test process killed outright still stops its servers.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


@dataclass
class ServerProcess:
    """A server started by a test: its own session and process group, output in a log file."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    token: str
    log_path: Path
    port: int | None = None
    stopped: bool = False
    survivors: list[ProcessInfo] = field(default_factory=list)

    @property
    def pgid(self) -> int:
        return self.process.pid  # the leader of its own session and group

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def processes(self) -> list[ProcessInfo]:
        """Every live process of this server: its group, and anything carrying its token."""
        found = {p.pid: p for p in processes_in_group(self.pgid)}
        found.update((p.pid, p) for p in processes_with_token(self.token))
        return sorted(found.values(), key=lambda p: p.pid)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with code {code} (argv {self.argv});\n{self.log_tail()}"
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> list[ProcessInfo]:
        """Ctrl-C the whole group and wait for every process of the server to end.

        Whatever is still alive after ``timeout`` (or left the group and outlived the server)
        is SIGKILLed, recorded in ``survivors`` and returned: an empty list is a clean stop.
        """
        if self.stopped:
            return self.survivors
        self.stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while True:
            self.process.poll()  # reap the leader, so it does not linger as a zombie
            alive = self.processes()
            if not alive or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        self.survivors = alive
        if alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
            for straggler in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(straggler.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        return self.survivors


def start_server(
    name: str, argv: list[str], *, env: Mapping[str, str], cwd: Path, port: int | None = None
) -> ServerProcess:
    """Start ``argv`` as a server in its own session, output to ``test-artifacts/e2e/logs``."""
    log_dir = ARTIFACTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    token = uuid.uuid4().hex
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**env, TOKEN_ENV: token},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_prepare_server_process,
        )
    return ServerProcess(name, argv, process, token, log_path, port)


def server_env(dagster_home: Path, cache_dir: Path) -> dict[str, str]:
    """The environment of a server: this one, with its own instance and flowyml cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop(TOKEN_ENV, None)
    env.update(
        DAGSTER_HOME=str(dagster_home),
        FLOWYML_CACHE_DIR=str(cache_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


# --- GraphQL ----------------------------------------------------------------------------------


class GraphQLError(AssertionError):
    """The server answered a GraphQL request with errors."""


@dataclass(frozen=True)
class GraphQL:
    """A minimal GraphQL client over ``urllib``."""

    url: str

    def __call__(
        self, query: str, variables: Mapping[str, Any] | None = None, *, timeout: float = 60.0
    ) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"], indent=2))
        return payload["data"]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def wait_for_webserver(
    server: ServerProcess, locations: Iterable[str], *, timeout: float = READY_TIMEOUT
) -> GraphQL:
    """Wait until the server answers and has loaded ``locations``; a load error fails at once."""
    client = GraphQL(f"{server.url}/graphql")
    wanted = set(locations)

    def ready() -> bool | None:
        server.check_running()
        if not http_ok(f"{server.url}/server_info"):
            return None
        try:
            workspace = client(WORKSPACE_QUERY, timeout=10.0)["workspaceOrError"]
        except (OSError, GraphQLError):
            return None  # still starting
        if workspace["__typename"] != "Workspace":
            return None
        entries = {e["name"]: e for e in workspace["locationEntries"]}
        for name in wanted & set(entries):
            loaded = entries[name]["locationOrLoadError"]
            if loaded is not None and loaded["__typename"] == "PythonError":
                raise RuntimeError(
                    f"code location {name} failed to load: {loaded['message']}\n"
                    + "".join(loaded["stack"])
                )
        if wanted <= set(entries) and all(
            entries[n]["loadStatus"] == "LOADED" and entries[n]["locationOrLoadError"]
            for n in wanted
        ):
            return True
        return None

    try:
        wait_until(ready, timeout=timeout, what=f"{server.name} to serve {sorted(wanted)}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{server.log_tail()}") from exc
    return client


# --- runs -------------------------------------------------------------------------------------

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_STATUS = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status tags { key value } }
  }
}
"""

RUN_EVENTS = """
query($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 500) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message stepKey eventType }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries {
            label
            ... on TextMetadataEntry { text }
            ... on FloatMetadataEntry { floatValue }
            ... on IntMetadataEntry { intValue }
          }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

TERMINATE_RUN = """
mutation($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunSuccess { run { runId status } }
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}
"""

RUNS_WITH_TAG = """
query($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


def launch_run(
    client: GraphQL,
    job: str,
    *,
    location: str = EXAMPLES_LOCATION,
    run_config: Mapping[str, Any] | None = None,
) -> str:
    """Launch ``job`` through GraphQL and return the new run's id."""
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": REPOSITORY,
            "jobName": job,
        },
        "runConfigData": dict(run_config or {}),
    }
    result = client(LAUNCH_RUN, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise AssertionError(f"launchRun of {job} failed: {json.dumps(result, indent=2)}")
    return str(result["run"]["runId"])


def run_status(client: GraphQL, run_id: str) -> str:
    run = client(RUN_STATUS, {"runId": run_id})["runOrError"]
    if run["__typename"] != "Run":
        raise AssertionError(f"run {run_id}: {run['__typename']}")
    return str(run["status"])


def wait_for_run(
    client: GraphQL,
    run_id: str,
    *,
    statuses: Iterable[str] = TERMINAL_STATUSES,
    timeout: float = RUN_TIMEOUT,
) -> str:
    """Poll the run until its status is one of ``statuses``; return that status."""
    wanted = set(statuses)

    def reached() -> str | None:
        status = run_status(client, run_id)
        return status if status in wanted else None

    return wait_until(reached, timeout=timeout, what=f"run {run_id} to reach {sorted(wanted)}")


@dataclass(frozen=True)
class RunEvents:
    """The event log of one run, as GraphQL shows it."""

    events: list[dict[str, Any]]

    def of_type(self, typename: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["__typename"] == typename]

    def messages(self, step: str | None = None) -> list[str]:
        return [
            str(e.get("message") or "")
            for e in self.events
            if step is None or e.get("stepKey") == step
        ]

    def materializations(self) -> dict[str, dict[str, Any]]:
        """Materialized asset key (``"model/classifier"``) → its metadata by label."""
        found: dict[str, dict[str, Any]] = {}
        for event in self.of_type("MaterializationEvent"):
            metadata = {
                entry["label"]: next(
                    (entry[k] for k in ("text", "floatValue", "intValue") if k in entry), None
                )
                for entry in event["metadataEntries"]
            }
            found["/".join(event["assetKey"]["path"])] = metadata
        return found

    def process_ids(self, prefix: str) -> list[int]:
        """The pids that messages starting with ``prefix`` name, as in ``"... (pid: 123)."``."""
        pattern = re.compile(re.escape(prefix) + r".*\(pid: (\d+)\)")
        return [int(m.group(1)) for m in map(pattern.match, self.messages()) if m]

    def failure_summary(self) -> str:
        lines = [
            f"{e.get('eventType')} {e.get('stepKey') or ''}: {e.get('message')}"
            for e in self.events
            if "FAILURE" in str(e.get("eventType")) or e["__typename"].endswith("ErrorEvent")
        ]
        return "\n".join(lines) or "(no failure events)"


def run_events(client: GraphQL, run_id: str) -> RunEvents:
    """Every event of the run, following the cursor."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = client(RUN_EVENTS, {"runId": run_id, "cursor": cursor})["logsForRun"]
        if page["__typename"] != "EventConnection":
            raise AssertionError(f"events of run {run_id}: {page}")
        events.extend(page["events"])
        cursor = page["cursor"]
        if not page["hasMore"]:
            return RunEvents(events)


def run_to_completion(
    client: GraphQL,
    job: str,
    *,
    location: str = EXAMPLES_LOCATION,
    run_config: Mapping[str, Any] | None = None,
    timeout: float = RUN_TIMEOUT,
) -> tuple[str, str, RunEvents]:
    """Launch ``job``, wait for the end, and return ``(run id, final status, events)``."""
    run_id = launch_run(client, job, location=location, run_config=run_config)
    status = wait_for_run(client, run_id, timeout=timeout)
    return run_id, status, run_events(client, run_id)


def terminate_run(client: GraphQL, run_id: str) -> None:
    result = client(TERMINATE_RUN, {"runId": run_id})["terminateRun"]
    if result["__typename"] != "TerminateRunSuccess":
        raise AssertionError(f"terminateRun {run_id} failed: {result}")


def runs_with_tag(client: GraphQL, key: str, value: str) -> list[dict[str, Any]]:
    runs = client(RUNS_WITH_TAG, {"key": key, "value": value})["runsOrError"]
    if runs["__typename"] != "Runs":
        raise AssertionError(f"runsOrError: {runs}")
    return list(runs["results"])


# --- servers as context managers -----------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """A running webserver (with whatever serves its code) and what it was started with."""

    webserver: ServerProcess
    client: GraphQL
    dagster_home: Path
    root: Path

    @property
    def url(self) -> str:
        return self.webserver.url


@contextlib.contextmanager
def stopped_cleanly(server: ServerProcess) -> Iterator[ServerProcess]:
    """Stop ``server`` on exit, and fail if any of its processes had to be killed.

    When the body raises, the server is still stopped, but that error is the one reported.
    """
    try:
        yield server
    except BaseException:
        server.stop()
        raise
    survivors = server.stop()
    if survivors:
        listing = "\n".join(f"  {p}" for p in survivors)
        raise AssertionError(
            f"{server.name} left {len(survivors)} process(es) running after Ctrl-C "
            f"(killed now):\n{listing}\n{server.log_tail()}"
        )


def start_dagster_dev(
    name: str, workspace: Path, root: Path, *, storage: Mapping[str, Any] | None = None
) -> ServerProcess:
    """Start ``dagster dev -w workspace`` (webserver, daemon, code servers) on a free port.

    ``root`` holds its ``DAGSTER_HOME`` (default, queued run coordinator: runs wait for the
    daemon; ``storage`` as in :func:`make_dagster_home`) and the flowyml cache.
    """
    home = make_dagster_home(root / "dagster_home", storage=storage)
    port = free_port()
    argv = [executable("dagster"), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    env = server_env(home, root / "flowyml-cache")
    return start_server(name, argv, env=env, cwd=root, port=port)


@contextlib.contextmanager
def dagster_dev(
    name: str,
    workspace: Path,
    root: Path,
    locations: Iterable[str],
    *,
    storage: Mapping[str, Any] | None = None,
) -> Iterator[Deployment]:
    """A running ``dagster dev``, ready when every location in ``locations`` has loaded."""
    server = start_dagster_dev(name, workspace, root, storage=storage)
    with stopped_cleanly(server):
        client = wait_for_webserver(server, locations)
        yield Deployment(server, client, root / "dagster_home", root)


# --- the long step's processes ---------------------------------------------------------------


@dataclass(frozen=True)
class LongStepProcesses:
    """The processes of a run stuck in the long step: run worker, step process, timeout child."""

    run_worker: ProcessInfo
    step: ProcessInfo
    timeout_child: ProcessInfo
    tree: list[ProcessInfo]  # the run worker and all its descendants, once the step sleeps


def long_step_config(pid_file: Path) -> dict[str, Any]:
    return {"ops": {"sleep_long": {"config": {"pid_file": str(pid_file)}}}}


def wait_for_long_step(client: GraphQL, run_id: str, pid_file: Path) -> LongStepProcesses:
    """Wait until the run's long step has written its pids; return its live processes."""

    def recorded() -> dict[str, int] | None:
        if not pid_file.exists():
            status = run_status(client, run_id)
            if status in TERMINAL_STATUSES:
                raise AssertionError(f"run {run_id} ended ({status}) before its long step began")
            return None
        return dict(json.loads(pid_file.read_text(encoding="utf-8")))

    pids = wait_until(recorded, timeout=RUN_TIMEOUT, what=f"the long step of run {run_id}")
    worker_pids = run_events(client, run_id).process_ids("Started process for run")
    assert len(worker_pids) == 1, worker_pids
    found = [
        process_info(pid) for pid in (worker_pids[0], pids["step_pid"], pids["timeout_child_pid"])
    ]
    missing = [p for p in found if p is None]
    assert not missing, f"processes of run {run_id} gone before the test looked: {found}"
    worker, step, child = (p for p in found if p is not None)
    tree = descendants(worker.pid)
    assert {step.pid, child.pid} <= {p.pid for p in tree}, "the step is not the run's child"
    return LongStepProcesses(worker, step, child, tree)
