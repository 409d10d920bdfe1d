"""The quality gate's verdict on a stored model, read back from its report.json. No Streamlit import.

    judgement = read(model.report)
    judgement.verdict      # Verdict.GOOD / WARNINGS / FAILED, or None for a model made before the gate
    judgement.problems     # plain words of the failed checks; .cautions of the warned ones
    judgement.reshoot      # the merchant's own photo file names worth taking again

A report without a "verdict" key was written before Plinth checked its models: it is presented
as it always was, and never as a checked good scan. So is a "good" with no evidence (no check
ran, so nobody knows). An unreadable verdict counts as no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline import Verdict


@dataclass(frozen=True)
class Judgement:
    """What the merchant pages need to know about one model's verdict."""

    verdict: Verdict | None  # None: the report predates the quality gate (or its verdict is unreadable)
    checks: int  # how many checks the gate made (passed or not)
    failed_checks: int = 0
    warned_checks: int = 0
    problems: tuple[str, ...] = ()  # plain words, one per failed check
    cautions: tuple[str, ...] = ()  # plain words, one per check that warned
    reshoot: tuple[str, ...] = ()  # the merchant's photo file names, worst first

    @property
    def failed(self) -> bool:
        return self.verdict is Verdict.FAILED

    @property
    def warned(self) -> bool:
        return self.verdict is Verdict.WARNINGS

    @property
    def checked_good(self) -> bool:
        """Good, and the gate really ran: the only case a page may call a checked good model."""
        return self.verdict is Verdict.GOOD and self.checks > 0


def read(report: dict[str, Any]) -> Judgement:
    """The judgement in a stored report dict (report.json as the library keeps it)."""
    try:
        verdict = Verdict(report.get("verdict"))
    except ValueError:
        verdict = None
    evidence = [e for e in report.get("evidence") or () if isinstance(e, dict)]

    def messages(outcome: Verdict) -> tuple[str, ...]:
        found = (str(e.get("message") or "").strip() for e in evidence if e.get("outcome") == outcome.value)
        return tuple(dict.fromkeys(m for m in found if m))

    reshoot = [str(p) for p in report.get("reshoot") or () if isinstance(p, str) and p]
    if not reshoot:  # the gate's list is the one to use; else the photos its failed or warned checks name
        reshoot = [str(p) for e in evidence if e.get("outcome") != Verdict.GOOD.value
                   for p in e.get("photos") or () if isinstance(p, str) and p]
    return Judgement(
        verdict=verdict,
        checks=len(evidence) if verdict is not None else 0,
        failed_checks=sum(e.get("outcome") == Verdict.FAILED.value for e in evidence),
        warned_checks=sum(e.get("outcome") == Verdict.WARNINGS.value for e in evidence),
        problems=messages(Verdict.FAILED),
        cautions=messages(Verdict.WARNINGS),
        reshoot=tuple(dict.fromkeys(reshoot)),
    )


def label(judgement: Judgement, published_anyway: bool = False) -> str:
    """The badge text: '' for a model made before the checks, or not checked."""
    if judgement.failed:
        return "Failed the checks: published anyway" if published_anyway else "Failed the checks: not published"
    if judgement.warned:
        return "Usable, with warnings"
    return "Checked: looks right" if judgement.checked_good else ""
