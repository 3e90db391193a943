"""Running an import operation's staging records into the workspace."""
