"""Export parsers, by the key Rocket.Chat gives each format.

`REGISTRY` is a plain dict so that other formats (e.g. `hipchatenterprise`) can be
added beside these without touching them.
"""

from __future__ import annotations

from importers.base import Importer
from importers.csv_importer import CsvImporter
from importers.hipchat import HipChatImporter
from importers.slack import SlackImporter
from importers.slack_users import SlackUsersImporter

REGISTRY: dict[str, Importer] = {
    importer.key: importer
    for importer in (CsvImporter(), SlackImporter(), SlackUsersImporter(), HipChatImporter())
}
