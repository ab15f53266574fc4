"""A driver process that answers the start with a protocol version the harness does not speak."""

import json
import sys

request = json.loads(sys.stdin.readline())
answer = {"version": 99, "name": "future", "capabilities": {"operations": []}}
print(json.dumps({"seq": request.get("seq"), "result": answer}), flush=True)
sys.stdin.read()
