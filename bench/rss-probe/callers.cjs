// who calls fn NAME (its parent frames), by self bytes of NAME
const p = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const want = process.argv[3];
const selfOf = new Map();
for (const s of p.samples) selfOf.set(s.nodeId, (selfOf.get(s.nodeId) ?? 0) + s.size);
const agg = new Map();
function walk(n, stack) {
  const cf = n.callFrame;
  const k = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\//, '')}:${cf.lineNumber}`;
  const st = [...stack, k];
  function tot(x) { let t = selfOf.get(x.id) ?? 0; for (const c of x.children) t += tot(c); return t; }
  if (cf.functionName === want) { const key = st.slice(-6, -1).join(' < '); agg.set(key, (agg.get(key) ?? 0) + tot(n)); return; }
  for (const c of n.children) walk(c, st);
}
walk(p.head, []);
for (const [k, v] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log((v / 2 ** 20).toFixed(1), k);
