"""An exception class of a module outside the tests' allowed_modules."""


class Flaky(Exception):
    """A retry_on class."""
