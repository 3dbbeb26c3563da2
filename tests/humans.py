"""A person at the page, played by HTTP requests, for the command tests (the browser tests use a browser)."""
from fedzo.coordinator.tools.page_client import answer_until_exit, page_url, start_fedzo

start_command = start_fedzo

__all__ = ["answer_until_exit", "page_url", "start_command"]
