"""Rocket.Chat's fixed names that parsers, staging and the converter must agree on."""

# The staged channel that holds every direct-message conversation of an export.
DIRECT_MESSAGES_ID = "__directMessages__"
# Rocket.Chat's built-in bot: author of system messages and of messages nobody owns.
ROCKET_CAT = "rocket.cat"
# Rocket.Chat's default public room; a Slack export's general channel becomes it.
GENERAL_ROOM_ID = "GENERAL"
