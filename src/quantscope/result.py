"""What a run measured: Measurement, EnvFingerprint, Result. Versioned and JSON round-trip.

Schema history (bump SCHEMA_VERSION and add a line when a stored field changes meaning):
  1  2026-11-24  first version: spec, env, measurements with raw samples, status, reason.
  2  2026-11-29  env.machine_id is identity scheme 2 (env.machine_identity: CPU vendor/family/model/
                 stepping and flags enter it); env gains cpu_vendor, cpu_family, cpu_model_number,
                 cpu_stepping, microcode (None in version-1 rows). Store step 2 recomputes the id of
                 version-1 rows from their stored env. New per-run figures: others_cpu_cores and
                 info.contention, timed_rss_bytes, gpu_* NVML series with info.gpu_telemetry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from quantscope.metrics.stats import Stats, describe
from quantscope.spec import RunSpec

SCHEMA_VERSION = 2
STATUSES = ("ok", "unsupported", "failed", "timeout", "oom", "crashed", "interrupted")


@dataclass(frozen=True)
class Measurement:
    """One named quantity with its unit and every raw sample; statistics are derived on read.

    `meta` carries the recipe that produced it (stop rule, quality recipe, baseline).

    >>> m = Measurement("decode_tps", "tok/s", (10.0, 12.0), higher_is_better=True)
    >>> m.stats.mean
    11.0
    """

    name: str
    unit: str
    samples: tuple[float, ...]
    higher_is_better: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not getattr(self.samples, "deferred", False):  # a store's samples, read on use (store/stats.py)
            object.__setattr__(self, "samples", tuple(float(s) for s in self.samples))

    @property
    def stats(self) -> Stats:
        known = getattr(self.samples, "stats", None)  # kept beside a store's samples: no need to read them
        return known if known is not None else describe(self.samples)

    @property
    def value(self) -> float:
        return self.stats.mean


@dataclass(frozen=True)
class EnvFingerprint:
    """The machine and software a run was measured on. `machine_id` decides comparability."""

    machine_id: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    cores_physical: int
    cores_logical: int
    ram_bytes: int
    gpu: str | None
    gpu_driver: str | None
    os: str
    python: str
    packages: dict[str, str]
    quantscope_version: str
    git_sha: str | None
    # Added with machine identity v2 (issue 16); None in rows written before, where the OS did not say,
    # or on non-x86 CPUs. Defaults keep old stored fingerprints loadable. env.machine_identity says
    # which of them enter machine_id.
    cpu_vendor: str | None = None
    cpu_family: int | None = None
    cpu_model_number: int | None = None
    cpu_stepping: int | None = None
    microcode: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvFingerprint:
        d = dict(d)
        d["cpu_flags"] = tuple(d.get("cpu_flags", ()))
        return cls(**d)


@dataclass(frozen=True)
class Result:
    spec: RunSpec
    env: EnvFingerprint
    status: str
    measurements: tuple[Measurement, ...] = ()
    reason: str | None = None
    started_at: str = ""  # ISO 8601 UTC
    duration_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # facts that are not measurements (model digest, stop rule)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def get(self, name: str) -> Measurement | None:
        return next((m for m in self.measurements if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(
            spec=RunSpec.from_dict(d["spec"]),
            env=EnvFingerprint.from_dict(d["env"]),
            status=d["status"],
            measurements=tuple(Measurement(**m) for m in d.get("measurements", ())),
            reason=d.get("reason"),
            started_at=d.get("started_at", ""),
            duration_s=d.get("duration_s", 0.0),
            info=d.get("info", {}),
            schema_version=d.get("schema_version", SCHEMA_VERSION),
        )
