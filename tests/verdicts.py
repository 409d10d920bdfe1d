"""Quality-gate verdicts for tests of how the CLI and the web app present them.

The gate itself (pipeline/quality) decides the verdict; these tests are about what happens to a
model once it has one, so they give a real model (its files copied) the verdict they need.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from pipeline import Evidence, Result, Verdict

#: Photo names the way a merchant's phone writes them (they must reach the merchant as written).
RESHOOT = ("IMG_0007.JPG", "IMG_0012.JPG")
FAILED_CHECK = Evidence(
    check="outline", value=0.41, unit="share", warn_at=0.15, fail_at=0.3, outcome=Verdict.FAILED,
    message="The model's outline does not match IMG_0007.JPG and IMG_0012.JPG: "
            "those photos may be blurred or show something else.",
    photos=RESHOOT)
WARNED_CHECK = Evidence(
    check="unseen", value=0.22, unit="share", warn_at=0.2, fail_at=0.5, outcome=Verdict.WARNINGS,
    message="No photo showed the underside, so it is filled in.")
PASSED_CHECK = Evidence(check="placed", value=1.0, unit="share", warn_at=0.8, fail_at=0.5, outcome=Verdict.GOOD)

EVIDENCE = {
    Verdict.FAILED: (FAILED_CHECK, WARNED_CHECK, PASSED_CHECK),
    Verdict.WARNINGS: (WARNED_CHECK, PASSED_CHECK),
    Verdict.GOOD: (PASSED_CHECK,),
}


def judged(result: Result, verdict: Verdict, folder: Path) -> Result:
    """`result` with its files copied into `folder` (the copy may be deleted) and `verdict`,
    with evidence and photos to re-shoot as the gate gives them."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = {}
    for field in ("glb", "usdz", "obj_zip", "poster"):
        source = Path(getattr(result.exports, field))
        copies[field] = str(shutil.copyfile(source, folder / source.name))
    report_path = shutil.copyfile(result.report_path, folder / Path(result.report_path).name)
    report = replace(result.report, verdict=verdict, evidence=EVIDENCE[verdict],
                     reshoot=RESHOOT if verdict is Verdict.FAILED else ())
    return Result(exports=replace(result.exports, **copies), report=report, report_path=str(report_path))
