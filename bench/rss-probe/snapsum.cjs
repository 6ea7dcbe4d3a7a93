// node snapsum.js A.heapsnapshot [B.heapsnapshot]: self size by (type, name), and B − A
const fs = require('fs');
function load(p) {
  const s = JSON.parse(fs.readFileSync(p, 'utf8'));
  const m = s.snapshot.meta, nf = m.node_fields.length;
  const ti = m.node_fields.indexOf('type'), ni = m.node_fields.indexOf('name'), si = m.node_fields.indexOf('self_size');
  const types = m.node_types[0];
  const agg = new Map(); let total = 0, count = 0;
  for (let i = 0; i < s.nodes.length; i += nf) {
    const t = types[s.nodes[i + ti]];
    let name = s.strings[s.nodes[i + ni]];
    if (t === 'string' || t === 'concatenated string' || t === 'sliced string') name = '(string)';
    else if (t === 'code') name = '(code)';
    else if (t === 'number') name = '(number)';
    else if (name.length > 60) name = name.slice(0, 60);
    const k = t + ' ' + name;
    const e = agg.get(k) ?? [0, 0];
    e[0] += s.nodes[i + si]; e[1]++;
    agg.set(k, e); total += s.nodes[i + si]; count++;
  }
  return { agg, total, count };
}
const a = load(process.argv[2]);
console.log(process.argv[2], 'total', (a.total / 2 ** 20).toFixed(2), 'MiB', a.count, 'nodes');
if (process.argv[3]) {
  const b = load(process.argv[3]);
  console.log(process.argv[3], 'total', (b.total / 2 ** 20).toFixed(2), 'MiB', b.count, 'nodes');
  const keys = new Set([...a.agg.keys(), ...b.agg.keys()]);
  const d = [...keys].map((k) => [k, (b.agg.get(k)?.[0] ?? 0) - (a.agg.get(k)?.[0] ?? 0), (b.agg.get(k)?.[1] ?? 0) - (a.agg.get(k)?.[1] ?? 0)]);
  d.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
  for (const [k, s, c] of d.slice(0, 40)) console.log((s / 1024).toFixed(0).padStart(8), 'KiB', String(c).padStart(8), k);
} else {
  const d = [...a.agg.entries()].sort((x, y) => y[1][0] - x[1][0]);
  for (const [k, [s, c]] of d.slice(0, 40)) console.log((s / 1024).toFixed(0).padStart(8), 'KiB', String(c).padStart(8), k);
}
