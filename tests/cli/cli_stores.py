"""A store location a test's commands administer (URL, table or prefix, and the same as
command-line arguments)."""

from __future__ import annotations

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url


class StoreLocation:
    """A store's URL, the options that pick this test's table or key prefix, and the
    same as command-line arguments."""

    def __init__(self, url: str, options: dict[str, str]) -> None:
        self.url = url
        self.options = options
        self.args = ["--store", url]
        for name, flag in (("tablename", "--table"), ("prefix", "--prefix")):
            if name in options:
                self.args += [flag, options[name]]

    def worker(self) -> BackgroundScheduler:
        """A scheduler on the store, not yet started."""
        return BackgroundScheduler(
            stores={"default": store_from_url(self.url, **self.options)}, identity="cli-worker"
        )
