"""Calibrated methods: prepare -> calibrate -> convert, with one config throughout.

torchao's prototype SmoothQuantConfig runs the same config twice through `quantize_` (step=PREPARE
inserts observers, the caller feeds data, step=CONVERT quantizes with what they saw). Here a
calibrated config derives from `CalibratedConfig` (its calibration fields are plain params, so
`--qparam calib_samples=16` and TOML tables set them like any other) and its handler is an object
with two hooks. The backend owns the loop between them:

    handler.prepare(config, model, spec, select)     # observers on the selected modules
    for batch in calibration_batches(...): model(batch)
    facts = handler.convert(config, model, spec, select)

`select(module, fqn) -> bool` is the backend's choice of modules (the policy's share for this
config); the calibration tokens come from methods/calibration.py, never from the evaluation text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from quantscope.methods.calibration import CalibrationSpec
from quantscope.methods.configs import QuantConfig, check


@dataclass(frozen=True)
class CalibratedConfig(QuantConfig):
    """Base of configs that need calibration data. Flat fields, because params are flat scalars."""

    calib_samples: int = 8
    calib_seq_len: int = 128
    calib_source: Literal["stdlib-docstrings"] = "stdlib-docstrings"

    def __post_init__(self) -> None:
        check(self.calib_samples >= 1, f"{self.method}: calib_samples must be >= 1")
        check(self.calib_seq_len >= 2, f"{self.method}: calib_seq_len must be >= 2")
        self.calibration  # noqa: B018 - builds the CalibrationSpec, which refuses a text too short for it

    @property
    def calibration(self) -> CalibrationSpec:
        return CalibrationSpec(self.calib_samples, self.calib_seq_len, self.calib_source)

    @property
    def needs_data(self) -> bool:
        """Whether this config's observers need the calibration batches (a variant may not: it is then
        prepared and converted without them, and the run records no calibration)."""
        return True


class CalibratedHandler(Protocol):
    def prepare(self, config: Any, model: Any, spec: Any, select: Any) -> None:
        """Insert observers into the selected modules; the model must still run."""

    def convert(self, config: Any, model: Any, spec: Any, select: Any) -> dict[str, Any]:
        """Quantize with what the observers saw, remove them; return facts to record."""


def is_calibrated(config: Any) -> bool:
    return isinstance(config, CalibratedConfig)
