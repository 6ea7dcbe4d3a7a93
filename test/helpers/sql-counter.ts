/**
 * Counts the SQL work a library connection does, for tests that bound work rather than time
 * (issue 15: "assert on statements or rows visited, not on time"). It patches one
 * better-sqlite3 connection from the outside — no hook in the store, nothing on the hot path of
 * a real mount: every statement prepared after `countSql(db)` counts its executions and the rows
 * it returned or changed, and every transaction records how many statements ran inside it.
 *
 * Install it right after `Library.open` and before the first `lib.space(...)`: a Space prepares
 * its statements when it is made. Statements the Library prepared in its constructor (tokens,
 * blob leases) are not counted.
 *
 * Rows returned only bound rows visited when each statement is an index SEARCH, not a SCAN:
 * `fullScans()` lists the statements (run since the last reset) whose query plan scans a table,
 * from SQLite's own EXPLAIN QUERY PLAN with the same arguments.
 */
import type Database from 'better-sqlite3';

export interface SqlCounts {
  /** Statement executions (run, get, all, iterate). */
  statements: number;
  /** Rows returned by get/all/iterate. */
  rowsRead: number;
  /** Rows changed by run. */
  rowsWritten: number;
  /** Outermost transactions committed or rolled back. */
  transactions: number;
  /** The most statements any one transaction ran. */
  maxStatementsPerTransaction: number;
}

export interface SqlCounter {
  counts: SqlCounts;
  reset(): void;
  /** Distinct statements run since the last reset whose plan has a SCAN of one of `tables`. */
  fullScans(tables?: readonly string[]): Array<{ sql: string; plan: string[] }>;
  /** Distinct statements run since the last reset (SQL text). */
  statementsRun(): string[];
  /** How many times statements whose SQL matches `pattern` ran since the last reset. */
  timesRun(pattern: RegExp): number;
}

const zero = (): SqlCounts => ({ statements: 0, rowsRead: 0, rowsWritten: 0, transactions: 0, maxStatementsPerTransaction: 0 });

export function countSql(db: Database.Database): SqlCounter {
  let counts = zero();
  let depth = 0;
  let inTx = 0;
  const seen = new Map<string, unknown[]>();
  const runs = new Map<string, number>();
  const origPrepare = db.prepare.bind(db);
  const origTransaction = db.transaction.bind(db);

  const note = (sql: string, args: unknown[]): void => {
    counts.statements++;
    if (depth > 0) inTx++;
    if (!seen.has(sql)) seen.set(sql, args);
    runs.set(sql, (runs.get(sql) ?? 0) + 1);
  };

  (db as { prepare: unknown }).prepare = (sql: string) => {
    const stmt = origPrepare(sql);
    const run = stmt.run.bind(stmt);
    const get = stmt.get.bind(stmt);
    const all = stmt.all.bind(stmt);
    const iterate = stmt.iterate.bind(stmt);
    (stmt as { run: unknown }).run = (...args: unknown[]) => {
      note(sql, args);
      const r = run(...(args as []));
      counts.rowsWritten += r.changes;
      return r;
    };
    (stmt as { get: unknown }).get = (...args: unknown[]) => {
      note(sql, args);
      const r = get(...(args as []));
      if (r !== undefined) counts.rowsRead++;
      return r;
    };
    (stmt as { all: unknown }).all = (...args: unknown[]) => {
      note(sql, args);
      const r = all(...(args as []));
      counts.rowsRead += r.length;
      return r;
    };
    (stmt as { iterate: unknown }).iterate = function* (...args: unknown[]) {
      note(sql, args);
      for (const row of iterate(...(args as []))) {
        counts.rowsRead++;
        yield row;
      }
    };
    return stmt;
  };

  (db as { transaction: unknown }).transaction = (fn: (...a: unknown[]) => unknown) => {
    const wrapped = (...a: unknown[]): unknown => {
      const outer = depth === 0;
      if (outer) inTx = 0;
      depth++;
      try {
        return fn(...a);
      } finally {
        depth--;
        if (outer) {
          counts.transactions++;
          counts.maxStatementsPerTransaction = Math.max(counts.maxStatementsPerTransaction, inTx);
        }
      }
    };
    return origTransaction(wrapped);
  };

  return {
    get counts() {
      return counts;
    },
    reset() {
      counts = zero();
      seen.clear();
      runs.clear();
    },
    statementsRun() {
      return [...seen.keys()];
    },
    timesRun(pattern) {
      let n = 0;
      for (const [sql, k] of runs) if (pattern.test(sql)) n += k;
      return n;
    },
    fullScans(tables = ['nodes', 'entries', 'recycle_items', 'recycle_links', 'xattrs']) {
      const out: Array<{ sql: string; plan: string[] }> = [];
      for (const [sql, args] of seen) {
        if (!/^\s*(SELECT|WITH|UPDATE|DELETE|INSERT)/i.test(sql)) continue;
        const plan = (origPrepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(args as [])) as Array<{ detail: string }>).map((r) => r.detail);
        // The plan names a table by its alias when it has one ("SCAN n"): map aliases back.
        const alias = new Map<string, string>();
        for (const m of sql.matchAll(/\b(?:FROM|JOIN)\s+(\w+)(?:\s+AS)?\s+(\w+)/gi)) alias.set(m[2]!, m[1]!);
        const scanned = plan.map((d) => /^SCAN (\w+)/.exec(d)?.[1]).filter((x): x is string => x !== undefined);
        if (scanned.some((x) => tables.includes(alias.get(x) ?? x))) out.push({ sql, plan });
      }
      return out;
    },
  };
}
