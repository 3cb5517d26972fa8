"""Stands in for the `wget` package the suite's utils.py imports: its downloads are of
Hugging Face models, and these tests never use the network (the adapter maps every model
to a local file), so a download is an error."""


def download(url, out=None):
    raise RuntimeError(f"no network in these tests: {url} would be downloaded")
