"""The recommendation as console lines (rich markup, user text escaped)."""

from __future__ import annotations


def recommendation_lines(rec) -> list[str]:
    """The recommendation as rich-markup lines (user text escaped)."""
    from rich.markup import escape

    from quantscope.advise.recommend import evidence

    lines = [f"[bold]Recommendation[/] (goal {rec.goal}; constraints: {escape(rec.constraints.describe())})"]
    if rec.winner:
        lines.append(f"  [bold green]ship {escape(rec.winner.label)}[/] (run {rec.winner.run_id})")
        lines.append(f"    {escape(evidence(rec.winner))}")
    else:
        lines.append("  [bold red]no configuration satisfies the constraints[/]")
    lines += [f"  - {escape(r)}" for r in rec.reasons]
    if rec.runners_up:
        lines.append("  runners-up:")
        lines += [f"    {escape(s.label)} (run {s.run_id}): {escape(evidence(s))}" for s in rec.runners_up]
    if rec.excluded:
        lines.append("  excluded:")
        for v in rec.excluded:
            s = v[0].summary
            lines.append(f"    {escape(s.label)} (run {s.run_id}): "
                         + escape("; ".join(f"{e.constraint}: {e.detail}" for e in v)[:240]))
    return lines
