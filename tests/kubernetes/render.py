"""Prints the objects of a YAML stream (kubectl kustomize's output) as one JSON array.

Run by tests/tests/kubernetes.rs with the pinned PyYAML of target/sdk/venv.
"""
import json
import sys

import yaml

print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))
