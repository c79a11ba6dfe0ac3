"""Drives kvh_vllm.KvhConnector with the call sequence vLLM's V1 engine makes, against a running
kvh, with a stand-in of vLLM's connector base module (vLLM cannot be installed here).

Two layers, each a K/V tensor of shape (2, num_blocks, block_size, heads, head_dim) in its own
shared-memory file, as vLLM's FlashAttention backend lays them out. Checks from the engine's
side that the finished request's blocks are zero in every layer's K and V, the other request's
blocks untouched, and that get_finished reports the request only after kvh acknowledged.

Usage: vllm_connector_check.py SOCKET POOL_DIR
"""

import os
import sys
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "vllm_stand_in"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "clients", "python"))

from kvh_client import SharedPool  # noqa: E402
from kvh_vllm import KvhConnector, KvhConnectorMetadata  # noqa: E402
from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorRole  # noqa: E402

NUM_BLOCKS, BLOCK_SIZE, HEADS, HEAD_DIM, ELEMENT = 8, 16, 2, 16, 2
PER_BLOCK = BLOCK_SIZE * HEADS * HEAD_DIM * ELEMENT


class FakeTensor:
    """What the connector reads of a torch tensor: shape, strides, element size, device."""

    def __init__(self, path):
        self.shape = (2, NUM_BLOCKS, BLOCK_SIZE, HEADS, HEAD_DIM)
        inner = BLOCK_SIZE * HEADS * HEAD_DIM
        self._strides = (NUM_BLOCKS * inner, inner, HEADS * HEAD_DIM, HEAD_DIM, 1)
        self.device = SimpleNamespace(type="cpu")
        self.kvh_path = path

    def stride(self):
        return self._strides

    @staticmethod
    def element_size():
        return ELEMENT


def block_bytes(pool, kv, block):
    start = kv * NUM_BLOCKS * PER_BLOCK + block * PER_BLOCK
    return bytes(pool.buf[start : start + PER_BLOCK])


def main():
    socket_path, pool_dir = sys.argv[1], sys.argv[2]
    config = SimpleNamespace(
        kv_transfer_config=SimpleNamespace(
            kv_connector="KvhConnector",
            kv_connector_extra_config={"kvh_socket": socket_path, "default_tenant": "shared"},
        ),
        model_config=SimpleNamespace(model="meta-llama/Llama-3.1-8B"),
    )
    cache_config = SimpleNamespace(num_blocks=NUM_BLOCKS)
    scheduler = KvhConnector(config, KVConnectorRole.SCHEDULER, cache_config)
    worker = KvhConnector(config, KVConnectorRole.WORKER, cache_config)

    pools = {}
    for layer in ("model.layers.0.self_attn.attn", "model.layers.1.self_attn.attn"):
        pool = SharedPool(2 * NUM_BLOCKS * PER_BLOCK, directory=pool_dir, name=layer)
        pool.buf[:] = b"\x5a" * pool.size
        pools[layer] = pool
    worker.register_kv_caches({name: FakeTensor(pool.path) for name, pool in pools.items()})

    acme = SimpleNamespace(request_id="req-acme", cache_salt="acme", kv_transfer_params=None)
    globex = SimpleNamespace(request_id="req-globex", cache_salt=None, kv_transfer_params={"kvh_tenant_id": "globex"})

    # Step 1: both requests scheduled (vLLM: get_num_new_matched_tokens, update_state_after_alloc,
    # then build_connector_meta; the worker binds it around the forward pass).
    for request in (acme, globex):
        assert scheduler.get_num_new_matched_tokens(request, 0) == (0, False)
        scheduler.update_state_after_alloc(request, None, 0)
    step1 = SimpleNamespace(
        scheduled_new_reqs=[
            SimpleNamespace(req_id="req-acme", block_ids=([1, 2],)),
            SimpleNamespace(req_id="req-globex", block_ids=([5],)),
        ],
        scheduled_cached_reqs=SimpleNamespace(req_ids=[], new_block_ids=[]),
    )
    run_step(worker, scheduler.build_connector_meta(step1), set())

    # Step 2: acme grows by one block (decode), then finishes.
    step2 = SimpleNamespace(
        scheduled_new_reqs=[],
        scheduled_cached_reqs=SimpleNamespace(req_ids=["req-acme", "req-globex"], new_block_ids=[([3],), None]),
    )
    assert run_step(worker, scheduler.build_connector_meta(step2), set()) == (None, None)
    delay, params = scheduler.request_finished(acme, ([1, 2, 3],))
    assert delay is True and params is None, "blocks must not be freed before kvh acknowledged"

    # Step 3: the release travels in the metadata; the request is reported once kvh acknowledged.
    meta = scheduler.build_connector_meta(SimpleNamespace(scheduled_new_reqs=[], scheduled_cached_reqs=None))
    assert isinstance(meta, KvhConnectorMetadata) and meta.release == ["req-acme"], meta
    sending, recving = run_step(worker, meta, {"req-acme"})
    assert sending == {"req-acme"} and recving is None, (sending, recving)
    for pool in pools.values():
        for kv in (0, 1):
            for block in range(NUM_BLOCKS):
                want = b"\0" if block in (1, 2, 3) else b"\x5a"
                assert block_bytes(pool, kv, block) == want * PER_BLOCK, (pool.path, kv, block)

    # A request with no blocks is freed by vLLM at once.
    empty = SimpleNamespace(request_id="req-empty", cache_salt=None, kv_transfer_params=None)
    assert scheduler.request_finished(empty, ([],)) == (False, None)

    # With kvh gone, globex's release fails: never reported, so vLLM never frees its blocks.
    scheduler.request_finished(globex, ([5],))
    meta = scheduler.build_connector_meta(SimpleNamespace(scheduled_new_reqs=[], scheduled_cached_reqs=None))
    worker._client.close()
    assert run_step(worker, meta, {"req-globex"}) == (None, None)
    for pool in pools.values():
        assert block_bytes(pool, 0, 5) == b"\x5a" * PER_BLOCK
    worker.shutdown()
    for pool in pools.values():
        pool.close()
        pool.unlink()
    print("vllm connector ok")


def run_step(worker, meta, finished):
    worker.bind_connector_metadata(meta)
    worker.start_load_kv(SimpleNamespace())
    for layer in ("model.layers.0.self_attn.attn", "model.layers.1.self_attn.attn"):
        worker.wait_for_layer_load(layer)
        worker.save_kv_layer(layer, None, None)
    worker.wait_for_save()
    result = worker.get_finished(finished)
    worker.clear_connector_metadata()
    return result


if __name__ == "__main__":
    main()
