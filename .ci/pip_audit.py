"""pip-audit on requirements.txt, for `make scan` and CI.

Fails on any known vulnerability (except those pinned in IGNORED below, each with its reason).

Soft-fails, with a banner that says so, in exactly one situation: the vulnerability service
cannot be reached. That shows up in two ways: pip-audit stops with a connection error, or the
service answers "not found" for packages that are on PyPI (a registry mirror without PyPI's
JSON API, as on this project's machines). Then nothing was audited, and the output says that
plainly; it never reports such a run as clean.

Usage: python .ci/pip_audit.py [requirements file]
"""

from __future__ import annotations

import json
import subprocess
import sys

# Vulnerability id -> why it is accepted for now. Empty: nothing is accepted.
IGNORED: dict[str, str] = {}

UNREACHABLE_MARKERS = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "ConnectTimeout",
    "ReadTimeout",
    "Temporary failure in name resolution",
)
NOT_FOUND = "not found on PyPI"


def banner(lines: list[str]) -> None:
    width = max(len(line) for line in lines) + 4
    print("!" * width)
    for line in lines:
        print(f"! {line.ljust(width - 4)} !")
    print("!" * width)


def main() -> int:
    requirements = sys.argv[1] if len(sys.argv) > 1 else "requirements.txt"
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        requirements,
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    for vulnerability_id in IGNORED:
        command += ["--ignore-vuln", vulnerability_id]
    print("$ " + " ".join(command[2:]), flush=True)
    run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603

    try:
        report = json.loads(run.stdout)
    except ValueError:
        report = None
    if report is None:
        if any(marker in run.stderr for marker in UNREACHABLE_MARKERS):
            banner(
                [
                    "PIP-AUDIT SKIPPED: the vulnerability service cannot be reached",
                    "from this machine (connection error). Nothing was audited.",
                    "This is NOT a clean result; run `make scan` where it is reachable.",
                ]
            )
            print(run.stderr.strip().splitlines()[-1])
            return 0
        sys.stderr.write(run.stderr)
        print(f"pip-audit failed (exit status {run.returncode}).")
        return run.returncode or 1

    dependencies = report.get("dependencies", [])
    found = [
        (dependency, vulnerability)
        for dependency in dependencies
        for vulnerability in dependency.get("vulns", [])
    ]
    if found:
        for dependency, vulnerability in found:
            fixes = ", ".join(vulnerability.get("fix_versions", [])) or "no fixed version yet"
            print(
                f"VULNERABLE {dependency['name']} {dependency.get('version', '')}: "
                f"{vulnerability['id']} (fixed in: {fixes})"
            )
        print(
            f"pip-audit: {len(found)} known vulnerabilities. Upgrade the pins, or accept one "
            "in .ci/pip_audit.py IGNORED with the reason."
        )
        return 1

    skipped = [dependency for dependency in dependencies if "skip_reason" in dependency]
    audited = len(dependencies) - len(skipped)
    unreachable = [d for d in skipped if NOT_FOUND in d["skip_reason"]]
    others = [d for d in skipped if NOT_FOUND not in d["skip_reason"]]
    for dependency in others:
        print(f"NOT AUDITED {dependency['name']}: {dependency['skip_reason']}")
    if unreachable:
        names = ", ".join(sorted(d["name"] for d in unreachable))
        banner(
            [
                "PIP-AUDIT INCOMPLETE: the vulnerability service answered 'not found' for",
                f"{len(unreachable)} of {len(dependencies)} packages that are on PyPI: it cannot",
                "be reached from this machine (a registry mirror without PyPI's JSON API).",
                f"Audited: {audited}. This is NOT a clean result for the others.",
            ]
        )
        print(f"Not audited: {names}")
        return 0
    if others:
        return 1
    print(f"pip-audit: {audited} packages audited, no known vulnerabilities.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
