// node --test: every scenario of clients/conformance/scenarios against a real hub.
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './hub.js';
import { runScenario } from './conformance.js';

const dir = path.join(repoRoot, 'clients/conformance/scenarios');
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const sc = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  test(`conformance: ${sc.name}`, { timeout: 60000 }, async (t) => {
    const r = await runScenario(sc);
    if (r != 'ok') t.skip(r);
  });
}
