"""An MCP client written with the reference Python SDK (pip `mcp`), for NimbusLLMToolsMCP's server tests.

    python mcp_reference_client.py http URL OUT.json     # Streamable HTTP
    python mcp_reference_client.py stdio OUT.json        # the server is on the other end of this process' stdin/stdout

It lists the tools, calls `add` with valid arguments, `add` with invalid ones, `secret` (which needs approval)
and an unknown tool, and writes what it saw as JSON to OUT.json.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.shared.exceptions import McpError


def content_summary(result):
    return {"isError": bool(result.isError), "content": [c.model_dump(exclude_none=True) for c in result.content]}


async def exercise(read, write):
    report = {}
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        report["server"] = {"name": init.serverInfo.name, "version": init.serverInfo.version, "protocol": init.protocolVersion}
        tools = await session.list_tools()
        report["tools"] = {t.name: {"description": t.description, "schema": t.inputSchema,
                                    "destructive": bool(t.annotations and t.annotations.destructiveHint)} for t in tools.tools}
        report["add"] = content_summary(await session.call_tool("add", {"a": 2, "b": 40}))
        report["add_bad"] = content_summary(await session.call_tool("add", {"a": "two"}))
        report["secret"] = content_summary(await session.call_tool("secret", {}))
        try:
            await session.call_tool("no_such_tool", {})
            report["unknown"] = "no error"
        except McpError as error:
            report["unknown"] = {"code": error.error.code, "message": error.error.message}
    return report


async def main():
    mode = sys.argv[1]
    if mode == "http":
        from mcp.client.streamable_http import streamablehttp_client
        async with streamablehttp_client(sys.argv[2]) as (read, write, _):
            report = await exercise(read, write)
        write_report(sys.argv[3], report)
    else:
        from mcp.server.stdio import stdio_server    # plain newline-delimited JSON-RPC over this process' stdio
        async with stdio_server() as (read, write):
            write_report(sys.argv[2], await exercise(read, write))
            # Here the client does not own the server's process, so nobody closes our stdin:
            # leave without waiting for its end.
            os._exit(0)


def write_report(path, report):
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)


asyncio.run(main())
