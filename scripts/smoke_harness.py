"""The deploy smoke's machinery: named steps, the processes they start, HTTP.

Only the standard library, like scripts/deploy_smoke.py, which runs its steps on it.
"""

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any


class StepFailed(Exception):
    pass


class Harness:
    """Steps that pass or fail by name, the processes they start in `root`, their
    logs, and requests to the web process on `port`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_dir = root / "run"
        self.logs = root / "logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self.passed = 0
        self.port = _free_port()
        self.env: dict[str, str] = {}

    # --- running things -----------------------------------------------------------

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        print(f"deploy-smoke: {name} ...", flush=True)
        started = time.monotonic()
        try:
            result = action()
        except StepFailed as error:
            raise StepFailed(f"step '{name}' failed: {error}") from None
        except Exception as error:  # noqa: BLE001 (any error fails the step, named)
            raise StepFailed(
                f"step '{name}' failed: {type(error).__name__}: {error}"
            ) from None
        self.passed += 1
        print(f"deploy-smoke: {name}: ok ({time.monotonic() - started:.1f} s)")
        return result

    def run(self, *command: str, timeout: float = 300, cwd: Path | None = None) -> str:
        """Run a command to its end; its output, or StepFailed with its tail."""
        completed = subprocess.run(
            command,
            cwd=cwd or self.run_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if completed.returncode != 0:
            tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-25:])
            raise StepFailed(
                f"{' '.join(command[:3])} ... exited {completed.returncode}:\n{tail}"
            )
        return completed.stdout

    def start(self, name: str, *command: str) -> None:
        # The child keeps its own copy of the log's descriptor.
        with open(self.logs / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=self.run_dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StepFailed(f"{name} exited with code {process.returncode}")

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                if condition():
                    return
            except (OSError, http.client.HTTPException, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise StepFailed(f"{what} not within {timeout:.0f} s")
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM to each main process (a warm shutdown: tasks finish), then
        SIGKILL to whatever of its process group is left."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for name, process in self.processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"deploy-smoke: {name} ignored SIGTERM for 30 s; killed")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def show_logs(self) -> None:
        for path in sorted(self.logs.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-30:]
            print(f"--- the end of {path.name} ---")
            print("\n".join(lines))

    # --- HTTP -----------------------------------------------------------------------

    def http(
        self,
        method: str,
        path: str,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        cookies: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """One request to gunicorn; cookies given are sent and updated from the answer.

        The cookies are kept by hand: production marks them Secure, and this plain
        HTTP client stands where a TLS proxy would.
        """
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            if cookies is not None:
                for header in response.headers.get_all("Set-Cookie") or []:
                    parsed = SimpleCookie(header)
                    cookies.update({key: m.value for key, m in parsed.items()})
            return response.status, dict(response.headers.items()), text
        finally:
            connection.close()

    def api(
        self,
        method: str,
        path: str,
        payload: Any,
        headers: dict[str, str],
        *,
        expect: int = 200,
    ) -> Any:
        body = None if payload is None else json.dumps(payload)
        sent = {**headers, "Content-Type": "application/json"}
        status, _, text = self.http(method, path, body, sent)
        if status != expect:
            raise StepFailed(f"{method} {path} answered {status}, not {expect}: {text}")
        return json.loads(text) if text else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
