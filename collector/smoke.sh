#!/usr/bin/env bash
# End-to-end smoke test of the otelcol-promptcanary distribution, on loopback only:
#   1. builds it (build.sh, reused when unchanged) and validates the three example configs;
#   2. starts a fake control plane (Python standard library) that checks every Standard Webhooks
#      signature with its own HMAC code;
#   3. runs the gateway config, posts one LLM call span over OTLP/HTTP, stops the Collector
#      with SIGTERM and expects a clean exit and one signed report of that span.
set -euo pipefail
cd "$(dirname "$0")"

binary=$(./build.sh)
secret="smoke-test-secret-0123456789"
port_base=$(( 20000 + RANDOM % 20000 ))
cp_port=$port_base grpc_port=$((port_base + 1)) http_port=$((port_base + 2)) backend_port=$((port_base + 3))
work=$(mktemp -d)
cleanup() {
  [ -n "${col_pid:-}" ] && kill "$col_pid" 2>/dev/null || true
  [ -n "${cp_pid:-}" ] && kill "$cp_pid" 2>/dev/null || true
  [ -n "${KEEP_SMOKE:-}" ] && echo "smoke: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

export PROMPT_CANARY_WEBHOOK_SECRET=$secret
for config in config/gateway.yaml config/two-tier-agent.yaml config/two-tier-gateway.yaml; do
  "$binary" validate --config "$config"
  echo "smoke: $config is valid"
done

python3 - "$cp_port" "$secret" "$work/received.jsonl" <<'PY' &
import base64, hashlib, hmac, http.server, json, sys
port, secret, out = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"policies": {}}'
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg_id, ts = self.headers["webhook-id"], self.headers["webhook-timestamp"]
        mac = hmac.new(secret, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        signed = ("v1," + base64.b64encode(mac).decode()) in self.headers["webhook-signature"].split()
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "signed": signed, "body": json.loads(body)}) + "\n")
        self.send_response(202); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
PY
cp_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$cp_port/v1/policies" > /dev/null && break
  sleep 0.1
done

PROMPT_CANARY_URL="http://127.0.0.1:$cp_port" OTLP_GRPC_LISTEN="127.0.0.1:$grpc_port" \
OTLP_HTTP_LISTEN="127.0.0.1:$http_port" OTLP_BACKEND_ENDPOINT="127.0.0.1:$backend_port" \
  "$binary" --config config/gateway.yaml > "$work/collector.log" 2>&1 &
col_pid=$!

for _ in $(seq 100); do
  grep -q "Everything is ready" "$work/collector.log" && break
  sleep 0.1
done
grep -q "Everything is ready" "$work/collector.log" || { cat "$work/collector.log"; echo "smoke: the Collector did not start" >&2; exit 1; }
echo "smoke: the Collector started"

now=$(date +%s%N)
curl -sf -X POST "http://127.0.0.1:$http_port/v1/traces" -H 'Content-Type: application/json' -d '{
  "resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "smoke"}}]},
    "scopeSpans": [{"spans": [{
      "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
      "name": "chat support-reply", "kind": 3,
      "startTimeUnixNano": "'$((now - 1000000000))'", "endTimeUnixNano": "'$now'",
      "attributes": [
        {"key": "gen_ai.prompt.name", "value": {"stringValue": "support-reply"}},
        {"key": "gen_ai.prompt.version", "value": {"stringValue": "4"}},
        {"key": "prompt_canary.cohort", "value": {"stringValue": "canary"}},
        {"key": "prompt_canary.rollout.id", "value": {"stringValue": "ro-smoke"}},
        {"key": "prompt_canary.check.format_valid", "value": {"boolValue": true}},
        {"key": "prompt_canary.score.judge", "value": {"doubleValue": 0.85}}
      ]}]}]}]}' > /dev/null
echo "smoke: posted one LLM call span"

kill -TERM "$col_pid"
status=0
wait "$col_pid" || status=$?
col_pid=""
[ "$status" = 0 ] || { cat "$work/collector.log"; echo "smoke: the Collector exited with $status" >&2; exit 1; }
echo "smoke: the Collector shut down cleanly"

python3 - "$work/received.jsonl" <<'PY'
import json, sys
posts = [json.loads(line) for line in open(sys.argv[1])] if __import__("os").path.exists(sys.argv[1]) else []
reports = [p for p in posts if p["path"] == "/v1/reports"]
assert len(reports) == 1, f"expected one report, got {posts}"
r = reports[0]
assert r["signed"], "the report's signature does not verify"
body = r["body"]
assert body["rollout_id"] == "ro-smoke" and body["prompt"] == "support-reply", body
(window,) = body["canary"]["prompt_canary.check.format_valid"].values()
assert window == {"kind": "proportion", "n": 1, "successes": 1}, window
(score,) = body["canary"]["prompt_canary.score.judge"].values()
assert score == {"kind": "mean", "n": 1, "sum": "850000", "sum_sq": "722500000000"}, score
print("smoke: the control plane received one signed report:", json.dumps(body["canary"]))
PY
echo "1 passed, 0 failed"
