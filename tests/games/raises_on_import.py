"""A module whose import fails, as a user's module with a bug would."""

raise RuntimeError("this game module is broken on purpose")
