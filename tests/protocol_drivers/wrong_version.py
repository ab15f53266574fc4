"""A driver process that answers the start with a protocol version the harness does not speak.

With ``--frames`` it speaks version 1 but answers with binary frames 2.
"""

import json
import sys

request = json.loads(sys.stdin.readline())
answer = {"version": 99, "name": "future", "capabilities": {"operations": []}}
if "--frames" in sys.argv:
    answer |= {"version": 1, "frames": 2}
print(json.dumps({"seq": request.get("seq"), "result": answer}), flush=True)
sys.stdin.read()
