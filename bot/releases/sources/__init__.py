"""Release sources: fetching, feeds, JSON build catalogs, release-notes pages, and the poll loop."""
