"""A vLLM V1 KV connector that has kvh scrub and verify every finished request's KV blocks
before vLLM frees them (``kvh trace --listen``, docs/protocol.md).

Interface: ``KVConnectorBase_V1`` of ``vllm/distributed/kv_transfer/kv_connector/v1/base.py`` as
read at vLLM main commit 003df29 — the three-argument constructor ``(vllm_config, role,
kv_cache_config)`` (vLLM pull request 27887, November 2025), ``request_finished(request,
block_ids) -> (bool, params)`` and ``get_finished(finished_req_ids) -> (sending, recving)``.
Tested without vLLM: the tests put a minimal stand-in of that module on ``sys.path`` and drive
this class with the calls vLLM makes (README, "Using kvh with your serving engine").

How it works:

- worker side, ``register_kv_caches``: each layer's tensor becomes a kvh pool (CUDA tensors by
  IPC handle of their allocation; CPU tensors only when they live in a shared-memory file and
  carry its path as ``kvh_path``), with one region per K/V half found from the tensor's shape;
- scheduler side, ``build_connector_meta``: blocks newly given to each request are sent to the
  workers to be assigned in kvh to the request's tenant (``cache_salt``, else
  ``kv_transfer_params["kvh_tenant_id"]``, else ``default_tenant``);
- scheduler side, ``request_finished``: returns ``True`` (the blocks must not be freed yet) and
  hands the request to the workers;
- worker side, ``get_finished``: releases the request's blocks through kvh (one batch for all
  layers) and reports the request only once kvh acknowledged every layer. A failed or
  quarantined release is never reported, so vLLM never frees — never reuses — those blocks.

Configuration (``--kv-transfer-config``)::

    {"kv_connector": "KvhConnector", "kv_connector_module_path": "kvh_vllm", "kv_role": "kv_both",
     "kv_connector_extra_config": {"kvh_socket": "/run/kvh/kvh.sock", "default_tenant": "shared"}}

with ``--no-enable-prefix-caching``: kvh zeroes blocks when their request finishes, so a cached
prefix would read zeros.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from vllm.distributed.kv_transfer.kv_connector.v1.base import (
    KVConnectorBase_V1,
    KVConnectorMetadata,
    KVConnectorRole,
)

from kvh_client import KvhClient, KvhError

logger = logging.getLogger("kvh_vllm")

_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9._:@-]")


def kvh_identifier(value: Any, fallback: str) -> str:
    """An identifier kvh accepts: other characters become ``_``, at most 256 of them."""
    text = _NOT_IDENTIFIER.sub("_", str(value or "")).replace("..", "_.")[:256]
    return text or fallback


def _first_group(block_ids: Any) -> List[int]:
    # vLLM passes one list per KV-cache group (a tuple) in some places and a plain list in others.
    if block_ids and isinstance(block_ids[0], (list, tuple)):
        return [int(b) for b in block_ids[0]]
    return [int(b) for b in (block_ids or [])]


@dataclass
class KvhConnectorMetadata(KVConnectorMetadata):
    """Scheduler → worker: blocks to assign and requests to release in this step."""

    assign: List[Tuple[str, str, List[int]]] = field(default_factory=list)
    release: List[str] = field(default_factory=list)


def tensor_pool(name: str, tensor: Any, num_blocks: int) -> Dict[str, Any]:
    """The ``register_pool`` fields of one layer's KV tensor.

    The block dimension is the one whose size is ``num_blocks``; every index of the dimensions
    before it (vLLM's leading 2 for K and V) is one region.
    """
    shape = list(tensor.shape)
    strides = list(tensor.stride())
    element = tensor.element_size()
    if num_blocks not in shape:
        raise ValueError(f"kvh: layer {name} has no dimension of {num_blocks} blocks: {shape}")
    dim = shape.index(num_blocks)
    block_stride = strides[dim] * element
    block_bytes = element
    for size in shape[dim + 1 :]:
        block_bytes *= size
    offsets = [0]
    for size, stride in zip(shape[:dim], strides[:dim]):
        offsets = [o + i * stride * element for o in offsets for i in range(size)]
    regions = [{"offset": o, "block_stride": block_stride, "block_bytes": block_bytes} for o in offsets]
    nbytes = max(o for o in offsets) + (num_blocks - 1) * block_stride + block_bytes
    pool = {"pool": kvh_identifier(name, "layer"), "bytes": nbytes, "blocks": num_blocks, "regions": regions}
    if tensor.device.type == "cuda":
        storage = tensor.untyped_storage()
        # (device, handle, size, offset of the storage in the allocation, ...) in PyTorch.
        shared = storage._share_cuda_()
        import base64

        import torch

        pool.update(
            device="cuda",
            ipc_handle=base64.b64encode(bytes(shared[1])).decode(),
            gpu_uuid=f"GPU-{torch.cuda.get_device_properties(tensor.device).uuid}",
            offset=int(shared[3]) + tensor.storage_offset() * element,
        )
    elif getattr(tensor, "kvh_path", None):
        pool.update(device="cpu", path=tensor.kvh_path)
    else:
        raise ValueError(f"kvh: layer {name} is in process-private CPU memory that kvh cannot reach")
    return pool


class KvhConnector(KVConnectorBase_V1):
    """vLLM KV connector: blocks are freed only after kvh zeroed and read them back."""

    def __init__(self, vllm_config: Any, role: KVConnectorRole, kv_cache_config: Any = None):
        super().__init__(vllm_config, role, kv_cache_config)
        extra = dict(getattr(self._kv_transfer_config, "kv_connector_extra_config", None) or {})
        self._socket = extra.get("kvh_socket") or os.environ.get("KVH_SOCKET", "/run/kvh/kvh.sock")
        self._default_tenant = kvh_identifier(extra.get("default_tenant"), "default")
        model = getattr(getattr(vllm_config, "model_config", None), "model", None)
        self._model = kvh_identifier(model, "model")
        self._num_blocks = int(getattr(kv_cache_config, "num_blocks", 0) or 0)
        # Scheduler side.
        self._tenants: Dict[str, str] = {}
        self._to_assign: List[Tuple[str, str, List[int]]] = []
        self._to_release: List[str] = []
        # Worker side.
        self._client: Optional[KvhClient] = None
        self._pools: List[str] = []
        self._handles: Dict[str, List[str]] = {}
        self._unassigned: Set[str] = set()
        self._releasing: Set[str] = set()
        self._released: Set[str] = set()
        self._seen_finished: Set[str] = set()

    # ---------------------------------------------------------------------- scheduler side

    def get_num_new_matched_tokens(self, request: Any, num_computed_tokens: int) -> Tuple[int, bool]:
        return 0, False

    def update_state_after_alloc(self, request: Any, blocks: Any, num_external_tokens: int) -> None:
        self._tenants[request.request_id] = self._tenant_of(request)

    def _tenant_of(self, request: Any) -> str:
        salt = getattr(request, "cache_salt", None)
        params = getattr(request, "kv_transfer_params", None) or {}
        return kvh_identifier(salt or params.get("kvh_tenant_id"), self._default_tenant)

    def build_connector_meta(self, scheduler_output: Any) -> KvhConnectorMetadata:
        for new in getattr(scheduler_output, "scheduled_new_reqs", None) or []:
            self._queue_assign(new.req_id, _first_group(new.block_ids))
        cached = getattr(scheduler_output, "scheduled_cached_reqs", None)
        if cached is not None:
            for req_id, new_ids in zip(cached.req_ids, cached.new_block_ids):
                if new_ids is not None:
                    self._queue_assign(req_id, _first_group(new_ids))
        meta = KvhConnectorMetadata(assign=self._to_assign, release=self._to_release)
        self._to_assign, self._to_release = [], []
        return meta

    def _queue_assign(self, req_id: str, blocks: List[int]) -> None:
        if blocks:
            self._to_assign.append((req_id, self._tenants.get(req_id, self._default_tenant), blocks))

    def request_finished(self, request: Any, block_ids: List[int]) -> Tuple[bool, Optional[Dict[str, Any]]]:
        self._tenants.pop(request.request_id, None)
        if not _first_group(block_ids):
            return False, None
        # The blocks stay allocated until a worker reports the request from get_finished().
        self._to_release.append(request.request_id)
        return True, None

    # ---------------------------------------------------------------------- worker side

    def register_kv_caches(self, kv_caches: Dict[str, Any]) -> None:
        self._client = KvhClient(self._socket, engine="vllm")
        pools = [tensor_pool(name, tensor, self._num_blocks) for name, tensor in kv_caches.items()]
        replies = self._client.batch([{"op": "register_pool", **pool} for pool in pools])
        for pool, reply in zip(pools, replies):
            if not reply.get("ok"):
                error = reply.get("error", {})
                raise KvhError(error.get("code", "unknown"), f"layer {pool['pool']}: {error.get('message')}")
        self._pools = [pool["pool"] for pool in pools]

    def start_load_kv(self, forward_context: Any, **kwargs: Any) -> None:
        meta = self._connector_metadata
        if not isinstance(meta, KvhConnectorMetadata) or self._client is None:
            return
        if meta.assign:
            self._assign(meta.assign)
        self._releasing.update(meta.release)

    def _assign(self, assigns: Iterable[Tuple[str, str, List[int]]]) -> None:
        assert self._client is not None
        requests = []
        owners = []
        for req_id, tenant, blocks in assigns:
            for pool in self._pools:
                requests.append(
                    {
                        "op": "assign",
                        "pool": pool,
                        "blocks": blocks,
                        "tenant_id": tenant,
                        "request_id": kvh_identifier(req_id, "request"),
                        "model_id": self._model,
                    }
                )
                owners.append(req_id)
        for req_id, reply in zip(owners, self._client.batch(requests)):
            if reply.get("ok"):
                self._handles.setdefault(req_id, []).append(reply["handle"])
            else:
                # kvh quarantined blocks another tenant still held: vLLM reused them without a
                # release (preemption). The run's metrics show it; the gate fails on it.
                self._unassigned.add(req_id)
                logger.error("kvh refused blocks of request %s: %s", req_id, reply.get("error"))

    def wait_for_layer_load(self, layer_name: str) -> None:
        return None

    def save_kv_layer(self, layer_name: str, kv_layer: Any, attn_metadata: Any, **kwargs: Any) -> None:
        return None

    def wait_for_save(self) -> None:
        return None

    def get_finished(self, finished_req_ids: Set[str]) -> Tuple[Optional[Set[str]], Optional[Set[str]]]:
        self._seen_finished.update(finished_req_ids)
        ready = [r for r in self._releasing if r in self._seen_finished]
        for req_id in ready:
            self._releasing.discard(req_id)
            if self._release(req_id):
                self._released.add(req_id)
            self._seen_finished.discard(req_id)
        done, self._released = self._released, set()
        return (done or None), None

    def _release(self, req_id: str) -> bool:
        handles = self._handles.pop(req_id, [])
        if req_id in self._unassigned or self._client is None or not handles:
            # Blocks kvh never saw assigned cannot be proven clean: they are never freed.
            self._unassigned.discard(req_id)
            logger.error("blocks of request %s were not all assigned in kvh, never freeing them", req_id)
            return False
        try:
            replies = self._client.batch([{"op": "release", "handle": h} for h in handles])
        except KvhError as error:
            logger.error("kvh unreachable, blocks of request %s stay dirty: %s", req_id, error)
            return False
        failed = [r.get("error") for r in replies if not r.get("ok") or r.get("quarantined")]
        if failed:
            logger.error("kvh did not clear the blocks of request %s, never freeing them: %s", req_id, failed)
            return False
        return True

    def shutdown(self) -> None:
        if self._client is not None:
            try:
                self._client.bye()
            except KvhError:
                pass
            self._client = None
