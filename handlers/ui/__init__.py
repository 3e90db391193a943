"""The web page: server-rendered views under /ui/ over the same services as the JSON API."""
