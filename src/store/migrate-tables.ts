/**
 * The tables `smhfs migrate` (SPEC S3, src/store/migrate.ts) copies, and one small raw-table
 * interface over each engine: list tables and columns, read a table in key order one page at a
 * time (keyset paging, so a table of millions of rows never sits in memory), insert rows, and
 * carry the id counters over. Both engines' schemas are the same numbered migrations
 * (src/store/postgres/schema.ts translates SQLite's), so a table has the same columns on both and
 * rows copy column by column, whatever columns later migrations add.
 *
 * What is copied is every table that holds the library (`COPIED`, with the key it is read in).
 * What is not is derived and rebuilt by the target itself: the statfs counters and the bound-link
 * counts of migration 10 (each engine's triggers count the copied nodes again), the change feed (a new library's feed starts empty: no
 * process follows the target yet) and PostgreSQL's schema record. A table the source holds that
 * is in neither list stops the migration before anything is written: a table added by a later
 * migration must be classified here, never silently left behind.
 *
 * Keys are compared in byte order on both engines (SQLite's BINARY, PostgreSQL's COLLATE "C"), so
 * a page boundary means the same on both and the verification can walk both tables side by side.
 */
import type Database from 'better-sqlite3';
import type { PgConnection, PgValue } from './postgres/connection.js';

export interface CopiedTable {
  name: string;
  /** The columns a page is ordered and continued by (a primary key or a unique column). */
  key: string[];
  /** An id counter to carry over: SQLite AUTOINCREMENT, PostgreSQL identity. */
  counter?: string;
}

/** Every table of a library, in an order that reads naturally in progress output. */
export const COPIED: readonly CopiedTable[] = [
  { name: 'meta', key: ['key'] },
  { name: 'spaces', key: ['name'] },
  { name: 'nodes', key: ['id'], counter: 'id' },
  { name: 'entries', key: ['parent', 'name'] },
  { name: 'xattrs', key: ['node', 'name'] },
  { name: 'recycle_items', key: ['id'], counter: 'id' },
  { name: 'recycle_links', key: ['node'] },
  { name: 'tasks', key: ['id'], counter: 'id' },
  { name: 'tokens', key: ['id'], counter: 'id' },
  { name: 'blob_queue', key: ['key'] },
  { name: 'blob_pending', key: ['id'], counter: 'id' },
  { name: 'blob_doomed', key: ['key'] },
  { name: 'blob_holds', key: ['id'], counter: 'id' },
];

/** Tables each engine derives or keeps for itself (see the header): not copied, rebuilt by the target. */
export const DERIVED: Readonly<Record<RawDb['kind'], readonly string[]>> = {
  sqlite: ['space_usage', 'bound_links', 'changes', 'changes_horizon'],
  postgres: ['smhfs_schema', 'space_usage_base', 'space_usage_delta', 'bound_links', 'changes', 'changes_horizon'],
};

export type Row = unknown[];

export interface RawDb {
  readonly kind: 'sqlite' | 'postgres';
  /** The user tables of the library's schema. */
  tables(): string[];
  columns(table: string): string[];
  count(table: string): number;
  /** Up to `limit` rows (values in `cols` order) with a key after `after` (undefined: from the start), in key order. */
  page(table: CopiedTable, cols: string[], after: Row | undefined, limit: number): Row[];
  insert(table: string, cols: string[], rows: Row[]): void;
  /** The highest id the table's counter has handed out (≥ every id in the table), 0 if none. */
  counter(table: CopiedTable): number;
  /** Make the counter hand out ids above `value` only. */
  setCounter(table: CopiedTable, value: number): void;
  exec(sql: string): void;
  /** One statement with parameters ($1… on PostgreSQL, ? on SQLite: write `?`). */
  run(sql: string, params: unknown[]): void;
  get(sql: string, params: unknown[]): Record<string, unknown> | undefined;
}

