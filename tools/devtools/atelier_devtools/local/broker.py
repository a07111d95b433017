"""An embedded Kafka-protocol cluster: librdkafka's mock brokers, driven through ctypes.

It speaks the real Kafka protocol on loopback TCP, so every service connects to it as it would to
Kafka. It lives as long as the process that created it and keeps everything in memory: a local and
test broker, never the production one. It does not support CreateTopics (topics are created here,
or auto-created with 4 partitions) nor ListGroups/DescribeGroups.
"""

import ctypes
import glob
import os
from collections.abc import Iterable

import confluent_kafka


def _load_librdkafka() -> ctypes.CDLL:
    package = os.path.dirname(confluent_kafka.__file__)
    candidates = glob.glob(os.path.join(package, os.pardir, "confluent_kafka.libs", "librdkafka*.so*"))
    if not candidates:
        raise RuntimeError("librdkafka not found beside confluent_kafka: reinstall confluent-kafka from its wheel")
    lib = ctypes.CDLL(candidates[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_broker_set_down.restype = ctypes.c_int
    lib.rd_kafka_mock_broker_set_down.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_mock_broker_set_up.restype = ctypes.c_int
    lib.rd_kafka_mock_broker_set_up.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_mock_partition_set_leader.restype = ctypes.c_int
    lib.rd_kafka_mock_partition_set_leader.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
    lib.rd_kafka_mock_broker_set_rtt.restype = ctypes.c_int
    lib.rd_kafka_mock_broker_set_rtt.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int]
    lib.rd_kafka_mock_push_request_errors_array.restype = None
    lib.rd_kafka_mock_push_request_errors_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int16,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.rd_kafka_mock_broker_set_host_port.restype = None
    lib.rd_kafka_mock_broker_set_host_port.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_int]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.restype = None
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_mock_clear_request_errors.restype = None
    lib.rd_kafka_mock_clear_request_errors.argtypes = [ctypes.c_void_p, ctypes.c_int16]
    return lib


INITIAL_REBALANCE_DELAY_MS = 0


class MockKafkaCluster:
    """A Kafka-protocol cluster of `brokers` brokers on loopback, for local runs and tests."""

    def __init__(self, brokers: int = 3) -> None:
        self._lib = _load_librdkafka()
        self.brokers = brokers
        errstr = ctypes.create_string_buffer(512)
        conf = self._lib.rd_kafka_conf_new()
        # The owning handle never connects anywhere; keep it from logging that it has no bootstrap.
        self._lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
        self._handle = self._lib.rd_kafka_new(0, conf, errstr, len(errstr))
        if not self._handle:
            raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
        self._cluster = self._lib.rd_kafka_mock_cluster_new(self._handle, brokers)
        if not self._cluster:
            self._lib.rd_kafka_destroy(self._handle)
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        self.bootstrap: str = self._lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode()
        # A group's first join waits this long for more members, as Kafka's group.initial.rebalance.delay.ms
        # (3 s by default, in the mock too).
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._cluster, INITIAL_REBALANCE_DELAY_MS)

    def create_topics(self, names: Iterable[str], partitions: int = 6) -> None:
        """Create topics (replicated across all brokers, up to 3)."""
        replication = min(self.brokers, 3)
        for name in names:
            code = self._lib.rd_kafka_mock_topic_create(self._cluster, name.encode(), partitions, replication)
            if code != 0:
                raise RuntimeError(f"creating topic {name!r} failed with librdkafka error {code}")

    @property
    def listeners(self) -> list[tuple[str, int]]:
        """Where each broker listens (host, port), by broker id from 1."""
        addresses = (address.rpartition(":") for address in self.bootstrap.split(","))
        return [(host, int(port)) for host, _, port in addresses]

    def advertise(self, broker_id: int, host: str, port: int) -> None:
        """Name another address for a broker in metadata (a relay in front of it); it listens where it did."""
        self._lib.rd_kafka_mock_broker_set_host_port(self._cluster, broker_id, host.encode(), port)

    def broker_down(self, broker_id: int) -> None:
        """Take a broker offline (ids start at 1)."""
        self._lib.rd_kafka_mock_broker_set_down(self._cluster, broker_id)

    def broker_up(self, broker_id: int) -> None:
        """Bring a broker back."""
        self._lib.rd_kafka_mock_broker_set_up(self._cluster, broker_id)

    def move_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Make another broker the partition's leader (clients learn it from NOT_LEADER errors)."""
        code = self._lib.rd_kafka_mock_partition_set_leader(self._cluster, topic.encode(), partition, broker_id)
        if code != 0:
            raise RuntimeError(f"moving the leader of {topic}[{partition}] failed with librdkafka error {code}")

    def set_rtt(self, broker_id: int, milliseconds: int) -> None:
        """Delay a broker's responses (a slow network)."""
        self._lib.rd_kafka_mock_broker_set_rtt(self._cluster, broker_id, milliseconds)

    def push_request_errors(self, api_key: int, errors: Iterable[int]) -> None:
        """Answer the next requests of a Kafka API (e.g. 1, Fetch) with these error codes, one each."""
        codes = list(errors)
        array = (ctypes.c_int * len(codes))(*codes)
        self._lib.rd_kafka_mock_push_request_errors_array(self._cluster, api_key, len(codes), array)

    def clear_request_errors(self, api_key: int) -> None:
        """Forget the errors still pushed for a Kafka API."""
        self._lib.rd_kafka_mock_clear_request_errors(self._cluster, api_key)

    def close(self) -> None:
        """Shut the brokers down; connected clients see the cluster disappear."""
        if self._cluster:
            self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
            self._cluster = None
        if self._handle:
            self._lib.rd_kafka_destroy(self._handle)
            self._handle = None
