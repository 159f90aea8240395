"""Units for display. Stored values are SI (bytes, seconds, tok/s); they are converted only here.

Binary units for memory (a process's RSS and a tensor's bytes are counted in pages and powers of two),
decimal units for bandwidth (GB/s, as hardware data sheets state it).

>>> fmt_bytes(300 * MiB), fmt_mib(620 * MiB), fmt_pm(12.345, 0.41)
('300.0 MiB', '620.0', '12.35 ± 0.41')
"""

from __future__ import annotations

import math
import re

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
GB = 10**9

_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": GB, "tb": 10**12,
               "kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB}


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_num(x: float | None, digits: int = 3) -> str:
    """`digits` significant digits below 1000, a whole number with thousands separators above.

    >>> fmt_num(12.3456), fmt_num(123456.7), fmt_num(None), fmt_num(float("nan"))
    ('12.3', '123,457', '-', '-')
    """
    if _missing(x):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def fmt_pm(mean: float | None, err: float | None, digits: int = 4, err_digits: int = 2) -> str:
    """'12.3 ± 0.4' ('-' when unknown; no ± when the error is undefined).

    >>> fmt_pm(12.345, 0.41), fmt_pm(None, None), fmt_pm(3.0, float("nan"))
    ('12.35 ± 0.41', '-', '3')
    """
    if _missing(mean):
        return "-"
    head = f"{mean:.{digits}g}"
    if err is None or math.isnan(err):
        return head
    return f"{head} ± {err:.{err_digits}g}"


def fmt_mib(n: float | None, digits: int = 1) -> str:
    """Bytes as a bare number of MiB, for a column whose header says [MiB].

    >>> fmt_mib(620 * MiB), fmt_mib(13_456.25 * MiB), fmt_mib(None)
    ('620.0', '13,456.2', '-')
    """
    return "-" if _missing(n) else f"{n / MiB:,.{digits}f}"


def fmt_bytes(n: float | None) -> str:
    """Bytes with their unit, in prose: GiB from 1 GiB up, else MiB.

    >>> fmt_bytes(300 * MiB), fmt_bytes(2.5 * GiB), fmt_bytes(None)
    ('300.0 MiB', '2.50 GiB', '-')
    """
    if _missing(n):
        return "-"
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / MiB:.1f} MiB"


def fmt_gib(n: float, digits: int = 1) -> str:
    """A machine's memory, e.g. RAM: `15.5 GiB`.

    >>> fmt_gib(16_600_000_000)
    '15.5 GiB'
    """
    return f"{n / GiB:.{digits}f} GiB"


def fmt_rate_gbps(bps: float | None) -> str:
    """Bandwidth in decimal GB/s, as data sheets state it.

    >>> fmt_rate_gbps(28.4e9), fmt_rate_gbps(None)
    ('28.4 GB/s', '-')
    """
    return "-" if _missing(bps) else f"{fmt_num(bps / GB)} GB/s"


def fmt_seconds(s: float) -> str:
    """A duration in seconds with one decimal.

    >>> fmt_seconds(41.234)
    '41.2 s'
    """
    return f"{s:.1f} s"


def fmt_clock(s: float) -> str:
    """A duration as minutes:seconds, for an ETA.

    >>> fmt_clock(125.9), fmt_clock(3725)
    ('2:05', '62:05')
    """
    return f"{int(s // 60)}:{int(s % 60):02d}"


def parse_bytes(text: str) -> int:
    """A memory size typed by a person: decimal (KB, MB, GB) or binary (KiB, MiB, GiB) units.

    >>> parse_bytes("2GiB"), parse_bytes("1.5 GB"), parse_bytes("4096")
    (2147483648, 1500000000, 4096)
    """
    from quantscope.errors import UserError

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _BYTE_UNITS:
        raise UserError(f"memory size {text!r} is not a number with an optional unit "
                        "(B, KB, MB, GB, KiB, MiB, GiB): e.g. 2GiB")
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])
