"""The exported site: pages, blocks, markdown and the timeline built from history."""
