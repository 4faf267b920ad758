"""The S3 store passes the same Store/Sink contract as the file and memory stores, on a real S3 server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daemon.storage.s3_settings import MIN_PART_SIZE, S3Settings
from daemon.storage.s3_store import S3Store
from tests.fixtures.s3 import SeaweedServer
from tests.storage.sink_contract import SinkContract, StoreContract

pytestmark = pytest.mark.s3


class TestS3StoreContract(StoreContract, SinkContract):
    behind_size = MIN_PART_SIZE  # an S3 sink sends bytes only once a part is full

    @pytest.fixture
    def store(self, s3_server: SeaweedServer, s3_settings: S3Settings) -> Iterator[S3Store]:
        store = S3Store.from_url(f"s3://{s3_server.make_bucket()}/runs/contract.zarr", s3_settings)
        yield store
        store.close()
