/**
 * Shared helpers for the store tests (test/store-*.test.ts) and the crash child
 * (test/helpers/crash-child.ts). Written against the contract in native-notes/store-api.md.
 *
 * Nothing here imports `tap` at run time (only its types), so the crash child can use it too.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync, existsSync, readdirSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import type { Test } from 'tap';
import { Library, Space } from '../../src/store/library.js';
import { PgConnection } from '../../src/store/postgres/connection.js';
import { pgRecordOf } from '../../src/store/postgres/library.js';
import { ContentReader } from '../../src/vfs/reader.js';
import { MemoryBlobStore } from './memory-store.js';
import { countSql, type SqlCounter } from './sql-counter.js';
import { isSmhError, SmhError, type ErrorCode } from '../../src/errors.js';
import type { BlobRef, NodeInfo, Placed } from '../../src/store/types.js';

export const DB_NAME = 'library.db';

// ---------------------------------------------------------------------------------------------
// hashing

export function sha256(s: string | Buffer): string {
  return createHash('sha256').update(s).digest('hex');
}
export function md5(s: string | Buffer): string {
  return createHash('md5').update(s).digest('hex');
}
/** ETags may come quoted (HTTP style) or bare; compare bare. */
export function bareEtag(e: string | null | undefined): string | null | undefined {
  return typeof e === 'string' ? e.replace(/"/g, '') : e;
}

// ---------------------------------------------------------------------------------------------
// temp libraries

/** Every regular file under `dir`, recursively (absolute paths). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export function tempDir(prefix = 'smhfs-store-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const TMPFS_MAGIC = 0x01021994;
let memoryRoot: string | undefined;
/**
 * A temp dir in memory (/dev/shm, when it is a tmpfs we may write), else as `tempDir`: for a test
 * of the store's logic whose many SQLite commits would otherwise each wait for the disk (a
 * durable commit fsyncs the WAL). The same statements, pragmas and fsync calls run; only the
 * device differs. Not for a test about what survives a crash.
 */
export function memoryTempDir(prefix = 'smhfs-store-'): string {
  if (memoryRoot === undefined) {
    memoryRoot = tmpdir();
    try {
      accessSync('/dev/shm', fsConstants.W_OK);
      if (statfsSync('/dev/shm').type === TMPFS_MAGIC) memoryRoot = '/dev/shm';
    } catch {
      /* no /dev/shm: the usual temp dir */
    }
  }
  return mkdtempSync(join(memoryRoot, prefix));
}

/** A library whose statements are counted (the counter must exist before `lib.space`), removed on teardown. */
export function countedLib(t: Pick<Test, 'teardown'>): { lib: Library; space: Space; sql: SqlCounter; dir: string } {
  const dir = tempDir();
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  const sql = countSql(lib.db);
  const space = lib.space('-');
  t.teardown(() => {
    lib.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { lib, space, sql, dir };
}

export interface TestLib {
  dir: string;
  lib: Library;
  space: Space;
  blobs: MemoryBlobStore;
}

/**
 * The engine `openLib` makes libraries on (SPEC S1: one rule suite, two engines). SQLite unless a
 * test file calls `usePostgresEngine` (test/helpers/store-engines.ts) first: then each library is
 * a fresh database on that file's PostgreSQL cluster.
 */
export const storeEngine: {
  name: 'sqlite' | 'postgres';
  newDatabaseUrl: (() => string) | undefined;
  dropDatabase: ((url: string) => void) | undefined;
  /** A closed library's database, for a later library to reuse (emptied first), when nobody else is on it. */
  releaseDatabase: ((url: string) => void) | undefined;
  /** A connection to a pooled database kept by the harness, for reads on the side (not the library's own). */
  sideConnection: ((url: string) => PgConnection | undefined) | undefined;
} = { name: 'sqlite', newDatabaseUrl: undefined, dropDatabase: undefined, releaseDatabase: undefined, sideConnection: undefined };

/** A fresh library on a MemoryBlobStore in a temp dir; closed and removed at teardown. */
export function openLib(t: Test, opts: { dir?: string } = {}): TestLib {
  const dir = opts.dir ?? tempDir();
  const blobs = new MemoryBlobStore();
  const meta = storeEngine.newDatabaseUrl?.();
  const lib = Library.open(dir, { create: true, blobStore: blobs, ...(meta ? { meta } : {}) });
  if (lib.engineKind !== storeEngine.name) throw new Error(`openLib: asked for a ${storeEngine.name} library, got ${lib.engineKind}`);
  const space = lib.space('-');
  let closed = false;
  t.teardown(() => {
    if (!closed) {
      closed = true;
      try {
        lib.close();
      } catch {
        /* already closed by the test */
      }
      if (meta) storeEngine.releaseDatabase?.(meta);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, lib, space, blobs };
}

// ---------------------------------------------------------------------------------------------
// content

export async function blobOf(lib: Library, content: string | Buffer): Promise<BlobRef> {
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  return lib.storeBlobFromStream(Readable.from(buf));
}

/** Upload `content` to `path` (SMH upload / CLI put). */
export async function put(
  lib: Library,
  space: Space,
  path: string,
  content: string | Buffer,
  opts: Parameters<Space['putFile']>[2] = {},
): Promise<Placed> {
  const ref = await blobOf(lib, content);
  return space.putFile(path, ref, opts);
}

/** Bytes of a file node. */
export async function bytesOf(lib: Library, info: NodeInfo): Promise<Buffer> {
  if (info.kind !== 'file') throw new Error(`bytesOf: ${info.path} is a ${info.kind}`);
  if (info.size === 0) return Buffer.alloc(0);
  if (!info.blob) throw new Error(`bytesOf: ${info.path} has no blob but size ${info.size}`);
  return readerOf(lib).readBlob(info.blob, 0, info.size);
}

const readers = new WeakMap<Library, ContentReader>();

/** The one read path over `lib` (src/vfs/reader.ts), one per library. */
export function readerOf(lib: Library): ContentReader {
  let r = readers.get(lib);
  if (!r) readers.set(lib, (r = new ContentReader(lib)));
  return r;
}

/** Content of the file at `path`, following links (what `cat` shows). */
export async function read(lib: Library, space: Space, path: string): Promise<string> {
  return (await bytesOf(lib, space.stat(path, { follow: true }))).toString();
}

// ---------------------------------------------------------------------------------------------
// errors

/**
 * Run `fn` (sync or async); it must throw an SmhError whose code is one of `codes`.
 * Returns the error (or undefined after reporting a failure).
 */
export async function expectCode(
  t: Test,
  fn: () => unknown,
  codes: ErrorCode | readonly ErrorCode[],
  what = '',
): Promise<SmhError | undefined> {
  const want: readonly ErrorCode[] = typeof codes === 'string' ? [codes] : codes;
  let err: unknown;
  let ok = false;
  try {
    await fn();
    ok = true;
  } catch (e) {
    err = e;
  }
  const label = `${what}${what ? ': ' : ''}${want.join('|')}`;
  if (ok) {
    t.fail(`${label}: expected an error, but the call succeeded`);
    return undefined;
  }
  if (!isSmhError(err)) {
    t.fail(`${label}: expected SmhError, got ${String(err)}`, { stack: (err as Error | undefined)?.stack });
    return undefined;
  }
  t.ok(want.includes(err.code), `${label} (got ${err.code}: ${err.message})`);
  return err;
}

/** Like expectCode, and the whole database is byte-for-byte the same before and after (section 9). */
export async function expectUnchanged(
  t: Test,
  dir: string,
  fn: () => unknown,
  codes: ErrorCode | readonly ErrorCode[],
  what = '',
): Promise<SmhError | undefined> {
  const before = dumpDb(dir);
  const e = await expectCode(t, fn, codes, what);
  const after = dumpDb(dir);
  t.same(after, before, `${what}: database unchanged`);
  return e;
}

// ---------------------------------------------------------------------------------------------
// database

export interface DbDump {
  userVersion: number;
  schema: string[];
  tables: Record<string, string[]>;
}

/**
 * Every table of `<dir>/library.db`, rows as JSON strings, sorted; plus the schema and
 * user_version. Opened read-only on the side, so it sees exactly what is committed.
 */
export function dumpDb(dir: string): DbDump {
  const pg = pgRecordOf(dir);
  if (pg) return dumpPostgres(pg.url);
  const db = new Database(join(dir, DB_NAME), { readonly: true, fileMustExist: true });
  try {
    const userVersion = db.pragma('user_version', { simple: true }) as number;
    const objs = db
      .prepare(`SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY type, name`)
      .all() as Array<{ type: string; name: string; sql: string | null }>;
    const tables: Record<string, string[]> = {};
    for (const o of objs) {
      if (o.type !== 'table' || o.name.startsWith('sqlite_stat')) continue;
      const rows = db.prepare(`SELECT * FROM "${o.name.replace(/"/g, '""')}"`).all();
      tables[o.name] = rows.map((r) => JSON.stringify(r)).sort();
    }
    return { userVersion, schema: objs.map((o) => `${o.type} ${o.name}: ${o.sql ?? ''}`), tables };
  } finally {
    db.close();
  }
}

/** `dumpDb` of a PostgreSQL library: every table of its schema, in one snapshot, on a connection of its own. */
function dumpPostgres(url: string): DbDump {
  // A pooled database has a connection of its own kept by the harness: a new one costs the server
  // a backend start (~40 ms of CPU on the test machine), and a refusal is dumped twice.
  const side = storeEngine.sideConnection?.(url);
  const conn = side ?? PgConnection.connectSync(url);
  try {
    return conn.snapshot(() => {
      const userVersion = conn.query<{ version: number }>('SELECT version FROM smhfs_schema')[0]!.version;
      const cols = conn.query<{ t: string; c: string; ty: string }>(
        `SELECT table_name AS t, column_name AS c, data_type AS ty FROM information_schema.columns
         WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
      );
      const names = [...new Set(conn.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").map((r) => r.t))];
      const tables: Record<string, string[]> = {};
      for (const name of names) tables[name] = conn.query(`SELECT * FROM "${name}"`).map((r) => JSON.stringify(r)).sort();
      return { userVersion, schema: cols.map((c) => `column ${c.t}.${c.c}: ${c.ty}`), tables };
    });
  } finally {
    if (!side) conn.close();
  }
}

/** A consistent copy of the committed database into `<destDir>/library.db` (VACUUM INTO). */
export function copyDb(dir: string, destDir: string): void {
  const dest = join(destDir, DB_NAME);
  if (existsSync(dest)) rmSync(dest);
  const db = new Database(join(dir, DB_NAME), { readonly: true, fileMustExist: true });
  try {
    db.prepare('VACUUM INTO ?').run(dest);
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// trees

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
/** Relative path from directory `fromDir` to `to` (both space-relative), '.' when equal. */
export function relPath(fromDir: string, to: string): string {
  return posix.relative(`/${fromDir}`, `/${to}`) || '.';
}
/** Space-relative path a relative link string points at from directory `dir`; undefined if it escapes. */
export function resolveFrom(dir: string, rel: string): string | undefined {
  const segs = dir === '' ? [] : dir.split('/');
  for (const s of rel.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (segs.length === 0) return undefined;
      segs.pop();
    } else segs.push(s);
  }
  return segs.join('/');
}

/**
 * Every node under `path` (not including `path` itself), keyed by path. At the space root the
 * `.trash` view is skipped (it is not part of the live tree).
 */
export function walk(space: Space, path = ''): Map<string, NodeInfo> {
  const out = new Map<string, NodeInfo>();
  const rec = (p: string) => {
    for (const e of space.readdir(p)) {
      if (p === '' && e.name === '.trash') continue;
      const cp = joinPath(p, e.name);
      out.set(cp, e.info);
      if (e.info.kind === 'dir') rec(cp);
    }
  };
  rec(path);
  return out;
}

// ---------------------------------------------------------------------------------------------
// crash test: a deterministic sequence of operations, run by test/helpers/crash-child.ts and
// replayed on a reference model by test/store-crash.test.ts.

export const CRASH_BLOCK = 12;

/** Deterministic pseudo-random bytes (xorshift32) — distinct per (k, variant). */
export function crashBytes(k: number, variant: number, big: boolean): Buffer {
  const size = big ? 96 * 1024 + ((k * 7919 + variant * 104729) % (160 * 1024)) : 20 + (k % 50);
  const b = Buffer.alloc(size);
  let x = (k * 2654435761 + variant * 40503 + 1) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x >>> 0, Math.min(i, size - 4));
  }
  b.write(`k=${k} v=${variant};`, 0);
  return b;
}

export function crashOpName(i: number): string {
  const k = Math.floor(i / CRASH_BLOCK);
  const r = i % CRASH_BLOCK;
  const odd = k % 2 === 1;
  return [
    `mkdir d${k}`,
    `put d${k}/big.bin`,
    `put d${k}/small.txt`,
    `ln links/l${k} -> d${k}/big.bin`,
    `mv d${k}/big.bin moved/big${k}.bin`,
    `put --overwrite moved/big${k}.bin`,
    `rm moved/big${k}.bin`,
    `restore moved/big${k}.bin`,
    `rm --permanent -r d${k}`,
    `runTasks`,
    odd ? `rm moved/big${k}.bin` : `cp moved/big${k}.bin moved/copy${k}.bin`,
    odd ? `purge moved/big${k}.bin; gc` : `rm links/l${k}`,
  ][r]!;
}

/** Perform operation `i` (the library must be in the state after operations 0..i-1). */
export async function runCrashOp(lib: Library, space: Space, i: number): Promise<void> {
  const k = Math.floor(i / CRASH_BLOCK);
  const r = i % CRASH_BLOCK;
  const odd = k % 2 === 1;
  const itemOf = (p: string) => {
    // the newest item of that path (an overwrite leaves the older version there too)
    const it = space.trashList().filter((x) => x.originalPath === p).pop();
    if (!it) throw new Error(`crash op ${i}: no recycle item for ${p}`);
    return it;
  };
  switch (r) {
    case 0:
      space.mkdir(`d${k}`, {});
      return;
    case 1:
      space.putFile(`d${k}/big.bin`, await blobOf(lib, crashBytes(k, 0, true)), { conflict: 'ask' });
      return;
    case 2:
      space.putFile(`d${k}/small.txt`, await blobOf(lib, crashBytes(k, 2, false)), { conflict: 'ask' });
      return;
    case 3:
      space.createLink(`links/l${k}`, `d${k}/big.bin`, { conflict: 'ask' });
      return;
    case 4:
      space.move(`d${k}/big.bin`, `moved/big${k}.bin`, { conflict: 'ask' });
      return;
    case 5:
      space.putFile(`moved/big${k}.bin`, await blobOf(lib, crashBytes(k, 1, true)), { conflict: 'overwrite' });
      return;
    case 6:
      space.remove(`moved/big${k}.bin`, {});
      return;
    case 7:
      space.restore(itemOf(`moved/big${k}.bin`).id, { conflict: 'ask' });
      return;
    case 8:
      space.remove(`d${k}`, { permanent: true, recursive: true });
      return;
    case 9:
      await lib.runTasks();
      return;
    case 10:
      if (odd) space.remove(`moved/big${k}.bin`, {});
      else space.copy(`moved/big${k}.bin`, `moved/copy${k}.bin`, { conflict: 'ask' });
      return;
    case 11:
      if (odd) {
        space.purge(itemOf(`moved/big${k}.bin`).id);
        await lib.collectGarbage();
      } else space.remove(`links/l${k}`, {});
      return;
  }
}

export type CrashEntry = { kind: 'dir' } | { kind: 'file'; sha: string; size: number } | { kind: 'link'; target: string };
export interface CrashState {
  live: Map<string, CrashEntry>;
  /** Recycle items: original path -> kind and the links cascaded with it (path -> target). */
  trash: Map<string, { kind: 'file' | 'link'; entry: CrashEntry; links: Map<string, string>; path?: string }>;
}

/** The library's expected state after operations 0..n-1 (starting from `links/` and `moved/`). */
export function crashModel(n: number): CrashState {
  const s: CrashState = {
    live: new Map<string, CrashEntry>([
      ['links', { kind: 'dir' }],
      ['moved', { kind: 'dir' }],
    ]),
    trash: new Map(),
  };
  const file = (b: Buffer): CrashEntry => ({ kind: 'file', sha: sha256(b), size: b.length });
  const trashFile = (p: string) => {
    const entry = s.live.get(p)!;
    s.live.delete(p);
    const links = new Map<string, string>();
    for (const [lp, e] of s.live) if (e.kind === 'link' && e.target === p) links.set(lp, p);
    for (const lp of links.keys()) s.live.delete(lp);
    s.trash.set(p, { kind: 'file', entry, links });
  };
  for (let i = 0; i < n; i++) {
    const k = Math.floor(i / CRASH_BLOCK);
    const r = i % CRASH_BLOCK;
    const odd = k % 2 === 1;
    const big = `moved/big${k}.bin`;
    switch (r) {
      case 0:
        s.live.set(`d${k}`, { kind: 'dir' });
        break;
      case 1:
        s.live.set(`d${k}/big.bin`, file(crashBytes(k, 0, true)));
        break;
      case 2:
        s.live.set(`d${k}/small.txt`, file(crashBytes(k, 2, false)));
        break;
      case 3:
        s.live.set(`links/l${k}`, { kind: 'link', target: `d${k}/big.bin` });
        break;
      case 4: {
        const from = `d${k}/big.bin`;
        s.live.set(big, s.live.get(from)!);
        s.live.delete(from);
        for (const e of s.live.values()) if (e.kind === 'link' && e.target === from) e.target = big;
        break;
      }
      case 5:
        // T1: the overwritten version goes to the bin (no links: they stay with the live file)
        s.trash.set(`${big}@old`, { kind: 'file', entry: s.live.get(big)!, links: new Map(), path: big });
        s.live.set(big, file(crashBytes(k, 1, true)));
        break;
      case 6:
        trashFile(big);
        break;
      case 7: {
        const it = s.trash.get(big)!;
        s.trash.delete(big);
        s.live.set(big, it.entry);
        for (const [lp, target] of it.links) s.live.set(lp, { kind: 'link', target });
        break;
      }
      case 8:
        for (const p of [...s.live.keys()]) if (p === `d${k}` || p.startsWith(`d${k}/`)) s.live.delete(p);
        break;
      case 9:
        break;
      case 10:
        if (odd) trashFile(big);
        else s.live.set(`moved/copy${k}.bin`, { ...(s.live.get(big) as CrashEntry) });
        break;
      case 11:
        if (odd) s.trash.delete(big);
        else {
          const e = s.live.get(`links/l${k}`)!;
          s.live.delete(`links/l${k}`);
          s.trash.set(`links/l${k}`, { kind: 'link', entry: e, links: new Map() });
        }
        break;
    }
  }
  return s;
}

/** A comparable rendering of a crash state (live tree + recycle items). */
export function renderCrashState(s: CrashState): string[] {
  const out: string[] = [];
  for (const [p, e] of s.live) {
    out.push(
      e.kind === 'dir' ? `live ${p}/` : e.kind === 'file' ? `live ${p} = ${e.sha} (${e.size})` : `live ${p} -> ${e.target}`,
    );
  }
  for (const [p, it] of s.trash) {
    out.push(`trash ${it.kind} ${it.path ?? p} links=[${[...it.links.keys()].sort().join(',')}]`);
  }
  return out.sort();
}

/** The same rendering, read from a library. */
export function observeCrashState(space: Space): string[] {
  const out: string[] = [];
  for (const [p, info] of walk(space)) {
    if (info.kind === 'dir') out.push(`live ${p}/`);
    else if (info.kind === 'file') out.push(`live ${p} = ${info.blob} (${info.size})`);
    else if (info.kind === 'link') {
      const l = space.stat(p, { follow: false }).link;
      out.push(`live ${p} -> ${l?.flavour === 'bound' ? l.targetPath : `path:${l?.stored}`}`);
    } else out.push(`live ${p} ?${info.kind}`);
  }
  for (const it of space.trashList()) {
    out.push(`trash ${it.kind} ${it.originalPath} links=[${it.links.map((l) => l.originalPath).sort().join(',')}]`);
  }
  return out.sort();
}
