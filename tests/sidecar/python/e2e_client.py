"""End to end, from the engine's side: a shared pool with a multi-region layout, tenant bytes in
some blocks, assign and release through kvh's socket, then this process checks that exactly the
released ranges are zero and every neighbouring byte is as it wrote it.

Usage: e2e_client.py SOCKET POOL_DIR
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "clients", "python"))

from kvh_client import KvhClient, KvhError, KvhQuarantined, SharedPool, layer_regions  # noqa: E402

LAYERS = 3
BLOCKS = 16
BLOCK_BYTES = 2048


def tenant_byte(tensor: int, block: int) -> int:
    return 1 + (tensor * BLOCKS + block) % 250


def main() -> None:
    socket_path, pool_dir = sys.argv[1], sys.argv[2]
    regions = layer_regions(LAYERS, BLOCKS, BLOCK_BYTES)
    size = len(regions) * BLOCKS * BLOCK_BYTES
    pool = SharedPool(size, directory=pool_dir, name="engine-pool")
    tensor_bytes = BLOCKS * BLOCK_BYTES
    for t in range(len(regions)):
        for b in range(BLOCKS):
            start = t * tensor_bytes + b * BLOCK_BYTES
            pool.buf[start : start + BLOCK_BYTES] = bytes([tenant_byte(t, b)]) * BLOCK_BYTES

    with KvhClient(socket_path, engine="e2e-test") as kvh:
        assert kvh.capabilities["protocol"] == 1, kvh.capabilities
        kvh.register_pool("kv", pool.path, size, BLOCKS, regions)
        acme = kvh.assign("kv", [2, 3, 9], "acme", "req-1", "llama")
        globex = kvh.assign("kv", [4], "globex", "req-2", "llama")
        done = kvh.release(acme)
        assert done["coverage_pct"] == 100, done
        assert done["bytes"] == 3 * len(regions) * BLOCK_BYTES, done
        released = {2, 3, 9}
        for t in range(len(regions)):
            for b in range(BLOCKS):
                start = t * tensor_bytes + b * BLOCK_BYTES
                got = bytes(pool.buf[start : start + BLOCK_BYTES])
                want = 0 if b in released else tenant_byte(t, b)
                assert got == bytes([want]) * BLOCK_BYTES, f"tensor {t} block {b}"

        # Fail-secure answers, as the engine sees them.
        try:
            kvh.release(acme)
            raise AssertionError("a double release was accepted")
        except KvhError as error:
            assert error.code == "already_released", error
        try:
            kvh.assign("kv", [4], "acme", "req-3", "llama")
            raise AssertionError("another tenant's dirty block was handed out")
        except KvhQuarantined as error:
            assert error.reason == "cross_tenant_assign" and error.blocks == [4], error
        replies = kvh.pipeline([{"op": "stats"}, {"op": "release", "handle": globex}])
        assert replies[0]["ok"] and replies[1]["ok"], replies
        assert replies[1]["quarantined"] == [4], replies[1]
        stats = kvh.stats()
        assert stats["releases"] == 2 and stats["quarantined_blocks"] == 1, stats
        kvh.bye()
    pool.close()
    pool.unlink()
    print("e2e ok")


if __name__ == "__main__":
    main()
