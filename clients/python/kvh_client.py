"""Python client of the kvh sidecar (``kvh trace --listen unix:PATH``), standard library only.

The protocol is documented in docs/protocol.md: one JSON object per line, requests
``{"v":1,"id":7,"op":"release",...}`` and replies ``{"v":1,"id":7,"ok":true,...}``.

Fail-secure contract for the engine: blocks a request used are dirty until :meth:`KvhClient.release`
returns. If it raises (kvh gone, timed out, answered an error, :class:`KvhQuarantined`), the
blocks must not be reused.

Example::

    from kvh_client import KvhClient, SharedPool, layer_regions

    pool = SharedPool(64 * 16384)                      # /dev/shm/<name>
    with KvhClient("/run/kvh/kvh.sock", engine="my-engine") as kvh:
        kvh.register_pool("kv0", pool.path, pool.size, blocks=64,
                          regions=[{"offset": 0, "block_stride": 16384, "block_bytes": 16384}])
        handle = kvh.assign("kv0", [3, 4], tenant_id="acme", request_id="r1", model_id="m")
        ...                                            # the engine writes KV bytes
        done = kvh.release(handle)                     # zeroed and read back by kvh
        assert done["coverage_pct"] == 100
"""

from __future__ import annotations

import base64
import json
import mmap
import os
import socket
import threading
from multiprocessing import shared_memory
from typing import Any, Dict, Iterable, List, Optional, Sequence

PROTOCOL_VERSION = 1

__all__ = [
    "PROTOCOL_VERSION",
    "KvhClient",
    "KvhError",
    "KvhQuarantined",
    "KvhUnavailable",
    "SharedPool",
    "flat_regions",
    "layer_regions",
]


