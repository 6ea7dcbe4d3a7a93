/**
 * Running the POSIX suite: `runTarget` (every case on one target, for `make posix`) and
 * `tapTarget` (the cases not staged on that target, as tap subtests, for `make test`).
 */
import type { Test } from 'tap';
import { allCases } from './cases.js';
import { stagedOn } from './staging.js';
import { Callers, runCase, type CaseResult } from './suite.js';
import { startTarget } from './targets.js';


/** Staged names that no case has (a renamed case must not leave its staging line behind). */
export function unknownStaged(target: string): string[] {
  const names = new Set(allCases().map((k) => k.name));
  return Object.keys(stagedOn(target)).filter((n) => !names.has(n));
}

/** Every case not staged on `targetName` must pass: one tap subtest per case, one assertion per check. */
export async function tapTarget(t: Test, targetName: string): Promise<void> {
  const staged = stagedOn(targetName);
  t.same(unknownStaged(targetName), [], `every case staged on ${targetName} exists`);
  const target = await startTarget(targetName);
  t.teardown(() => target.stop());
  const callers = new Callers();
  t.teardown(() => callers.close());
  for (const k of allCases()) {
    if (staged[k.name]) continue;
    await t.test(k.name, async (t) => {
      const r = await runCase(k, target, callers);
      for (const ch of r.checks) t.ok(ch.pass, ch.label, ch.pass ? {} : { found: ch.found, wanted: ch.wanted });
      if (r.error) t.fail(r.error, target.output ? { server: target.output().slice(-2000) } : {});
    });
  }
}

/** Every case on one target, results in case order. */
export async function runTarget(targetName: string, only?: string): Promise<CaseResult[]> {
  const target = await startTarget(targetName);
  const callers = new Callers();
  const out: CaseResult[] = [];
  try {
    for (const k of allCases()) {
      if (only && !k.name.includes(only)) continue;
      out.push(await runCase(k, target, callers));
    }
  } finally {
    callers.close();
    await target.stop();
  }
  return out;
}
