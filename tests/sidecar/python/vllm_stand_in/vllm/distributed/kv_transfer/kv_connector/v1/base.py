"""Minimal stand-in of vLLM's vllm/distributed/kv_transfer/kv_connector/v1/base.py, written for
kvh's tests (vLLM cannot be installed in kvh's CI): only what a connector subclass touches —
the role enum, the metadata base class and the constructor and metadata binding of
KVConnectorBase_V1, with the signatures of vLLM main commit 003df29. No vLLM code is copied."""

import enum
from abc import ABC


class KVConnectorRole(enum.Enum):
    SCHEDULER = 0
    WORKER = 1


class KVConnectorMetadata(ABC):  # noqa: B024 (an empty marker base, as in vLLM)
    pass


class KVConnectorBase_V1(ABC):
    def __init__(self, vllm_config, role, kv_cache_config):
        if vllm_config.kv_transfer_config is None:
            raise ValueError("kv_transfer_config must be set")
        self._connector_metadata = None
        self._vllm_config = vllm_config
        self._kv_transfer_config = vllm_config.kv_transfer_config
        self._kv_cache_config = kv_cache_config
        self._role = role

    @property
    def role(self):
        return self._role

    def bind_connector_metadata(self, connector_metadata):
        self._connector_metadata = connector_metadata

    def clear_connector_metadata(self):
        self._connector_metadata = None
