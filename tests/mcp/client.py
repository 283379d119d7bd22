"""Drives ailogs' MCP server with the official Python MCP client (PyPI `mcp`).

usage: client.py stdio <ailogs binary> <api url> <key>
       client.py http <mcp url> <key>

Initializes, lists the tools, calls every tool against the demo data the server holds,
validates each structured answer against the tool's output schema (jsonschema, besides the
client's own check), checks an error case, and prints one JSON report line per call with its
latency. Exits non-zero on the first failure.
"""

import asyncio
import json
import sys
import time

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TOOLS = {
    "query_logs",
    "get_request",
    "service_health",
    "get_conversation",
    "workspace_usage",
    "list_patterns",
    "explain_template",
    "recent_alerts",
}


def fail(msg):
    print(json.dumps({"fail": msg}), flush=True)
    sys.exit(1)


async def call(session, schemas, name, args, latencies):
    started = time.perf_counter()
    result = await session.call_tool(name, args)
    latencies.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    if result.is_error:
        fail(f"{name}({args}) failed: {result.content}")
    data = result.structured_content
    if data is None:
        fail(f"{name} gave no structured content")
    jsonschema.validate(data, schemas[name])
    compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    size = len(compact.encode())
    budget = args.get("max_bytes", 6000)
    if size > budget:
        fail(f"{name}: {size} bytes over the budget {budget}: {compact}")
    if not data["summary"]:
        fail(f"{name}: empty summary")
    if data["returned"] != len(data["items"]):
        fail(f"{name}: returned {data['returned']} but {len(data['items'])} items")
    return data


async def exercise(session):
    await session.initialize()
    listed = await session.list_tools()
    schemas = {t.name: t.output_schema for t in listed.tools}
    if set(schemas) != TOOLS:
        fail(f"tools listed: {sorted(schemas)}")
    for t in listed.tools:
        if not t.input_schema or not t.output_schema or not t.description:
            fail(f"{t.name} lacks an input schema, output schema or description")
    lat = {}
    errors = await call(session, schemas, "query_logs", {"mode": "errors", "time_range": "15m", "limit": 5}, lat)
    if errors["total"] is None or errors["total"] < errors["returned"] or errors["returned"] == 0:
        fail(f"query_logs errors: {errors}")
    if errors["source"] not in ("views", "views+loki", "loki"):
        fail(f"query_logs source: {errors['source']}")
    line = errors["items"][0]
    rid = next(i["correlation_id"] for i in errors["items"] if i.get("correlation_id"))
    request = await call(session, schemas, "get_request", {"correlation_id": rid}, lat)
    if rid not in request["summary"]:
        fail(f"get_request: {request['summary']}")
    health = await call(session, schemas, "service_health", {"service": line["service"], "time_range": "15m"}, lat)
    if line["service"] not in health["summary"]:
        fail(f"service_health: {health['summary']}")
    convs = await call(session, schemas, "query_logs", {"mode": "conversation", "time_range": "15m", "limit": 3}, lat)
    cid = convs["items"][0]["conversation_id"]
    conv = await call(session, schemas, "get_conversation", {"conversation_id": cid}, lat)
    if cid not in conv["summary"]:
        fail(f"get_conversation: {conv['summary']}")
    ws = convs["items"][0]["workspace_id"]
    usage = await call(session, schemas, "workspace_usage", {"workspace_id": ws, "time_range": "1h"}, lat)
    if "requests" not in usage["summary"] or not usage["details"].get("by_day"):
        fail(f"workspace_usage: {usage}")
    patterns = await call(session, schemas, "list_patterns", {"limit": 5}, lat)
    if patterns["returned"] != 5 or not patterns["truncated"]:
        fail(f"list_patterns: {patterns}")
    template = line.get("template_id")
    if not template:
        fail(f"query_logs lines carry no template_id: {line}")
    explained = await call(session, schemas, "explain_template", {"template_id": template, "time_range": "15m"}, lat)
    if explained["returned"] == 0 or template not in explained["summary"]:
        fail(f"explain_template: {explained}")
    alerts = await call(session, schemas, "recent_alerts", {"time_range": "15m"}, lat)
    newer = await call(session, schemas, "recent_alerts", {"time_range": "15m", "cursor": alerts["details"]["cursor"]}, lat)
    cursor = int(alerts["details"]["cursor"])
    if any(a["last_seen_ns"] <= cursor for a in newer["items"]):
        fail(f"recent_alerts after cursor {cursor} gave older alerts: {newer}")
    small = await call(session, schemas, "query_logs", {"time_range": "15m", "limit": 200, "max_bytes": 1500}, lat)
    if not small["truncated"] or "max_bytes" not in (small["next"] or ""):
        fail(f"a small budget does not say it cut: {small}")
    # An error case: a bad argument comes back as a tool error naming the field.
    bad = await session.call_tool("query_logs", {"time_range": "forever"})
    text = " ".join(getattr(c, "text", "") for c in bad.content)
    if not bad.is_error or "time_range" not in text:
        fail(f"bad time_range: {bad}")
    # Latency: repeated calls of the cheapest and the heaviest tool.
    for _ in range(20):
        await call(session, schemas, "query_logs", {"mode": "errors", "time_range": "15m", "limit": 5}, lat)
        await call(session, schemas, "service_health", {"service": line["service"], "time_range": "15m"}, lat)
    print(json.dumps({"ok": True, "latency_ms": lat}), flush=True)


async def main():
    mode = sys.argv[1]
    if mode == "stdio":
        binary, api_url, key = sys.argv[2], sys.argv[3], sys.argv[4]
        params = StdioServerParameters(command=binary, args=["mcp", "--api-url", api_url], env={"AILOGS_API_KEY": key})
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session)
    elif mode == "http":
        url, key = sys.argv[2], sys.argv[3]
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
        async with http:
            async with streamable_http_client(url, http_client=http) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await exercise(session)
                    # Without the key the tools are refused.
        async with create_mcp_http_client() as anon:
            try:
                async with streamable_http_client(url, http_client=anon) as streams:
                    async with ClientSession(streams[0], streams[1]) as session:
                        await session.initialize()
                fail("/mcp accepted a client without a key")
            except Exception as e:  # the 401 surfaces as a transport error
                print(json.dumps({"refused_without_key": type(e).__name__}), flush=True)
    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    asyncio.run(main())
