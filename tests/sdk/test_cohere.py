"""The official cohere Python client's rerank calls against modelrunnerd: the v1 client
(documents returned, top_n) and the v2 client on /v2/rerank, both parsed into the SDK's
own response types, their order and scores checked against the daemon's raw answer, and
a bad request raised as the SDK's BadRequestError. Run by tests/tests/sdk.rs with
BASE_URL and RERANK_MODEL (a generated reranker) set."""

import os

import cohere
import httpx

BASE = os.environ["BASE_URL"]
MODEL = os.environ["RERANK_MODEL"]
QUERY = "Machine learning is"
DOCS = [
    "A machine is a physical system that uses power.",
    "Learning is the process of acquiring new understanding.",
    "Machine learning is a field of study in artificial intelligence.",
    "Paris est une grande ville.",
]


def raw():
    r = httpx.post(f"{BASE}/v1/rerank", json={"model": MODEL, "query": QUERY, "documents": DOCS})
    r.raise_for_status()
    return [(x["index"], x["relevance_score"]) for x in r.json()["results"]]


def v1(want):
    co = cohere.Client(api_key="unused", base_url=BASE)
    r = co.rerank(model=MODEL, query=QUERY, documents=DOCS, top_n=3, return_documents=True)
    got = [(x.index, x.relevance_score) for x in r.results]
    assert got == want[:3], (got, want)
    for x in r.results:
        assert x.document is not None and x.document.text == DOCS[x.index], x
    assert r.id and r.id.startswith("rerank-"), r.id
    try:
        co.rerank(model=MODEL, query=QUERY, documents=[])
        raise AssertionError("an empty document list was accepted")
    except cohere.BadRequestError as e:
        assert e.status_code == 400
        assert e.body["error"]["param"] == "documents", e.body


def v2(want):
    co = cohere.ClientV2(api_key="unused", base_url=BASE)
    r = co.rerank(model=MODEL, query=QUERY, documents=DOCS)
    got = [(x.index, x.relevance_score) for x in r.results]
    assert got == want, (got, want)
    assert all(isinstance(x.index, int) and 0 < x.relevance_score < 1 for x in r.results)


def main():
    want = raw()
    assert sorted(i for i, _ in want) == [0, 1, 2, 3], want
    v1(want)
    v2(want)
    print("cohere: ok")


main()
