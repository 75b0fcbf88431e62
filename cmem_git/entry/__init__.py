"""Entry points that are not the command line: the hook dispatcher and the MCP server."""