class KvhError(Exception):
    """kvh answered ``ok: false``: ``code`` and ``message`` as in docs/protocol.md."""

    def __init__(self, code: str, message: str, reply: Optional[Dict[str, Any]] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply or {}


class KvhQuarantined(KvhError):
    """The blocks in ``blocks`` are quarantined (``reason`` says why): never reuse them."""

    def __init__(self, code: str, message: str, reply: Dict[str, Any]):
        super().__init__(code, message, reply)
        error = reply.get("error", {})
        self.reason: str = error.get("reason", "")
        self.blocks: List[int] = list(error.get("blocks", []))


class KvhUnavailable(KvhError):
    """kvh could not be reached or went away: every block in use stays dirty."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)


def flat_regions(block_bytes: int) -> List[Dict[str, int]]:
    """The layout of a flat pool: block ``b`` is ``[b * block_bytes, (b + 1) * block_bytes)``."""
    return [{"offset": 0, "block_stride": block_bytes, "block_bytes": block_bytes}]


def layer_regions(layers: int, num_blocks: int, block_bytes: int, kv: int = 2) -> List[Dict[str, int]]:
    """vLLM-style per-layer K and V tensors laid out one after another in one pool.

    Tensor ``t`` (``layer * kv + k_or_v``) starts at ``t * num_blocks * block_bytes``; block ``b``
    of it is at ``b * block_bytes`` from there, so each block id maps to one range per tensor.
    """
    tensor_bytes = num_blocks * block_bytes
    return [
        {"offset": t * tensor_bytes, "block_stride": block_bytes, "block_bytes": block_bytes}
        for t in range(layers * kv)
    ]


class SharedPool:
    """A CPU KV pool in shared memory that kvh can scrub in place.

    Without ``directory``, a :class:`multiprocessing.shared_memory.SharedMemory` segment
    (``/dev/shm/<name>`` on Linux, kvh's default ``--pool-dir``). With ``directory``, a file in
    that directory mapped with :mod:`mmap` (pass the same directory to ``--pool-dir``).
    ``buf`` is a writable memoryview of the whole pool; ``path`` is what to register.
    """

    def __init__(self, size: int, name: Optional[str] = None, directory: Optional[str] = None):
        if size <= 0:
            raise ValueError(f"Invalid pool size {size}: expected a positive number of bytes")
        self.size = size
        self._shm: Optional[shared_memory.SharedMemory] = None
        self._map: Optional[mmap.mmap] = None
        if directory is None:
            self._shm = shared_memory.SharedMemory(name=name, create=True, size=size)
            self.path = os.path.join("/dev/shm", self._shm.name.lstrip("/"))
            self.buf: memoryview = self._shm.buf
        else:
            self.path = os.path.join(os.path.realpath(directory), name or f"kvh-pool-{os.getpid()}-{id(self)}")
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, size)
                self._map = mmap.mmap(fd, size)
            finally:
                os.close(fd)
            self.buf = memoryview(self._map)

    def close(self) -> None:
        """Unmaps the pool (the file stays until :meth:`unlink`)."""
        self.buf.release()
        if self._shm is not None:
            self._shm.close()
        if self._map is not None:
            self._map.close()

    def unlink(self) -> None:
        """Removes the pool's file: register no pool with kvh after this."""
        if self._shm is not None:
            self._shm.unlink()
        else:
            os.unlink(self.path)

    def __enter__(self) -> "SharedPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self.unlink()


class KvhClient:
    """A connection to kvh. Thread-safe: one request at a time on the socket, replies matched by id.

    ``timeout`` bounds every wait for a reply; on timeout or a lost connection,
    :class:`KvhUnavailable` is raised and the connection is closed (blocks stay dirty).
    """

    def __init__(self, path: str, engine: str = "python", timeout: float = 30.0, hello: bool = True):
        self._lock = threading.Lock()
        self._next_id = 1
        self._stash: Dict[Any, Dict[str, Any]] = {}
        self._buffer = b""
        try:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.settimeout(timeout)
            self._sock.connect(path)
        except OSError as error:
            raise KvhUnavailable(f"cannot connect to kvh at {path}: {error}") from error
        self.capabilities: Dict[str, Any] = {}
        if hello:
            self.capabilities = self.hello(engine)

    # -- transport -------------------------------------------------------------------------

    def _send(self, payload: Any) -> None:
        try:
            self._sock.sendall((json.dumps(payload, separators=(",", ":")) + "\n").encode())
        except OSError as error:
            self.close()
            raise KvhUnavailable(f"kvh connection lost: {error}") from error

    def _read_line(self) -> Any:
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError as error:  # socket.timeout included
                self.close()
                raise KvhUnavailable(f"no reply from kvh: {error}") from error
            if not chunk:
                self.close()
                raise KvhUnavailable("kvh closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _wait(self, ids: Sequence[int]) -> Dict[int, Dict[str, Any]]:
        wanted = set(ids)
        while not wanted.issubset(self._stash):
            reply = self._read_line()
            for one in reply if isinstance(reply, list) else [reply]:
                self._stash[one.get("id")] = one
        return {i: self._stash.pop(i) for i in ids}

    def _envelope(self, op: str, fields: Dict[str, Any]) -> Dict[str, Any]:
        request = {"v": PROTOCOL_VERSION, "id": self._next_id, "op": op}
        self._next_id += 1
        request.update({k: v for k, v in fields.items() if v is not None})
        return request

    @staticmethod
    def _result(reply: Dict[str, Any]) -> Dict[str, Any]:
        if reply.get("ok"):
            return reply
        error = reply.get("error") or {}
        code = error.get("code", "unknown")
        if code == "quarantined":
            raise KvhQuarantined(code, error.get("message", ""), reply)
        raise KvhError(code, error.get("message", ""), reply)

    def request(self, op: str, **fields: Any) -> Dict[str, Any]:
        """Sends one request and returns its reply; raises :class:`KvhError` on ``ok: false``."""
        with self._lock:
            request = self._envelope(op, fields)
            self._send(request)
            return self._result(self._wait([request["id"]])[request["id"]])

    def pipeline(self, requests: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Sends every request (``{"op": …, …}``) at once, one line each, and returns the replies
        in request order without raising: check each reply's ``ok``."""
        with self._lock:
            sent = [self._envelope(r["op"], {k: v for k, v in r.items() if k != "op"}) for r in requests]
            if not sent:
                return []
            try:
                self._sock.sendall(
                    b"".join((json.dumps(r, separators=(",", ":")) + "\n").encode() for r in sent)
                )
            except OSError as error:
                self.close()
                raise KvhUnavailable(f"kvh connection lost: {error}") from error
            replies = self._wait([r["id"] for r in sent])
            return [replies[r["id"]] for r in sent]

    def batch(self, requests: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Sends the requests as one batch line (a JSON array); kvh answers with one array, in
        order. Replies are returned without raising."""
        with self._lock:
            sent = [self._envelope(r["op"], {k: v for k, v in r.items() if k != "op"}) for r in requests]
            self._send(sent)
            replies = self._wait([r["id"] for r in sent])
            return [replies[r["id"]] for r in sent]

    # -- operations ------------------------------------------------------------------------

    def hello(self, engine: str = "python", pid: Optional[int] = None) -> Dict[str, Any]:
        """Announces the engine; returns kvh's capabilities (``protocol``, ``devices``, ``limits``)."""
        return self.request("hello", engine=engine, pid=os.getpid() if pid is None else pid)

    def register_pool(
        self, pool: str, path: str, nbytes: int, blocks: int, regions: List[Dict[str, int]]
    ) -> Dict[str, Any]:
        """Registers a CPU pool file (see :class:`SharedPool`) with its block layout."""
        return self.request(
            "register_pool", pool=pool, device="cpu", path=path, bytes=nbytes, blocks=blocks, regions=regions
        )

    def register_cuda_pool(
        self,
        pool: str,
        ipc_handle: bytes,
        gpu_uuid: str,
        offset: int,
        nbytes: int,
        blocks: int,
        regions: List[Dict[str, int]],
    ) -> Dict[str, Any]:
        """Registers GPU memory: the ``cudaIpcMemHandle_t`` of the allocation's base, the offset of
        the pool in it and the GPU's UUID."""
        return self.request(
            "register_pool",
            pool=pool,
            device="cuda",
            ipc_handle=base64.b64encode(bytes(ipc_handle)).decode(),
            gpu_uuid=gpu_uuid,
            offset=offset,
            bytes=nbytes,
            blocks=blocks,
            regions=regions,
        )

    def assign(self, pool: str, blocks: Sequence[int], tenant_id: str, request_id: str, model_id: str) -> str:
        """Records that ``blocks`` now hold ``tenant_id``'s data; returns the handle to release."""
        reply = self.request(
            "assign", pool=pool, blocks=list(blocks), tenant_id=tenant_id, request_id=request_id, model_id=model_id
        )
        return reply["handle"]

    def release(
        self, handle: Optional[str] = None, pool: Optional[str] = None, blocks: Optional[Sequence[int]] = None
    ) -> Dict[str, Any]:
        """Has kvh zero and read back the blocks; returns ``{coverage_pct, bytes, duration_ms, blocks,
        shared, quarantined}`` once they are clean. Raises :class:`KvhQuarantined` when they must
        never be reused, :class:`KvhError` / :class:`KvhUnavailable` when they stay dirty."""
        if handle is not None:
            return self.request("release", handle=handle)
        return self.request("release", pool=pool, blocks=list(blocks or []))

    def stats(self) -> Dict[str, Any]:
        """kvh's counters."""
        return self.request("stats")

    def bye(self) -> None:
        """Ends the session politely; blocks still assigned are quarantined by kvh."""
        try:
            self.request("bye")
        finally:
            self.close()

    def close(self) -> None:
        """Closes the socket."""
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> "KvhClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
