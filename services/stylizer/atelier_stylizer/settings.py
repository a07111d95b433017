"""The stylizer's settings (ATELIER_* variables); one process per pool."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from atelier_shared import AtelierSettings
from atelier_shared.images import ImageLimits
from atelier_stylizer.inference import Backend, Compile, Device, Precision


class StylizerSettings(AtelierSettings):
    """Pool, inference backend, micro-batching, model registry."""

    ops_port: int = Field(9103, ge=0, le=65535)
    stylizer_pool: Literal["quality", "fast"] = "quality"
    stylizer_backend: Backend = "auto"
    stylizer_device: Device = "auto"
    stylizer_precision: Precision = "auto"
    # torch.compile the network (auto: on CUDA, where it measured 3-4x eager; compiled at model load).
    stylizer_compile: Compile = "auto"
    # Where JPEGs are decoded and resized (auto: on the GPU through nvJPEG when the pool runs on CUDA
    # and torchvision, the `gpu` extra, is installed; else Pillow, with the reason logged).
    stylizer_decode: Literal["auto", "pillow", "nvjpeg"] = "auto"
    # CPU threads for inference; 0: one per physical core this process may use (its affinity and its
    # container's CPU limit, which PyTorch's and ONNX Runtime's own defaults ignore).
    stylizer_threads: int = Field(0, ge=0)
    # Requests per inference batch; 0: 8 on CUDA, 1 on CPU, where batching measured slower per image
    # (bench/results/models-cpu-2core.md).
    stylizer_max_batch: int = Field(0, ge=0, le=256)
    stylizer_max_wait_ms: float = Field(25.0, ge=0)
    # Batches handled at once; 0: 2 on CUDA (one decoded and stored while the GPU runs the other), 1 on
    # CPU, where the model takes every core.
    stylizer_in_flight: int = Field(0, ge=0, le=8)
    # Summed working-size pixels per batch: the GPU memory budget.
    stylizer_max_batch_pixels: int = Field(16 * 1024 * 1024, ge=1)
    # Longest side the model runs at; 0 takes the model manifest's.
    stylizer_working_side: int = Field(0, ge=0, le=8192)
    # Requests buffered per priority before the pool pauses its partitions (backpressure).
    stylizer_buffer: int = Field(512, ge=1)
    # s3://bucket[/prefix] or a folder; empty means s3://<bucket_models>.
    model_registry: str = ""
    model_cache_dir: Path = Path(".atelier/model-cache")
    # How often this instance reports its service time to the router (topic pool-stats).
    pool_report_interval_s: float = Field(2.0, gt=0)
    # How often to look for a newer model version (hot swap).
    model_refresh_s: float = Field(30.0, ge=0)
    max_pixels: int = Field(50_000_000, ge=1)
    max_side: int = Field(16_384, ge=1)

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=2**62, max_pixels=self.max_pixels, max_side=self.max_side)

    @property
    def registry_url(self) -> str:
        return self.model_registry or f"s3://{self.bucket_models}"
