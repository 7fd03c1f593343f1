"""A loopback hub-compatible server for tests: olah in offline mode over local git repos.

Machines running the tests have no internet, so the Hub adapter is tested end to
end with the real huggingface_hub client against olah (PyPI ``olah``), which serves
git repositories created on local disk. ../shared/HUB_TESTING.md lists what olah
offline supports.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_REPO = "tafa-test/ready"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "tafa-tests",
    "GIT_AUTHOR_EMAIL": "tests@tafa.invalid",
    "GIT_COMMITTER_NAME": "tafa-tests",
    "GIT_COMMITTER_EMAIL": "tests@tafa.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_olah_can_serve(repo: Path) -> None:
    """Fail early on files olah 0.5.4 cannot serve.

    olah reads every file of 121 to 149 bytes as a possible git-lfs pointer and
    decodes it as UTF-8; a binary file of that size answers HTTP 500.
    """
    for path in repo.rglob("*"):
        if ".git" in path.parts or not path.is_file() or not 120 < path.stat().st_size < 150:
            continue
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                "olah cannot serve a binary file of 121-149 bytes (it parses such files as "
                f"git-lfs pointers); change the test model. Received: {path}"
            ) from None


class LoopbackHub:
    """An olah server on 127.0.0.1 serving git repositories under ``root/mirrors``.

    Args:
        root: an empty working folder (repositories, olah's cache, logs, config).
        mirrors: serve the repositories of this folder instead of ``root/mirrors``
            (a second server over the same repositories).
    """

    def __init__(self, root: Path, mirrors: Path | None = None) -> None:
        self.root = Path(root)
        self.mirrors = Path(mirrors) if mirrors is not None else self.root / "mirrors"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The base URL to put in HF_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def add_repo(
        self, repo_id: str, files: dict[str, Path | bytes | str], message: str = "upload"
    ) -> str:
        """Commit ``files`` to the model repository ``repo_id`` (created if new).

        Args:
            repo_id: ``ORG/NAME``.
            files: repo-relative path -> bytes, text, or a local file or folder to copy.
            message: the commit message.

        Returns:
            The full sha of the new commit.
        """
        repo = self.mirrors / "models" / repo_id
        if not (repo / ".git").exists():
            repo.mkdir(parents=True)
            self._git(repo, "init", "-q", "-b", "main")
        for rel, content in files.items():
            dest = repo / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path) and content.is_dir():
                shutil.copytree(content, dest, dirs_exist_ok=True)
            elif isinstance(content, Path):
                shutil.copyfile(content, dest)
            else:
                dest.write_bytes(content.encode() if isinstance(content, str) else content)
        _check_olah_can_serve(repo)
        self._git(repo, "add", "-A")
        self._git(repo, "commit", "-q", "--allow-empty", "-m", message)
        return self._git(repo, "rev-parse", "HEAD").strip()

    @staticmethod
    def _git(repo: Path, *args: str) -> str:
        env = {**os.environ, **_GIT_ENV}
        out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
        return out.stdout.decode()

    def start(self, timeout: float = 60.0) -> None:
        """Start olah and wait until it answers for a repository.

        Raises:
            RuntimeError: olah exited or did not answer within ``timeout`` seconds.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.mirrors / "models" / READY_REPO).exists():
            self.add_repo(READY_REPO, {"README.md": "ready\n"})
        config = self.root / "olah.toml"
        config.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            f'repos-path = "{self.root / "olah-cache"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            "[accessibility]\n"
            "offline = true\n"
        )
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        command = [sys.executable, "-c", "from olah.server import cli; cli()"]
        command += ["-c", str(config), "--log-path", str(logs)]
        with open(logs / "olah.out", "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )
        url = f"{self.endpoint}/api/models/{READY_REPO}/revision/main"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited with code {self.process.returncode}; see {logs}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"olah did not answer on {url} within {timeout} s; see {logs}")

    def stop(self) -> None:
        """Stop the server started by :meth:`start` (by its PID) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def point_hf_at(monkeypatch, hub: LoopbackHub, home: Path) -> None:
    """Point huggingface_hub at ``hub`` with an empty cache in ``home`` and no token.

    Args:
        monkeypatch: pytest's monkeypatch fixture (the environment is restored after).
        hub: the running server.
        home: a fresh folder for HF_HOME.
    """
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(home))
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
