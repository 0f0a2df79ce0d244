#!/usr/bin/env bash
# Run every benchmark in one go; raw JSON results land in bench/results/ (not committed).
#   bash bench/run_all.sh            # Bastion only (about 10 minutes)
#   PEER=1 bash bench/run_all.sh     # also Matrix Synapse, with ../shared/peer-bench (about 15 more)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
scripts/bootstrap
out=bench/results
mkdir -p "$out"
py=.venv/bin/python

{ date -u +"%Y-%m-%dT%H:%M:%SZ"; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; } > "$out/machine.txt"
$py -m bench.send_throughput --rounds 3 --seconds 10 --connections 32 --json "$out/send_c32.json"
$py -m bench.send_throughput --rounds 2 --seconds 10 --connections 16 --json "$out/send_c16.json"
$py -m bench.send_throughput --rounds 2 --seconds 10 --connections 1 --json "$out/send_c1.json"
$py -m bench.fanout --subscribers 1,100,1000 --messages 1000 --json "$out/fanout.json"
$py -m bench.send_cost --rounds 5 --sends 400 --json "$out/send_cost.json"
$py -m bench.crypto --messages 100000 --channels 1000 --rounds 2 --seconds 8 --json "$out/crypto.json"
$py -m bench.audit --events 5000 --sends 2000 > "$out/audit.json"

if [ "${PEER:-0}" = "1" ]; then
  peer=../shared/peer-bench
  venv=$(realpath -m "${SYNAPSE_VENV:-$out/synvenv}")
  work=$(realpath -m "$out/synapse")
  [ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q matrix-synapse httpx; }
  (cd "$peer" && timeout 1500 "$venv/bin/python" synapse_bench.py \
      --work "$work" --messages 1000 --e2e 200 --rounds 2 --wrk-seconds 10) \
    | tee "$out/synapse.log"
fi
