"""``skillgym download``: against a checkpoint served by http.server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from skillgym.cli import main
from skillgym.extract.download import DownloadError, download_weights
from skillgym.extract.encoders import make_encoder, write_random_r3m_checkpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serves /r3m_18.pt (valid), /truncated.pt (announces more bytes than it sends),
    /garbage.pt (not a checkpoint); anything else is 404."""
    root = tmp_path_factory.mktemp("srv")
    write_random_r3m_checkpoint(root / "r3m_18.pt", size=18, seed=0)
    payload = (root / "r3m_18.pt").read_bytes()
    files = {"/r3m_18.pt": payload, "/garbage.pt": b"<html>not found</html>" * 50}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            if self.path == "/truncated.pt":
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", payload
    httpd.shutdown()
    httpd.server_close()


def test_download_and_use(server, tmp_path, capsys):
    url, payload = server
    dest = tmp_path / "weights" / "r3m_18.pt"
    sha = hashlib.sha256(payload).hexdigest()
    path = download_weights("r3m-18", url=f"{url}/r3m_18.pt", dest=dest, sha256=sha, expected_size=len(payload))
    assert path == dest and dest.read_bytes() == payload
    assert "download" in capsys.readouterr().err  # the tqdm progress bar
    assert not list(dest.parent.glob("*.part"))
    enc = make_encoder("r3m-18", weights=str(dest))
    assert enc.encode(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 512)


def test_download_into_cache_via_cli(server, tmp_path, monkeypatch, capsys):
    url, payload = server
    monkeypatch.setenv("SKILLGYM_CACHE", str(tmp_path / "cache"))
    assert main(["download", "r3m-18", "--url", f"{url}/r3m_18.pt"]) == 0
    cached = tmp_path / "cache" / "r3m" / "r3m_18.pt"
    assert cached.read_bytes() == payload
    assert str(cached) in capsys.readouterr().out
    monkeypatch.setenv("HOME", str(tmp_path))
    assert make_encoder("r3m-18").weights == str(cached)  # found in the cache without --weights


@pytest.mark.parametrize(
    ("path", "kwargs", "message"),
    [
        ("/truncated.pt", {}, "incomplete"),
        ("/r3m_18.pt", {"expected_size": 123}, "expected 123"),
        ("/r3m_18.pt", {"sha256": "0" * 64}, "sha256"),
        ("/garbage.pt", {}, "did not serve a valid r3m-18 checkpoint"),
        ("/missing.pt", {}, "cannot download"),
    ],
)
def test_bad_downloads_leave_no_file(server, tmp_path, path, kwargs, message):
    url, _ = server
    dest = tmp_path / "r3m_18.pt"
    with pytest.raises(DownloadError, match=message):
        download_weights("r3m-18", url=url + path, dest=dest, progress=False, **kwargs)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a .part


def test_download_cli_errors(server, tmp_path, capsys):
    url, _ = server
    with pytest.raises(SystemExit) as e:
        main(["download", "r3m-99", "--dest", str(tmp_path / "x.pt")])
    assert e.value.code == 2 and "unknown checkpoint 'r3m-99'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["download", "r3m-18", "--url", f"{url}/truncated.pt", "--dest", str(tmp_path / "x.pt")])
    assert "incomplete" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
