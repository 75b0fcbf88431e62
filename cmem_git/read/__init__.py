"""Reading memory: history views, revisions, rendering, delta, search, recall, documents."""
