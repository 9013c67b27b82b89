"""Server-rendered, read-only pages: letters, a letter, a campaign, an actor."""
