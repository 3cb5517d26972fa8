"""Reads the suite's JUnit XML and prints each test as passed, not applicable (a test that
did not pass, matched by a pattern in not-applicable.tsv, with its reason) or failed;
exits 1 when a test failed that is not listed, or when a pattern explains no test that
did not pass (the list must stay true: a stale entry is removed), unless its reason is
the server-wide seed, whose tests pass by chance now and then."""

import fnmatch
import sys
import xml.etree.ElementTree as ET

junit, listing, log = sys.argv[1:4]
rules = []
for line in open(listing, encoding="utf-8"):
    line = line.rstrip("\n")
    if line and not line.startswith("#"):
        pattern, reason = line.split("\t", 1)
        rules.append((pattern, reason))

passed, na, failed = [], [], []
used = set()
try:
    root = ET.parse(junit).getroot()
except (FileNotFoundError, ET.ParseError):
    print(open(log, encoding="utf-8", errors="replace").read()[-4000:])
    sys.exit("llama-server-suite: pytest wrote no report")
for case in root.iter("testcase"):
    name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
    name = name.replace("unit/", "", 1) if name.startswith("unit/") else name
    bad = case.find("failure") is not None or case.find("error") is not None
    skipped = case.find("skipped") is not None
    rule = next((r for r in rules if fnmatch.fnmatchcase(name, r[0])), None)
    if rule and (bad or skipped):
        na.append((name, rule[1]))
        used.add(rule[0])
    elif bad:
        el = case.find("failure") if case.find("failure") is not None else case.find("error")
        failed.append((name, (el.get("message") or "").splitlines()[0][:200] if el is not None else ""))
    elif skipped:
        na.append((name, "skipped by the suite itself"))
    else:
        passed.append(name)
# A test of sampled text without a seed passes by chance now and then: its entry is
# never stale.
stale = [p for p, why in rules if p not in used and not why.startswith("seed:")]

for n in passed:
    print(f"pass  {n}")
for n, why in na:
    print(f"n/a   {n}: {why}")
for n, why in failed:
    print(f"FAIL  {n}: {why}")
for pattern in stale:
    print(f"STALE {pattern} explains no test that did not pass")
total = len(passed) + len(na) + len(failed)
print(f"llama-server-suite: {len(passed)} passed, {len(na)} not applicable, {len(failed)} failed, of {total}")
sys.exit(1 if failed or stale else 0)
