"""
A small server that speaks the part of the Hugging Face Hub protocol that `upload_folder` and `from_pretrained`
use (create repo, preupload, NDJSON commit, resolve, revision info), for tests on 127.0.0.1 via HF_ENDPOINT.
Files are kept in memory; writes need the token given at start.
"""

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class HubState:
    def __init__(self, token: str, user: str):
        self.token = token
        self.user = user  # the only namespace that exists; others answer "not found" like an unknown org
        self.repos: dict[str, dict] = {}  # model repositories
        self.spaces: dict[str, dict] = {}  # Space repositories (their "sdk" kept, as the Hub shows it)
        self.commits = 0
        self.fail_commits = False  # answer commits with a server error, to test that nothing is half-uploaded


def make_handler(state: HubState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        # -- helpers -------------------------------------------------------------------------------------------
        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload, headers=None):
            self._send(status, json.dumps(payload).encode(), headers)

        def _error(self, status: int, code: str, message: str):
            self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {state.token}":
                return True
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _repo(self, repo_id: str, kind: str = "models"):
            repo = (state.spaces if kind == "spaces" else state.repos).get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return repo

        def _info(self, repo_id: str, repo: dict, revision: str = "main") -> dict:
            sha, files = self._at(repo, revision)
            return {
                "id": repo_id,
                "modelId": repo_id,
                "sha": sha,
                "private": repo["private"],
                "siblings": [{"rfilename": path} for path in sorted(files or {})],
            }

        @staticmethod
        def _at(repo: dict, revision: str) -> tuple[str, dict | None]:
            """(commit sha, files) of a revision: "main" (the newest) or a commit sha; files None if unknown."""
            if revision == "main":
                return repo["sha"], repo["files"]
            return revision, repo.get("history", {}).get(revision)

        # -- routes ----------------------------------------------------------------------------------------------
        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path = unquote(urlparse(self.path).path)
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo_id = "/".join(parts[2:4])
                repo = self._repo(repo_id)
                if repo is None:
                    return
                if len(parts) >= 6 and parts[4] == "tree":
                    prefix = "/".join(parts[6:])
                    entries = [
                        {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in sorted(repo["files"].items())
                        if name.startswith(prefix)
                    ]
                    return self._json(200, entries)
                revision = parts[5] if len(parts) >= 6 and parts[4] == "revision" else "main"
                if self._at(repo, revision)[1] is None:
                    return self._error(404, "RevisionNotFound", f"revision {revision} not found in {repo_id}")
                return self._json(200, self._info(repo_id, repo, revision))
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                repo = self._repo(repo_id)
                if repo is None:
                    return
                sha, files = self._at(repo, revision)
                if files is None:
                    return self._error(404, "RevisionNotFound", f"revision {revision} not found in {repo_id}")
                if filename not in files:
                    return self._error(404, "EntryNotFound", f"{filename} does not exist in {repo_id}")
                data = files[filename]
                headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
                return self._send(200, data, headers, content_type="application/octet-stream")
            self._error(404, "NotFound", f"no route for GET {path}")

        def do_POST(self):
            path = unquote(urlparse(self.path).path)
            parts = path.strip("/").split("/")
            body = self._body()
            if parts == ["api", "validate-yaml"]:  # model card metadata check before a README upload
                return self._json(200, {"errors": [], "warnings": []})
            if not self._authorized():
                return
            if parts == ["api", "repos", "create"]:
                payload = json.loads(body)
                namespace = payload.get("organization") or state.user
                repo_id = f"{namespace}/{payload['name']}"
                if namespace != state.user:
                    return self._error(404, "RepoNotFound", f"namespace {namespace} not found")
                repos = state.spaces if payload.get("type") == "space" else state.repos
                if repo_id in repos:  # the Hub's 409 names the existing repo's URL (the client reads it)
                    message = "You already created this repo"
                    return self._json(
                        409,
                        {"error": message, "url": f"http://{self.headers['Host']}/{repo_id}"},
                        {"X-Error-Code": "RepoExists", "X-Error-Message": message},
                    )
                repos[repo_id] = {"sha": "0" * 40, "files": {}, "private": payload.get("visibility") == "private"}
                if payload.get("type") == "space":
                    repos[repo_id]["sdk"] = payload.get("sdk")
                return self._json(200, {"url": f"http://{self.headers['Host']}/{repo_id}"})
            if parts[:2] in (["api", "models"], ["api", "spaces"]) and len(parts) >= 6:
                repo_id, action = "/".join(parts[2:4]), parts[4]
                repo = self._repo(repo_id, parts[1])
                if repo is None:
                    return
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(
                        200,
                        {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
                    )
                if action == "commit":
                    if state.fail_commits:
                        return self._error(500, "InternalError", "storage backend failed")
                    changes = {}
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            changes[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        elif item["key"] != "header":
                            return self._error(400, "BadRequest", f"unsupported commit entry {item['key']}")
                    repo["files"].update(changes)
                    digest = hashlib.sha1(repo["sha"].encode())
                    for name in sorted(changes):
                        digest.update(name.encode() + changes[name])
                    repo["sha"] = digest.hexdigest()
                    repo.setdefault("history", {})[repo["sha"]] = dict(
                        repo["files"]
                    )  # each commit stays readable by its sha
                    state.commits += 1
                    url = f"http://{self.headers['Host']}/{repo_id}/commit/{repo['sha']}"
                    return self._json(200, {"commitUrl": url, "commitOid": repo["sha"], "pullRequestUrl": None})
            self._error(404, "NotFound", f"no route for POST {path}")

    return Handler


class LocalHub:
    """`with LocalHub(token) as hub:` serves on 127.0.0.1:<free port>; `hub.endpoint` is its URL."""

    def __init__(self, token: str = "hf_test_token", user: str = "alice"):
        self.state = HubState(token, user)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
