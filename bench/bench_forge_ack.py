"""What the pending status costs a webhook answer: 350 pushes answered with and without [forge]
(Flask test client in-process, SQLite state on disk).  `PYTHONPATH=$PWD python3 bench/bench_forge_ack.py`."""
import json, statistics, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from publisher.config import load_config_text
from publisher.service.tokens import hash_token
from publisher.service.web import create_app

def run(forge: bool) -> list[float]:
    tmp = Path(tempfile.mkdtemp())
    text = f'[source]\nurl = "https://git.example/example/dns.git"\n[state]\npath = "state.db"\n[webhook]\ntokens = ["{hash_token("t")}"]\n'
    if forge:
        text += '[forge]\ntype = "github"\ntoken = "x"\nrepository = "example/dns"\n'
    client = create_app(load_config_text(text, base=tmp), {"TESTING": True}).test_client()
    times = []
    for i in range(400):
        body = json.dumps({"ref": "refs/heads/main", "after": f"{i:040x}", "repository": {"full_name": "example/dns"}})
        start = time.perf_counter()
        r = client.post("/notifications/t/push", data=body, headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": str(i), "Content-Type": "application/json"})
        times.append(time.perf_counter() - start)
        assert r.status_code == 202, r.get_json()
    return times[50:]

for forge in (False, True, False, True):
    t = sorted(run(forge))
    print(f"forge={forge}: p50 {statistics.median(t)*1000:.2f} ms, p99 {t[int(len(t)*0.99)]*1000:.2f} ms")
