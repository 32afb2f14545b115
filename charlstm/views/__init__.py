"""Every picture: terminal renderables, the live training view, the HTML pages, the report, the
co-writer's screen, and the one table of how invisible characters are shown. Draws values it is given."""
