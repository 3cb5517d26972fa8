"""Schemathesis hooks for tests/tests/schemathesis.rs.

Generated bodies name random models, which the daemon rightly answers with 404; to reach
the generation pipeline as well, three cases in four are pointed at the model the test
loaded (MODELRUNNER_ST_MODEL). Generation lengths and choice counts are capped so that a
bounded number of cases runs in bounded time; everything else is as generated.
"""

import os
import zlib

import schemathesis

MODEL = os.environ.get("MODELRUNNER_ST_MODEL", "stories")
# Fields that multiply the work of one request; capped, not removed.
CAPS = {"max_tokens": 16, "max_completion_tokens": 16, "max_output_tokens": 16,
        "n_predict": 16, "num_predict": 16, "n": 2, "best_of": 2, "top_logprobs": 5,
        "logprobs": 5, "n_probs": 5, "top_n": 8}


def _chosen(value) -> bool:
    """Three values in four, the same ones every run."""
    return zlib.crc32(repr(value).encode()) % 4 != 0


def _cap(obj):
    if isinstance(obj, dict):
        for key, cap in CAPS.items():
            v = obj.get(key)
            if isinstance(v, int) and not isinstance(v, bool) and v > cap:
                obj[key] = cap
        for v in obj.values():
            _cap(v)
    elif isinstance(obj, list):
        for v in obj:
            _cap(v)


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, dict):
        if "model" in body and _chosen(body):
            body["model"] = MODEL
        _cap(body)
    return body


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if path_parameters and "name" in path_parameters and _chosen(path_parameters):
        path_parameters["name"] = MODEL
    return path_parameters


@schemathesis.hook
def map_query(context, query):
    # `?remote=true` asks the model's registry, which a test without a network cannot
    # reach (a 502, rightly); the registry tests cover it against a real registry.
    if isinstance(query, dict) and "remote" in query:
        del query["remote"]
    return query
