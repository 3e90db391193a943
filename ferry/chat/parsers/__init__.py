"""Export parsers, by the key Rocket.Chat gives each format.

`REGISTRY` is a plain dict so that other formats (e.g. `hipchatenterprise`) can be
added beside these without touching them.
"""

from __future__ import annotations

from ferry.chat.parsers.base import Importer
from ferry.chat.parsers.csv_importer import CsvImporter
from ferry.chat.parsers.hipchat import HipChatImporter
from ferry.chat.parsers.slack import SlackImporter
from ferry.chat.parsers.slack_users import SlackUsersImporter

REGISTRY: dict[str, Importer] = {
    importer.key: importer
    for importer in (CsvImporter(), SlackImporter(), SlackUsersImporter(), HipChatImporter())
}
