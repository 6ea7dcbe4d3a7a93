// self bytes by function (file:line), and by top-level module, of a sampled heap profile
const p = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const byFn = new Map(), byFile = new Map(); let total = 0;
const selfOf = new Map();
for (const s of p.samples) selfOf.set(s.nodeId, (selfOf.get(s.nodeId) ?? 0) + s.size);
function walk(n, stack) {
  const cf = n.callFrame; const self = selfOf.get(n.id) ?? 0;
  const k = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\/(node_modules\/)?/, '')}:${cf.lineNumber}`;
  if (self) { byFn.set(k, (byFn.get(k) ?? 0) + self); total += self;
    // attribute to the nearest frame of our code
    const ours = [...stack, k].reverse().find((x) => /main-chunk|dist\/src|main\.js|s3-get|page-cache/.test(x)) ?? '(none)';
    byFile.set(ours, (byFile.get(ours) ?? 0) + self); }
  for (const c of n.children) walk(c, [...stack, k]);
}
walk(p.head, []);
console.log('total sampled MiB', (total / 2 ** 20).toFixed(0));
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / 2 ** 20).toFixed(1).padStart(7), k);
console.log('--- by nearest own frame');
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((v / 2 ** 20).toFixed(1).padStart(7), k);
