"""Run SQL queries through clickhouse-connect, the driver Superset and most
notebooks use, and print what came back as JSON (for internal/chx's BI test).

stdin:  {"host", "port", "user", "password", "database",
         "queries": [{"source": str, "sql": str}, ...],
         "write_probe": str}       # a statement a read-only user must not run
stdout: {"server_version": str,
         "results": [{"source", "columns": [str], "rows": [[str|None]]} |
                     {"source", "error": str}, ...],
         "write_probe_error": str|None}

Values are strings as Python's str() gives them (Decimal keeps its digits),
dates as ISO 8601, NULL as None.
"""
import datetime
import decimal
import json
import sys

import clickhouse_connect


def text(v):
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, (list, tuple)):
        return json.dumps([text(x) for x in v])
    return str(v)


def main():
    req = json.load(sys.stdin)
    client = clickhouse_connect.get_client(
        host=req["host"], port=int(req["port"]), username=req["user"],
        password=req.get("password", ""), database=req["database"])
    out = {"server_version": client.server_version, "results": [], "write_probe_error": None}
    for q in req["queries"]:
        try:
            res = client.query(q["sql"])
            out["results"].append({
                "source": q["source"],
                "columns": list(res.column_names),
                "rows": [[text(v) for v in row] for row in res.result_rows],
            })
        except Exception as e:  # every failure is reported, per query
            out["results"].append({"source": q["source"], "error": str(e)})
    if req.get("write_probe"):
        try:
            client.command(req["write_probe"])
        except Exception as e:
            out["write_probe_error"] = str(e)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
