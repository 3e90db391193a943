"""Read side of the imported workspace, shaped like Rocket.Chat's REST results."""
