"""Ferry: brings remote files and chat workspaces into a server."""

__version__ = "0.1.0"
