#!/usr/bin/env python3
"""Builds the fuzz targets' seed corpora in OUT/<target>/ from the golden vectors
(ledger-core/tests/golden) and ../shared/realdata (read in place, never copied into the
repository). Usage: seeds.py OUT [REALDATA]"""
import base64, hashlib, json, os, sys

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
real = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, '..', '..', 'shared', 'realdata')
golden = os.path.join(here, '..', 'ledger-core', 'tests', 'golden')

def put(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

vectors = json.load(open(os.path.join(golden, 'vectors.json')))
for e in vectors['entries']:
    put('entry', bytes.fromhex(e['entry_cbor']))
    put('record', bytes.fromhex(e['record_cbor']))
bundle = open(os.path.join(golden, 'bundle.jsonl'), 'rb').read()
put('bundle', bundle)
lines = bundle.split(b'\n')
header = json.loads(lines[0])
checkpoint = header['checkpoint']
put('note', checkpoint.encode())
put('note', header['log_key'].encode())
put('note', json.loads(lines[-2])['manifest'].encode())
put('note', vectors['log_key']['verifier_key'].encode())
# A tlog-proof (C2SP tlog-proof@v1) around the golden checkpoint.
h = base64.b64encode(bytes(range(32))).decode()
put('tlog_proof', ('c2sp.org/tlog-proof@v1\nindex 3\n%s\n%s\n\n%s' % (h, h, checkpoint)).encode())
put('tlog_proof', ('c2sp.org/tlog-proof@v1\nextra %s\nindex 0\n\n%s' % (base64.b64encode(b'entry').decode(), checkpoint)).encode())

# Webhook payloads: the first byte picks the mapper (fuzz_targets/webhook.rs): 5*i + m.
GITHUB = ["pull_request", "pull_request_review", "push", "check_run", "check_suite", "workflow_run",
          "workflow_job", "deployment", "deployment_status", "deployment_review", "status", "merge_group", "issues"]
def github_pick(path):
    name = path.replace('-', '_')
    for i, ev in enumerate(GITHUB):
        if '/' + ev + '/' in name or os.path.basename(name).startswith(ev):
            return 5 * i
    return 0
found = 0
for root, _, files in os.walk(real):
    for f in sorted(files):
        p = os.path.join(root, f)
        rel = os.path.relpath(p, real)
        if rel.endswith('.md'):
            continue
        data = open(p, 'rb').read()
        if len(data) > 1 << 20:
            continue
        found += 1
        if rel.startswith('github-webhooks'):
            put('webhook', bytes([github_pick(rel) % 256]) + data)
        elif rel.startswith('gitlab-webhooks'):
            for i in range(6):
                put('webhook', bytes([5 * i + 1]) + data)
        elif rel.startswith('incidents/pagerduty'):
            put('webhook', bytes([2]) + data)
        elif rel.startswith('incidents/opsgenie'):
            put('webhook', bytes([3]) + data)
        elif rel.startswith('attestations'):
            put('attestation', data)
            put('webhook', bytes([4]) + data)
# Policies: the built-in default (first byte even), and CODEOWNERS shapes (odd).
put('policy', b'\x00' + open(os.path.join(here, '..', 'ledger-audit', 'src', 'policy', 'default.toml'), 'rb').read())
put('policy', b'\x00name = "p"\nversion = 2\ndefault_tier = "T9"\n[tiers.T1]\napprovals = -1\n[[classify]]\npaths = ["["]\n')
put('policy', b'\x01# owners\n*       @global\n*.js    @js-owner\n/build/logs/ @doctocat\ndocs/*  docs@example.com\napps/   @octocat\n')
if found == 0 and os.environ.get('CI'):
    sys.exit('no real data at %s (CI needs ../shared/realdata)' % real)
print('seeds from %d real-data files and the golden vectors in %s' % (found, out))
