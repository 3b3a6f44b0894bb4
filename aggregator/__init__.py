"""aggregator: poll news feeds, group items into stories across outlets, publish a daily digest."""

__version__ = "0.2.0.dev0"

USER_AGENT = f"aggregator/{__version__} (+https://github.com/aggregator-news/aggregator)"

__all__ = ["USER_AGENT", "__version__"]
