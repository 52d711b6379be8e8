/**
 * Where a V8 CPU profile's time went: self time by function (top 25) and by part (GC, idle, node-media-server,
 * edgerec's src/, Node internals, native). Usage: node dist/bench/cpuprofile-top.js FILE.cpuprofile [...]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function part(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'program (native, outside JS)';
  if (url.includes('node-media-server')) return 'node-media-server';
  if (url.includes('gstreamer-superficial')) return 'gstreamer-superficial';
  if (url.includes('/src/')) return `edgerec ${url.replace(/.*\/dist\/src\//, '').replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return `native: ${fn}`;
  return 'other';
}

for (const file of process.argv.slice(2)) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i] as number, (self.get(p.samples[i] as number) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = (p.endTime - p.startTime) / 1000;
  const fns = new Map<string, number>();
  const parts = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/.*\/(node_modules|dist)\//, '')}:${n.callFrame.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us / 1000);
    const pt = part(n.callFrame.url, n.callFrame.functionName);
    parts.set(pt, (parts.get(pt) ?? 0) + us / 1000);
  }
  const busy = total - (parts.get('idle') ?? 0);
  console.log(`\n${file}: ${(total / 1000).toFixed(1)} s profiled, main thread busy ${(busy / 1000).toFixed(2)} s (${((busy / total) * 100).toFixed(1)} %)`);
  console.log('| part | ms | % of busy |\n|---|---:|---:|');
  for (const [k, ms] of [...parts].sort((a, b) => b[1] - a[1]).slice(0, 20)) if (k !== 'idle') console.log(`| ${k} | ${ms.toFixed(0)} | ${((ms / busy) * 100).toFixed(1)} |`);
  console.log('| function | ms | % of busy |\n|---|---:|---:|');
  for (const [k, ms] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 25)) if (!k.startsWith('(idle)')) console.log(`| ${k} | ${ms.toFixed(0)} | ${((ms / busy) * 100).toFixed(1)} |`);
}
