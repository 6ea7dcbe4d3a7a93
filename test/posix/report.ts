/**
 * `make posix`: the whole POSIX suite — staged cases included — on each target (default: plain,
 * bindfs and every smhfs binding), one after the other, and a report: per target the cases and
 * assertions that pass, the staged failures counted per cause, and what does not match the
 * staging list. Exit 1 when a case that is not staged fails (a regression, or a new bug to fix
 * or stage with its cause), or when a staged case passes (move it into `make test`: delete its
 * line in test/posix/staging.ts).
 *
 *   node dist/test/posix/report.js [--target NAME]… [--only SUBSTRING] [--verbose]
 */
import { CAUSES, LIFTED_BY, stagedOn, TIMING_DEPENDENT, type Cause } from './staging.js';
import { runTarget, unknownStaged } from './run.js';
import { TARGET_NAMES } from './targets.js';

const args = process.argv.slice(2);
const targets: string[] = [];
let only: string | undefined;
let verbose = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--target') targets.push(args[++i]!);
  else if (args[i] === '--only') only = args[++i];
  else if (args[i] === '--verbose') verbose = true;
  else {
    process.stderr.write(`usage: report.js [--target ${TARGET_NAMES.join('|')}]… [--only SUBSTRING] [--verbose]\n`);
    process.exit(2);
  }
}
if (process.getuid?.() !== 0) {
  process.stderr.write('make posix needs root (setpriv to throw-away users, FUSE mounts with allow_other)\n');
  process.exit(1);
}

let bad = 0;
const lines: string[] = [];
const say = (s = ''): void => {
  lines.push(s);
  process.stdout.write(`${s}\n`);
};

for (const name of targets.length > 0 ? targets : TARGET_NAMES) {
  const t0 = performance.now();
  const results = await runTarget(name, only);
  const staged = stagedOn(name);
  const perCause = new Map<Cause, { cases: number; checks: number }>();
  const unexpected: string[] = [];
  const stale: string[] = [];
  let passCases = 0;
  let passChecks = 0;
  let failChecks = 0;
  for (const r of results) {
    const failed = r.checks.filter((c) => !c.pass).length + (r.error ? 1 : 0);
    passChecks += r.checks.filter((c) => c.pass).length;
    failChecks += failed;
    const cause = staged[r.name];
    if (r.pass) {
      passCases++;
      if (cause && !TIMING_DEPENDENT.has(cause)) stale.push(`${r.name}  [staged: ${cause}]`);
    } else if (cause) {
      const c = perCause.get(cause) ?? { cases: 0, checks: 0 };
      c.cases++;
      c.checks += failed;
      perCause.set(cause, c);
      if (verbose) say(`  staged (${cause}): ${r.name}: ${describe(r)}`);
    } else {
      unexpected.push(`${r.name}: ${describe(r)}`);
    }
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  say(`## ${name}: ${passCases}/${results.length} cases pass, ${passChecks}/${passChecks + failChecks} assertions (${secs} s)`);
  for (const [cause, n] of [...perCause.entries()].sort((a, b) => b[1].checks - a[1].checks)) {
    say(`   ${String(n.checks).padStart(4)} assertions in ${String(n.cases).padStart(3)} cases: ${cause} — ${CAUSES[cause]} [${LIFTED_BY[cause]}]`);
  }
  for (const u of unexpected) say(`   UNEXPECTED FAILURE: ${u}`);
  for (const s of stale) say(`   NOW PASSES (move it into make test: delete its line in test/posix/staging.ts): ${s}`);
  for (const n of only ? [] : unknownStaged(name)) say(`   STAGED BUT NO SUCH CASE: ${n}`);
  bad += unexpected.length + stale.length + (only ? 0 : unknownStaged(name).length);
}
process.exit(bad > 0 ? 1 : 0);

function describe(r: { checks: Array<{ label: string; pass: boolean; found?: unknown; wanted?: unknown }>; error?: string }): string {
  const parts = r.checks.filter((c) => !c.pass).map((c) => `${c.label}: found ${JSON.stringify(c.found)}, wanted ${JSON.stringify(c.wanted)}`);
  if (r.error) parts.push(r.error.split('\n')[0]!);
  return parts.join('; ');
}
