"""Network fetcher for the TUF client: plain GETs for metadata, resumable GETs for bundles.

A pole on a cellular link loses its connection mid-download; starting a 30 MB
bundle over each time could mean it never finishes. Target downloads are
therefore written to a `.part` file named after the (hash-prefixed) URL and
resumed with an HTTP Range request. The bytes are still only trusted after
ngclient has checked the length and hashes from signed metadata; a length
above the signed one aborts the download at once (endless-data attack).
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import urllib3

from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]


class ResumableFetcher(FetcherInterface):
    """`FetcherInterface` with HTTP Range resume for URLs under `resumable_prefix`."""

    def __init__(
        self,
        partial_dir: Path,
        resumable_prefix: str,
        timeout_s: float = 30.0,
        retries: int = 3,
        ca_file: Path | None = None,
        chunk_size: int = 256 * 1024,
        user_agent: str = "polewatch-ota",
    ):
        self.partial_dir = Path(partial_dir)
        self.resumable_prefix = resumable_prefix
        self.timeout_s = timeout_s
        self.retries = retries
        self.chunk_size = chunk_size
        self.progress: Progress | None = None
        self.bytes_received = 0  # over the network, for tests and benchmarks
        kw = {}
        if ca_file:
            kw["ssl_context"] = ssl.create_default_context(cafile=str(ca_file))
        self._pool = urllib3.PoolManager(headers={"User-Agent": user_agent}, retries=False, **kw)

    def _request(self, url: str, offset: int = 0) -> urllib3.BaseHTTPResponse:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = self._pool.request("GET", url, headers=headers, preload_content=False,
                                      timeout=urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s))
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError(f"{url}: {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise exceptions.DownloadError(f"{url}: {exc}") from exc
        if resp.status >= 400:
            resp.release_conn()
            raise exceptions.DownloadHTTPError(f"{url}: HTTP {resp.status}", resp.status)
        return resp

    def _stream(self, resp: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        try:
            # read1: hand over whatever arrived, so bytes before a dropped link are kept for resume
            while chunk := resp.read1(self.chunk_size):
                self.bytes_received += len(chunk)
                yield chunk
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError(str(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise exceptions.DownloadError(f"connection lost: {exc}") from exc
        finally:
            resp.release_conn()

    def _fetch(self, url: str) -> Iterator[bytes]:
        return self._stream(self._request(url))

    def part_path(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()[:24]
        return self.partial_dir / f"{key}.part"

    @contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO]:
        if not url.startswith(self.resumable_prefix):
            with super().download_file(url, max_length) as f:
                yield f
            return
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        part = self.part_path(url)
        f = open(part, "a+b")
        try:
            self._fill(url, f, max_length)
            f.seek(0)
            yield f
        except BaseException as exc:
            # wrong bytes (too many, or a complete file failing its hash): start from
            # zero next time; an interrupted transfer keeps its part to resume
            f.close()
            wrong = isinstance(exc, (exceptions.DownloadLengthMismatchError, exceptions.LengthOrHashMismatchError))
            if wrong or (part.exists() and part.stat().st_size >= max_length):
                part.unlink(missing_ok=True)
            raise
        else:
            f.close()
            part.unlink(missing_ok=True)
        finally:
            f.close()

    def _fill(self, url: str, f: IO, max_length: int) -> None:
        """Append to the partial file until it holds `max_length` bytes (or the server stops)."""
        attempt = 0
        while True:
            f.seek(0, os.SEEK_END)
            have = f.tell()
            if have > max_length:
                f.truncate(0)
                have = 0
            if have == max_length:
                return  # complete from an earlier attempt; ngclient's hash check decides
            try:
                resp = self._request(url, have)
                if have and resp.status != 206:
                    log.info("server ignored Range for %s; restarting download", url)
                    f.truncate(0)
                    f.seek(0)
                    have = 0
                elif have:
                    log.info("resuming %s at byte %d", url, have)
                for chunk in self._stream(resp):
                    if have + len(chunk) > max_length:
                        f.truncate(0)
                        f.flush()
                        raise exceptions.DownloadLengthMismatchError(
                            f"{url}: server sent more than the signed length of {max_length} bytes")
                    f.write(chunk)
                    have += len(chunk)
                    if self.progress:
                        self.progress("download", have, max_length)
                f.flush()
                os.fsync(f.fileno())
                return
            except exceptions.DownloadHTTPError as exc:
                if exc.status_code == 416 and have:
                    # we already hold all bytes the server has (or the part is bogus): let the hash decide
                    return
                raise
            except (exceptions.SlowRetrievalError, exceptions.DownloadError) as exc:
                if isinstance(exc, exceptions.DownloadLengthMismatchError):
                    raise
                f.flush()
                os.fsync(f.fileno())
                attempt += 1
                if attempt > self.retries:
                    raise
                log.warning("download of %s interrupted at %d bytes (%s); retry %d", url, have, exc, attempt)
                time.sleep(min(2.0 * attempt, 10.0))
