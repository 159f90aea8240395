"""Projected rows for the report: each measured configuration projected onto catalog hardware, and onto
larger models of the same family (the scaling study), by hardware/project.py.

A ProjectedRow is never a Result and is never stored: it lives for one rendering. Views draw it hollow
or hatched and label it "projected" with its interval (report/views.py), so it is never confused with
a measured row.

>>> rows = project_rows(store.results(status="ok"), ["t4", "h200"])  # doctest: +SKIP
>>> rows[0].hardware, rows[0].p.decode_tps_low < rows[0].p.decode_tps < rows[0].p.decode_tps_high  # doctest: +SKIP
('t4', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantscope.present.labels import spec_label

# Model sizes the scaling study projects each configuration onto (synthetic architectures: their
# config.json dimensions, no weights): a ladder from 1 B to 70 B parameters.
SCALING_MODELS = ("synthetic:llama-1b", "synthetic:llama-3b", "synthetic:llama3-8b", "synthetic:llama3-70b")


@dataclass(frozen=True)
class ProjectedRow:
    """One configuration of a measured run, projected: its label, the model and hardware it is projected
    onto, the model's parameter count, and the Projection (figures with intervals)."""

    run_id: int  # the measured run it comes from
    label: str  # the configuration, as measured rows name it
    model: str
    params: float  # parameters of the projected model
    hardware: str
    p: Any  # hardware.project.Projection
    scaled: bool = False  # projected onto another model than the one measured (the scaling study)
    projected: bool = True  # always: views test it before drawing a row hollow

    @property
    def ok(self) -> bool:
        return bool(self.p.supported and self.p.decode_tps)


def _rows(rows: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    return [(r.run_id, r.result) if hasattr(r, "result") else r for r in rows]


CALIBRATION_ROWS = 1000  # the newest ok rows of a store that calibrate a report's projections


def store_calibration(st, machine_id: str | None = None):
    """The calibration from the store's newest ok rows of every machine (a GPU run of ours calibrates that
    GPU for every model's projection, as `estimate --store` does) and the published GPU data."""
    from quantscope.env import physical_cores
    from quantscope.hardware.calibrate import build_calibration
    from quantscope.hardware.observations import cached_peaks

    peaks = cached_peaks(machine_id, physical_cores()) if machine_id else None  # as `estimate` calibrates
    return build_calibration(st.results(status="ok", limit=CALIBRATION_ROWS), machine_id, peaks)


def default_calibration(rows: list[tuple[int, Any]], machine_id: str | None = None):
    """The calibration from these rows and the published GPU data (no microbenchmark is run)."""
    from quantscope.hardware.calibrate import build_calibration

    return build_calibration(_rows(rows), machine_id)


def project_rows(rows: list[Any], hardware: list[str], calibration=None, machine_id: str | None = None,
                 models: tuple[str, ...] = ()) -> tuple[list[ProjectedRow], list[str]]:
    """Each ok row projected on each hardware id, with its own model (and, with `models`, onto each of
    those models too). Returns (projected rows, notes on the rows that could not be projected)."""
    from quantscope.errors import QuantscopeError
    from quantscope.hardware.catalog import get_hardware
    from quantscope.hardware.observations import runtime_of
    from quantscope.hardware.project import project
    from quantscope.models.shape import model_shape, shape_for_spec

    rows = [(i, r) for i, r in _rows(rows) if r.status == "ok"]
    calibration = calibration or default_calibration(rows, machine_id)
    out, notes = [], []
    for hw in (get_hardware(h) for h in hardware):
        for run_id, r in rows:
            s = r.spec
            try:
                own = shape_for_spec(s.model)
                shapes = [own] + [m for m in map(model_shape, models) if m.name != own.name]
            except (QuantscopeError, OSError) as e:
                notes.append(f"run {run_id} {spec_label(s)} not projected: {e}")
                continue
            for shape in shapes:
                try:
                    p = project(shape, hw, s.backend, s.quant.method, s.quant.dtype, s.quant.params,
                                calibration=calibration, batch=s.workload.batch, prompt=s.workload.prompt_tokens,
                                context=s.workload.prompt_tokens + s.workload.gen_tokens, runtime=runtime_of(s),
                                machine_id=machine_id)
                except (QuantscopeError, OSError) as e:
                    notes.append(f"run {run_id} {spec_label(s)} on {hw.id} ({shape.name}) not projected: {e}")
                    continue
                out.append(ProjectedRow(run_id, spec_label(s), shape.name, float(shape.total_params), hw.id, p,
                                        scaled=shape is not own))
    return out, notes


def measured_params(r: Any) -> float | None:
    """The parameter count of a measured row's model (from its shape), None when its shape is unknown."""
    from quantscope.errors import QuantscopeError
    from quantscope.models.shape import shape_for_spec

    try:
        return float(shape_for_spec(r.spec.model).total_params)
    except (QuantscopeError, OSError):
        return None
