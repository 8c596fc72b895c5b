"""An MCP server written with the reference Python SDK (pip `mcp`, FastMCP), for NimbusLLMToolsMCP's tests.

    python mcp_reference_server.py stdio
    python mcp_reference_server.py http PORT      # Streamable HTTP at http://127.0.0.1:PORT/mcp
"""
import base64
import sys
from typing import Literal

from mcp.server.fastmcp import FastMCP, Image
from mcp.types import ToolAnnotations

port = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
server = FastMCP("py-reference", host="127.0.0.1", port=port, log_level="WARNING")

# A 1x1 transparent PNG.
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def describe_city(city: str, units: Literal["metric", "imperial"] = "metric") -> str:
    """Describes the weather in a city."""
    return f"{city}: 21 degrees {'C' if units == 'metric' else 'F'}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"failed on purpose: {reason}")


@server.tool(annotations=ToolAnnotations(destructiveHint=True))
def delete_everything(confirm: bool) -> str:
    """Deletes everything (marked destructive)."""
    return "deleted" if confirm else "kept"


@server.tool()
def pixel() -> Image:
    """Returns a 1x1 PNG."""
    return Image(data=PIXEL, format="png")


if __name__ == "__main__":
    server.run("streamable-http" if sys.argv[1] == "http" else "stdio")