const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`;
const list = (cols: string[]): string => cols.map(q).join(', ');

export function sqliteRaw(db: Database.Database): RawDb {
  const pages = new Map<string, Database.Statement>();
  const inserts = new Map<string, Database.Statement>();
  return {
    kind: 'sqlite',
    tables: () =>
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").all() as Array<{ name: string }>).map(
        (r) => r.name,
      ),
    columns: (table) => (db.prepare(`PRAGMA table_info(${q(table)})`).all() as Array<{ name: string }>).map((r) => r.name),
    count: (table) => (db.prepare(`SELECT count(*) AS n FROM ${q(table)}`).get() as { n: number }).n,
    page(table, cols, after, limit) {
      const id = `${table.name}|${cols.join(',')}|${after === undefined ? 0 : 1}`;
      let st = pages.get(id);
      if (!st) {
        const where = after === undefined ? '' : `WHERE (${list(table.key)}) > (${table.key.map(() => '?').join(', ')})`;
        st = db.prepare(`SELECT ${list(cols)} FROM ${q(table.name)} ${where} ORDER BY ${list(table.key)} LIMIT ?`).raw(true);
        pages.set(id, st);
      }
      return st.all(...(after ?? []), limit) as Row[];
    },
    insert(table, cols, rows) {
      const id = `${table}|${cols.join(',')}`;
      let st = inserts.get(id);
      if (!st) {
        st = db.prepare(`INSERT INTO ${q(table)} (${list(cols)}) VALUES (${cols.map(() => '?').join(', ')})`);
        inserts.set(id, st);
      }
      for (const r of rows) st.run(...r);
    },
    counter(table) {
      const max = (db.prepare(`SELECT coalesce(max(${q(table.counter!)}), 0) AS n FROM ${q(table.name)}`).get() as { n: number }).n;
      const seq = db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table.name) as { seq: number } | undefined;
      return Math.max(max, seq?.seq ?? 0);
    },
    setCounter(table, value) {
      // INTEGER PRIMARY KEY without AUTOINCREMENT (nodes) continues after the largest id by itself.
      const auto = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? AND sql LIKE '%AUTOINCREMENT%'").get(table.name) !== undefined;
      if (!auto || value <= 0) return;
      const done = db.prepare('UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?').run(value, table.name).changes;
      if (done === 0) db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)').run(table.name, value);
    },
    exec: (sql) => void db.exec(sql),
    run: (sql, params) => void db.prepare(sql).run(...params),
    get: (sql, params) => db.prepare(sql).get(...params) as Record<string, unknown> | undefined,
  };
}

/** `?` placeholders → `$n`. */
const dollars = (sql: string): string => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};

export function pgRaw(conn: PgConnection): RawDb {
  return {
    kind: 'postgres',
    tables: () =>
      conn
        .query<{ name: string }>(
          "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
        )
        .map((r) => r.name),
    columns: (table) =>
      conn
        .query<{ name: string }>('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position', [table])
        .map((r) => r.name),
    count: (table) => conn.query<{ n: number }>(`SELECT count(*) AS n FROM ${q(table)}`)[0]!.n,
    page(table, cols, after, limit) {
      const k = table.key.length;
      const where = after === undefined ? '' : `WHERE (${list(table.key)}) > (${table.key.map((_, i) => `$${i + 1}`).join(', ')})`;
      const rows = conn.query(`SELECT ${list(cols)} FROM ${q(table.name)} ${where} ORDER BY ${list(table.key)} LIMIT $${(after === undefined ? 0 : k) + 1}`, [
        ...((after ?? []) as PgValue[]),
        limit,
      ]);
      return rows.map((r) => cols.map((c) => r[c]));
    },
    insert(table, cols, rows) {
      // Multi-row VALUES, within PostgreSQL's 65,535 parameters a statement.
      const per = Math.max(1, Math.min(500, Math.floor(30_000 / cols.length)));
      for (let i = 0; i < rows.length; i += per) {
        const batch = rows.slice(i, i + per);
        const params: PgValue[] = [];
        const values = batch.map((r) => `(${r.map((v) => (params.push(v as PgValue), `$${params.length}`)).join(', ')})`);
        conn.query(`INSERT INTO ${q(table)} (${list(cols)}) VALUES ${values.join(', ')}`, params);
      }
    },
    counter(table) {
      const r = conn.query<{ n: number | null; s: number | null }>(
        `SELECT (SELECT coalesce(max(${q(table.counter!)}), 0) FROM ${q(table.name)}) AS n, pg_sequence_last_value(pg_get_serial_sequence($1, $2)::regclass) AS s`,
        [table.name, table.counter!],
      )[0]!;
      return Math.max(r.n ?? 0, r.s ?? 0);
    },
    setCounter(table, value) {
      if (value <= 0) return;
      conn.query('SELECT setval(pg_get_serial_sequence($1, $2), $3, true)', [table.name, table.counter!, value]);
    },
    exec: (sql) => conn.exec(sql),
    run: (sql, params) => void conn.query(dollars(sql), params as PgValue[]),
    get: (sql, params) => conn.query(dollars(sql), params as PgValue[])[0],
  };
}

/** A value as the verification compares it: the same on both engines for the same data. */
export function comparable(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `bytes:${Buffer.from(v).toString('hex')}`;
  if (typeof v === 'bigint') return `num:${v.toString()}`;
  if (typeof v === 'number') return `num:${v}`;
  if (typeof v === 'string') return `text:${JSON.stringify(v)}`;
  return `other:${JSON.stringify(v)}`;
}
