/**
 * `smhfs fsck` (D4): check a library from its database and its blob store, report every
 * inconsistency, and with `repair` fix those that can be fixed without losing a byte.
 *
 * Order: the folder and the database file first (missing, empty, not SQLite, `PRAGMA
 * integrity_check`); if the database cannot be trusted nothing else is checked (a damaged
 * database is never rewritten: restoring it is the user's call). Then the library is opened as
 * every command opens it (which upgrades its schema and removes the staging folders of processes
 * that are gone: uncommitted writes, B6) and checked:
 *
 * - the tree: every entry's node and parent, the directory flag, nodes without names other than
 *   the documented kinds (space roots, recycle bins, links cascaded into the bin, directories
 *   being purged), nodes whose names lead nowhere (a cycle), every bound link's target, the shape
 *   of files and links;
 * - the recycle bin: items and their nodes, cascaded-link rows, detached links without an item,
 *   nodes in the bin that are no item;
 * - purge tasks: every directory being purged has a task that will finish it;
 * - the counters triggers keep: each space's usage (df) and each file's bound links (schema 10);
 * - blobs: every referenced key is in the store with the size the files say; keys in the store no
 *   record mentions (orphans; `smhfs gc --delete` removes them); the store's owner marker (D1);
 * - crash leftovers the library clears by itself (rows of processes that are gone, keys waiting
 *   on the deletion queue): notices, not problems.
 *
 * Repairs (one transaction): entries without a node are removed; nodes without a (valid) name
 * are put in `lost+found` at their space's root as `#<id>`; wrong directory flags are corrected;
 * bin rows whose node is gone are removed; detached links without an item go to `lost+found`;
 * directories being purged without a live task get one again; rows of dead processes are reaped;
 * an unmarked store holding this library's blobs is marked. Nothing that holds bytes is deleted:
 * orphans stay for `smhfs gc`, missing blobs and broken links are reported for a person to decide.
 *
 * Exit codes (after e2fsck): 0 clean (notices allowed), 1 problems found and all repaired,
 * 4 problems left, 8 fsck could not do its job (no library folder, store unreachable); 2 is a
 * usage error, as for every command.
 *
 * Over 600 lines because it is one pass of independent checks over SQLite's raw tables (each a
 * query and a report line); splitting it would scatter the list above over files.
 */
import { readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BlobStore } from '../blob/types.js';
import { EMPTY_BLOB_KEY } from '../blob/types.js';
import { isBlobKey } from '../blob/hash.js';
import { SparseLayout, storedBlobSize } from '../blob/sparse.js';
import { fail, isSmhError } from '../errors.js';
import { Library } from './library.js';
import { deadStagingFolders } from './owners.js';
import { DB_FILE, inspectLibraryFolder } from './sqlite/open.js';
import { claimBlobStore, inspectStoreOwner, type OwnerVerdict } from './ownership.js';
import type { PgConnection, PgValue } from './postgres/connection.js';
import { pgRecordOf } from './postgres/library.js';

export type FsckCheck =
  | 'database'
  | 'spaces'
  | 'entry-without-node'
  | 'entry-bad-parent'
  | 'entry-dir-flag'
  | 'dir-names'
  | 'nameless-node'
  | 'unreachable-node'
  | 'bound-link-target'
  | 'link-shape'
  | 'file-shape'
  | 'recycle-item'
  | 'recycle-link'
  | 'detached-link'
  | 'bin-entry'
  | 'purge-task'
  | 'space-usage'
  | 'bound-links'
  | 'blob-missing'
  | 'blob-size'
  | 'orphan-blob'
  | 'store-owner'
  | 'staging'
  | 'dead-owners'
  | 'deletion-queue';

export interface FsckFinding {
  check: FsckCheck;
  /** false: a notice — a leftover the library clears by itself, not an inconsistency. */
  problem: boolean;
  count: number;
  repaired: number;
  summary: string;
  /** Whether `--repair` fixes it. */
  repairable: boolean;
  /** Up to 20 of the affected paths, ids or keys. */
  examples: string[];
  hint?: string;
}

export interface FsckReport {
  library: string;
  libraryId: string | undefined;
  store: string;
  repair: boolean;
  /** 0 clean, 1 all problems repaired, 4 problems left. */
  exitCode: 0 | 1 | 4;
  clean: boolean;
  counts: { nodes: number; entries: number; files: number; referencedBlobs: number; storedBlobs: number; storedBytes: number };
  findings: FsckFinding[];
}

export interface FsckOptions {
  repair?: boolean;
  /** The library's blob store (the CLI decides it); undefined: the local default folder. */
  blobStore?: BlobStore;
  /** Called now and then during long phases (the store listing). */
  onProgress?: (phase: string, done: number) => void;
  /** `smhfs migrate`'s check of its copy before the switch (src/store/migrate.ts): open it although it is marked pending. */
  migrating?: boolean;
}

const MAX_EXAMPLES = 20;
const LOST_FOUND = 'lost+found';

interface NodeRow {
  id: number;
  space: string;
  kind: string;
  blob: string | null;
  etag: string | null;
  size: number;
  state: string;
  link_flavour: string | null;
  link_node: number | null;
  link_path: string | null;
  layout: string | null;
}

class Findings {
  readonly list: FsckFinding[] = [];
  add(check: FsckCheck, problem: boolean, summary: string, examples: string[], opts: { count?: number; repairable?: boolean; hint?: string } = {}): FsckFinding {
    const f: FsckFinding = {
      check,
      problem,
      count: opts.count ?? examples.length,
      repaired: 0,
      summary,
      repairable: opts.repairable ?? false,
      examples: examples.slice(0, MAX_EXAMPLES),
      ...(opts.hint !== undefined ? { hint: opts.hint } : {}),
    };
    this.list.push(f);
    return f;
  }
}

/** Run every check of the library in `dir`. Throws only when fsck cannot do its job (exit 8). */
export async function checkLibrary(dir: string, opts: FsckOptions = {}): Promise<FsckReport> {
  const repair = opts.repair === true;
  const findings = new Findings();
  const counts = { nodes: 0, entries: 0, files: 0, referencedBlobs: 0, storedBlobs: 0, storedBytes: 0 };
  const storeName = opts.blobStore?.description ?? `local:${join(dir, 'blobs')}`;
  const finish = (libraryId: string | undefined): FsckReport => {
    const left = findings.list.some((f) => f.problem && f.repaired < f.count);
    const fixed = findings.list.some((f) => f.problem && f.repaired > 0);
    const exitCode = left ? 4 : fixed ? 1 : 0;
    return { library: dir, libraryId, store: storeName, repair, exitCode, clean: exitCode === 0, counts, findings: findings.list };
  };

  // ── the folder and the database file (SQLite; a PostgreSQL library's server answers for its own storage) ──
  const onPostgres = pgRecordOf(dir) !== undefined;
  const folder = onPostgres ? { state: 'database' as const, data: [], others: [] } : inspectLibraryFolder(dir);
  if (folder.state === 'absent' || folder.state === 'not-a-folder') {
    throw fail('NotALibrary', folder.state === 'absent' ? `there is no library folder at ${dir}` : `${dir} is not a folder`, dir);
  }
  const dataNote = folder.data.length > 0 ? `; the folder holds ${folder.data.join(' and ')}` : '';
  const noRebuild =
    'smhfs never re-creates a library over existing data: restore library.db from a backup (the blobs carry no names, ' +
    'so a database cannot be rebuilt from them), or move the folder away and "smhfs init" a new one';
  if (folder.state === 'no-database' || folder.state === 'empty-database') {
    findings.add('database', true, `${DB_FILE} is ${folder.state === 'no-database' ? 'missing' : 'an empty file'}${dataNote}`, [join(dir, DB_FILE)], {
      hint: noRebuild,
    });
    return finish(undefined);
  }
  const integrity = onPostgres ? [] : checkDatabaseFile(join(dir, DB_FILE));
  if (integrity.length > 0) {
    findings.add('database', true, `${DB_FILE} cannot be trusted: ${integrity[0]}${dataNote}`, integrity, { count: integrity.length, hint: noRebuild });
    return finish(undefined);
  }

  // ── staging leftovers (removed by the open that follows, as by every command's) ──
  const staging = deadStaging(dir);
  if (staging.length > 0) {
    findings.add('staging', false, `${staging.length} staging folder(s) of processes that are gone (writes never committed, discarded as B6 says): removed`, staging);
  }

  const lib = Library.open(dir, { ...(opts.blobStore ? { blobStore: opts.blobStore } : {}), ...(opts.migrating ? { migrating: true } : {}) });
  try {
    const libraryId = lib.libraryId;
    const db: SqlDb = lib.engineKind === 'sqlite' ? lib.db : pgSqlDb(lib.postgres!.conn);
    const all = <T>(sql: string, ...params: unknown[]): T[] => db.prepare(sql).all(...params) as T[];
    const one = <T>(sql: string, ...params: unknown[]): T => db.prepare(sql).get(...params) as T;
    counts.nodes = one<{ n: number }>('SELECT count(*) AS n FROM nodes').n;
    counts.entries = one<{ n: number }>('SELECT count(*) AS n FROM entries').n;
    counts.files = one<{ n: number }>("SELECT count(*) AS n FROM nodes WHERE kind = 'file'").n;
    const describe = (id: number, space?: string): string => {
      try {
        const sp = space ?? one<{ space: string } | undefined>('SELECT space FROM nodes WHERE id = ?', id)?.space;
        if (sp === undefined) return `node ${id}`;
        const p = lib.space(sp).statNode(id).path;
        return `${sp === '-' ? '' : `${sp}:`}${p === '' ? '/' : p} (node ${id})`;
      } catch {
        return `node ${id}`;
      }
    };

    const repairs: Array<() => void> = [];
    const lostFound = new LostAndFound(db);

    // spaces
    const spaces = all<{ name: string; root: number; trash: number }>('SELECT name, root, trash FROM spaces');
    const badSpaces = spaces.filter(
      (s) => !isDir(one<NodeRow | undefined>('SELECT * FROM nodes WHERE id = ?', s.root)) || !isDir(one<NodeRow | undefined>('SELECT * FROM nodes WHERE id = ?', s.trash)),
    );
    if (badSpaces.length > 0) findings.add('spaces', true, `${badSpaces.length} space(s) whose root or recycle-bin directory is missing`, badSpaces.map((s) => s.name));
    const rootIds = new Set(spaces.flatMap((s) => [s.root, s.trash]));

    // entries
    const noNode = all<{ parent: number; name: string; node: number }>('SELECT e.parent, e.name, e.node FROM entries e LEFT JOIN nodes n ON n.id = e.node WHERE n.id IS NULL');
    if (noNode.length > 0) {
      const f = findings.add('entry-without-node', true, `${noNode.length} name(s) pointing at no node`, noNode.map((e) => `'${e.name}' in directory node ${e.parent} -> node ${e.node}`), {
        repairable: true,
      });
      if (repair) repairs.push(() => {
        for (const e of noNode) db.prepare('DELETE FROM entries WHERE node = ?').run(e.node);
        f.repaired = noNode.length;
      });
    }
    const badParent = all<{ node: number; name: string; parent: number; space: string }>(
      `SELECT e.node, e.name, e.parent, n.space FROM entries e JOIN nodes n ON n.id = e.node LEFT JOIN nodes p ON p.id = e.parent
       WHERE p.id IS NULL OR p.kind != 'dir' OR p.space != n.space`,
    );
    if (badParent.length > 0) {
      const f = findings.add('entry-bad-parent', true, `${badParent.length} name(s) in a directory that is missing, not a directory, or of another space`, badParent.map((e) => `'${e.name}' (node ${e.node}) in node ${e.parent}`), {
        hint: `--repair moves them into ${LOST_FOUND}`,
        repairable: true,
      });
      if (repair) repairs.push(() => {
        for (const e of badParent) {
          // a node with a good name elsewhere (hard links, L17) only loses the bad one: nothing is lost
          const good = db
            .prepare("SELECT count(*) AS n FROM entries x JOIN nodes p ON p.id = x.parent WHERE x.node = ? AND p.kind = 'dir' AND p.space = ?")
            .get(e.node, e.space) as { n: number };
          if (good.n > 0) db.prepare('DELETE FROM entries WHERE parent = ? AND name = ?').run(e.parent, e.name);
          else lostFound.attach(e.space, e.node, spaces);
        }
        f.repaired = badParent.length;
      });
    }
    const badFlag = all<{ node: number }>("SELECT e.node FROM entries e JOIN nodes n ON n.id = e.node WHERE e.is_dir != (CASE WHEN n.kind = 'dir' THEN 1 ELSE 0 END)");
    if (badFlag.length > 0) {
      const f = findings.add('entry-dir-flag', true, `${badFlag.length} name(s) whose directory flag disagrees with their node`, badFlag.map((e) => describe(e.node)), {
        repairable: true,
      });
      if (repair) repairs.push(() => {
        db.prepare(
          "UPDATE entries SET is_dir = (SELECT CASE WHEN kind = 'dir' THEN 1 ELSE 0 END FROM nodes WHERE id = entries.node) WHERE node IN (SELECT e.node FROM entries e JOIN nodes n ON n.id = e.node WHERE e.is_dir != (CASE WHEN n.kind = 'dir' THEN 1 ELSE 0 END))",
        ).run();
        f.repaired = badFlag.length;
      });
    }

    // L17: any node but a directory may have several names
    const dirNames = all<{ node: number; n: number }>(
      "SELECT e.node, count(*) AS n FROM entries e JOIN nodes d ON d.id = e.node WHERE d.kind = 'dir' GROUP BY e.node HAVING count(*) > 1",
    );
    if (dirNames.length > 0) {
      findings.add('dir-names', true, `${dirNames.length} director(ies) with more than one name (a directory has one, L17)`, dirNames.map((d) => `${describe(d.node)}: ${d.n} names`), {
        hint: 'not repaired automatically: remove the extra names with the store API (rename or unlink of one name), or restore a backup',
      });
    }

    // nodes without names; names that lead nowhere
    const nameless = all<NodeRow>(
      `SELECT n.* FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.node = n.id) AND n.state != 'purging'
       AND NOT (n.state = 'detached' AND EXISTS (SELECT 1 FROM recycle_links r WHERE r.node = n.id))`,
    ).filter((n) => !rootIds.has(n.id));
    if (nameless.length > 0) {
      const f = findings.add('nameless-node', true, `${nameless.length} node(s) without a name (lost: no path leads to them)`, nameless.map((n) => `node ${n.id} (${n.kind}${n.blob ? `, ${n.size} bytes` : ''})`), {
        hint: `--repair puts them in ${LOST_FOUND} at the root of their space`,
        repairable: true,
      });
      if (repair) repairs.push(() => {
        for (const n of nameless) lostFound.attach(n.space, n.id, spaces);
        f.repaired = nameless.length;
      });
    }
    const reachable = new Set(
      all<{ id: number }>(
        `WITH RECURSIVE r(id) AS (SELECT root FROM spaces UNION SELECT trash FROM spaces UNION SELECT id FROM nodes WHERE state = 'purging'
           UNION SELECT e.node FROM entries e JOIN r ON e.parent = r.id) SELECT id FROM r`,
      ).map((r) => r.id),
    );
    const badParentIds = new Set(badParent.map((e) => e.node));
    const unreachable = all<{ node: number }>('SELECT node FROM entries').filter((e) => !reachable.has(e.node) && !badParentIds.has(e.node));
    // Below a name already reported (a bad parent) everything is unreachable too: report the tops only.
    const cyclic = unreachable.filter((e) => {
      const parent = one<{ parent: number } | undefined>('SELECT parent FROM entries WHERE node = ?', e.node)?.parent;
      return parent === undefined || !badParentIds.has(parent);
    });
    if (cyclic.length > 0) {
      findings.add('unreachable-node', true, `${cyclic.length} named node(s) no path from a root reaches (a directory cycle)`, cyclic.map((e) => `node ${e.node}`), {
        hint: 'not repaired automatically: move one directory of the cycle elsewhere with the store API, or restore a backup',
      });
    }

    // links and files
    const badBound = all<{ id: number; space: string; link_node: number; target_kind: string | null }>(
      `SELECT l.id, l.space, l.link_node, t.kind AS target_kind FROM nodes l LEFT JOIN nodes t ON t.id = l.link_node
       WHERE l.kind = 'link' AND l.link_flavour = 'bound' AND (t.id IS NULL OR t.kind != 'file')`,
    );
    if (badBound.length > 0) {
      findings.add('bound-link-target', true, `${badBound.length} bound link(s) whose target is ${badBound.some((b) => b.target_kind === null) ? 'gone' : 'not a file'}`, badBound.map((b) => `${describe(b.id, b.space)} -> node ${b.link_node}${b.target_kind ? ` (a ${b.target_kind})` : ' (missing)'}`), {
        hint: 'not repaired (it would lose the link): delete such links with "smhfs rm"',
      });
    }
    const badLinks = all<{ id: number; space: string }>(
      `SELECT id, space FROM nodes WHERE kind = 'link' AND (link_flavour IS NULL OR (link_flavour = 'bound' AND link_node IS NULL)
       OR (link_flavour = 'path' AND (link_path IS NULL OR link_path = '')))`,
    );
    if (badLinks.length > 0) findings.add('link-shape', true, `${badLinks.length} link(s) with no flavour or no target`, badLinks.map((l) => describe(l.id, l.space)));
    const badFiles = all<NodeRow>("SELECT * FROM nodes WHERE kind = 'file' AND (blob IS NULL OR etag IS NULL OR size < 0)").concat(
      all<NodeRow>("SELECT * FROM nodes WHERE kind = 'file' AND blob IS NOT NULL").filter(
        (n) => !isBlobKey(n.blob!) || (n.blob === EMPTY_BLOB_KEY && n.size !== 0) || (n.layout !== null && !layoutFits(n.layout, n.size)),
      ),
    );
    if (badFiles.length > 0) findings.add('file-shape', true, `${badFiles.length} file(s) without a well-formed content record`, badFiles.map((n) => describe(n.id, n.space)));

    // recycle bin
    const itemNoNode = all<{ id: number; original_path: string }>('SELECT r.id, r.original_path FROM recycle_items r LEFT JOIN nodes n ON n.id = r.node WHERE n.id IS NULL');
    const itemMisplaced = all<{ id: number; original_path: string }>(
      `SELECT r.id, r.original_path FROM recycle_items r JOIN nodes n ON n.id = r.node JOIN spaces s ON s.name = r.space
       LEFT JOIN entries e ON e.node = r.node WHERE e.parent IS NULL OR e.parent != s.trash`,
    );
    if (itemNoNode.length + itemMisplaced.length > 0) {
      const f = findings.add(
        'recycle-item',
        true,
        `${itemNoNode.length + itemMisplaced.length} recycle-bin item(s) whose node is gone or not in the bin`,
        [...itemNoNode.map((i) => `item ${i.id} (${i.original_path}): node gone`), ...itemMisplaced.map((i) => `item ${i.id} (${i.original_path}): node not in the bin`)],
        { hint: '--repair removes items whose node is gone (nothing is left to restore); misplaced ones are left for a person', repairable: itemMisplaced.length === 0 },
      );
      if (repair && itemNoNode.length > 0) repairs.push(() => {
        for (const i of itemNoNode) {
          db.prepare('DELETE FROM recycle_links WHERE item = ?').run(i.id);
          db.prepare('DELETE FROM recycle_items WHERE id = ?').run(i.id);
        }
        f.repaired = itemNoNode.length;
      });
    }
    const linkRows = all<{ item: number; node: number }>(
      `SELECT l.item, l.node FROM recycle_links l WHERE NOT EXISTS (SELECT 1 FROM recycle_items i WHERE i.id = l.item)
       OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = l.node)`,
    ).filter((r) => !itemNoNode.some((i) => i.id === r.item));
    if (linkRows.length > 0) {
      const f = findings.add('recycle-link', true, `${linkRows.length} cascaded-link record(s) whose item or link is gone`, linkRows.map((r) => `item ${r.item}, link node ${r.node}`), {
        repairable: true,
      });
      if (repair) repairs.push(() => {
        for (const r of linkRows) db.prepare('DELETE FROM recycle_links WHERE item = ? AND node = ?').run(r.item, r.node);
        f.repaired = linkRows.length;
      });
    }
    const detached = all<NodeRow>(
      `SELECT n.* FROM nodes n WHERE n.state = 'detached' AND NOT EXISTS (SELECT 1 FROM recycle_links l JOIN recycle_items i ON i.id = l.item WHERE l.node = n.id)`,
    ).filter((n) => !linkRows.some((r) => r.node === n.id));
    if (detached.length > 0) {
      const f = findings.add('detached-link', true, `${detached.length} link(s) marked as in the bin with no item to restore them with`, detached.map((n) => `node ${n.id}`), {
        hint: `--repair puts them in ${LOST_FOUND}`,
        repairable: true,
      });
      if (repair) repairs.push(() => {
        for (const n of detached) {
          db.prepare("UPDATE nodes SET state = 'live' WHERE id = ?").run(n.id);
          lostFound.attach(n.space, n.id, spaces);
        }
        f.repaired = detached.length;
      });
    }

    const strays = all<NodeRow>(
      `SELECT n.* FROM entries e JOIN spaces s ON e.parent = s.trash JOIN nodes n ON n.id = e.node
       WHERE NOT EXISTS (SELECT 1 FROM recycle_items i WHERE i.node = n.id) AND n.state != 'detached'`,
    );
    if (strays.length > 0) {
      const f = findings.add('bin-entry', true, `${strays.length} node(s) in the recycle bin that are no item (nothing can restore or purge them)`, strays.map((n) => `node ${n.id} (${n.kind})`), {
        hint: `--repair puts them in ${LOST_FOUND}`,
        repairable: true,
      });
      if (repair) repairs.push(() => {
        for (const n of strays) lostFound.attach(n.space, n.id, spaces);
        f.repaired = strays.length;
      });
    }

    // purge tasks (L15)
    const orphanPurges = all<NodeRow>(
      `SELECT n.* FROM nodes n WHERE n.state = 'purging' AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.root = n.id AND t.state IN ('queued', 'running'))`,
    );
    if (orphanPurges.length > 0) {
      const f = findings.add('purge-task', true, `${orphanPurges.length} directory purge(s) that no task will finish`, orphanPurges.map((n) => `node ${n.id}`), {
        hint: '--repair queues the purge again (the user asked for it; the directory is already out of sight)',
        repairable: true,
      });
      if (repair) repairs.push(() => {
        const t = Date.now() * 1000;
        for (const n of orphanPurges) {
          const failed = one<{ id: number } | undefined>("SELECT id FROM tasks WHERE root = ? AND state = 'failed' ORDER BY id DESC LIMIT 1", n.id);
          if (failed) db.prepare("UPDATE tasks SET state = 'queued', error = NULL, owner = NULL, updated = ? WHERE id = ?").run(t, failed.id);
          else {
            db.prepare(`INSERT INTO tasks (space, kind, state, subject, root, total, done, created, updated) VALUES (?, 'purge-directory', 'queued', ?, ?, 1, 0, ?, ?)`).run(
              n.space,
              `(fsck) node ${n.id}`,
              n.id,
              t,
              t,
            );
          }
        }
        f.repaired = orphanPurges.length;
      });
    }

    // statfs counters (schema 4, kept by triggers): each space's must equal what its nodes add up to
    const counted = new Map(
      all<{ space: string; n: number; b: number }>('SELECT space, count(*) AS n, coalesce(sum(size), 0) AS b FROM nodes GROUP BY space').map((r) => [r.space, r]),
    );
    const usage = new Map(all<{ space: string; nodes: number; bytes: number }>('SELECT space, nodes, bytes FROM space_usage').map((r) => [r.space, r]));
    const usageOff: string[] = [];
    for (const sp of new Set([...counted.keys(), ...usage.keys()])) {
      const c = counted.get(sp) ?? { n: 0, b: 0 };
      const r = usage.get(sp) ?? { nodes: 0, bytes: 0 };
      if (c.n !== r.nodes || c.b !== r.bytes) usageOff.push(`space ${sp}: recorded ${r.nodes} nodes, ${r.bytes} bytes; counted ${c.n} nodes, ${c.b} bytes`);
    }
    if (usageOff.length > 0) {
      const f = findings.add('space-usage', true, `${usageOff.length} space(s) whose usage counters (df) disagree with their nodes`, usageOff, {
        hint: '--repair counts them again from the nodes',
        repairable: true,
      });
      if (repair) repairs.push(() => {
        // PostgreSQL keeps totals plus per-transaction deltas (its migration 4): both are rewritten.
        const table = lib.engineKind === 'sqlite' ? 'space_usage' : 'space_usage_base';
        if (lib.engineKind !== 'sqlite') db.prepare('DELETE FROM space_usage_delta').run();
        db.prepare(`DELETE FROM ${table}`).run();
        db.prepare(`INSERT INTO ${table} (space, nodes, bytes) SELECT space, count(*), coalesce(sum(size), 0) FROM nodes GROUP BY space`).run();
        f.repaired = usageOff.length;
      });
    }

    // bound-link counters (schema 10, kept by triggers): each file's must equal its bound links
    const boundOff = boundLinkCounterErrors(all);
    if (boundOff.length > 0) {
      const f = findings.add('bound-links', true, `${boundOff.length} file(s) whose bound-link counter disagrees with their links`, boundOff, {
        hint: '--repair counts them again from the links',
        repairable: true,
      });
      if (repair) repairs.push(() => {
        db.prepare('DELETE FROM bound_links').run();
        db.prepare(
          "INSERT INTO bound_links (target, n) SELECT link_node, count(*) FROM nodes WHERE link_flavour = 'bound' AND link_node IS NOT NULL GROUP BY link_node",
        ).run();
        f.repaired = boundOff.length;
      });
    }

    // crash leftovers: rows of processes that are gone, keys waiting for deletion
    const dead = lib.reapDeadOwners({ dryRun: true });
    const deadTotal = dead.holds + dead.leases + dead.doomed;
    if (deadTotal > 0) {
      const f = findings.add(
        'dead-owners',
        false,
        `rows of processes that are gone: ${dead.holds} blob hold(s), ${dead.leases} upload lease(s), ${dead.doomed} interrupted deletion(s)`,
        [],
        { count: deadTotal, hint: 'cleared by the next collection (any mount or serve, "smhfs gc --delete", or fsck --repair)', repairable: true },
      );
      if (repair) repairs.push(() => {
        const r = lib.reapDeadOwners();
        f.repaired = r.holds + r.leases + r.doomed;
      });
    }

    // blobs: what the records reference vs what the store holds
    const referenced = new Map<string, { size: number; nodes: number[] }>();
    const sizeConflicts: string[] = [];
    for (const row of all<{ blob: string; size: number; layout: string | null; id: number }>(
      `SELECT blob, size, layout, id FROM nodes WHERE kind = 'file' AND blob IS NOT NULL AND blob != ?`,
      EMPTY_BLOB_KEY,
    )) {
      // A sparse file's blob is its container (D8): its size is the container's, not the file's.
      const r = { blob: row.blob, id: row.id, size: row.layout !== null && layoutFits(row.layout, row.size) ? storedBlobSize(row) : row.size };
      const cur = referenced.get(r.blob);
      if (!cur) referenced.set(r.blob, { size: r.size, nodes: [r.id] });
      else {
        if (cur.size !== r.size && cur.nodes.length < 3) sizeConflicts.push(`${r.blob}: node ${cur.nodes[0]} says ${cur.size} bytes, node ${r.id} says ${r.size}`);
        cur.nodes.push(r.id);
      }
    }
    counts.referencedBlobs = referenced.size;
    const recorded = new Set<string>();
    for (const sql of ['SELECT key FROM blob_pending', 'SELECT key FROM blob_holds', 'SELECT key FROM blob_queue', 'SELECT key FROM blob_doomed']) {
      for (const r of all<{ key: string }>(sql)) recorded.add(r.key);
    }
    const stored = new Map<string, number>();
    const orphans: Array<{ key: string; size: number }> = [];
    let listed = 0;
    for await (const b of lib.blobs.list()) {
      stored.set(b.key, b.size);
      counts.storedBytes += b.size;
      if (!referenced.has(b.key) && !recorded.has(b.key)) orphans.push({ key: b.key, size: b.size });
      if (++listed % 1000 === 0) opts.onProgress?.('listing the blob store', listed);
    }
    opts.onProgress?.('listing the blob store', listed);
    counts.storedBlobs = stored.size;
    const missing: string[] = [];
    const wrongSize: string[] = [];
    for (const [key, ref] of referenced) {
      const size = stored.get(key);
      if (size === undefined) missing.push(`${describe(ref.nodes[0]!)}${ref.nodes.length > 1 ? ` and ${ref.nodes.length - 1} more` : ''}: ${key}`);
      else if (size !== ref.size) wrongSize.push(`${describe(ref.nodes[0]!)}: ${key} is ${size} bytes in the store, ${ref.size} in the library`);
    }
    if (missing.length > 0) {
      findings.add('blob-missing', true, `${missing.length} blob(s) the library references are not in ${lib.blobs.description}`, missing, {
        hint: 'the bytes of these files are gone from the store: copy them back from a backup of the store (the key is the SHA-256 of the content)',
      });
    }
    if (wrongSize.length + sizeConflicts.length > 0) {
      findings.add('blob-size', true, `${wrongSize.length + sizeConflicts.length} blob(s) whose size disagrees with the library`, [...wrongSize, ...sizeConflicts], {
        hint: 'the store holds other bytes than the key promises: restore them from a backup',
      });
    }
    if (orphans.length > 0) {
      const bytes = orphans.reduce((a, o) => a + o.size, 0);
      findings.add('orphan-blob', true, `${orphans.length} blob(s), ${bytes} bytes, in the store that no record of the library mentions (orphans)`, orphans.map((o) => `${o.key} (${o.size} bytes)`), {
        hint: '"smhfs gc" lists them, "smhfs gc --delete" deletes those older than its grace period',
      });
    }
    const queued = lib.queuedBlobCount();
    if (queued > 0) {
      findings.add('deletion-queue', false, `${queued} blob(s) waiting on the deletion queue (their last reference is gone; held by a reader, or not collected yet)`, [], {
        count: queued,
        hint: 'collected by the next collection (any mount or serve, "smhfs gc --delete")',
      });
    }

    // the owner marker (D1)
    const verdict: OwnerVerdict = await inspectStoreOwner(lib.blobs, libraryId, { referenced: [...referenced.keys()].slice(0, 16), isNew: false });
    if (verdict.state === 'claimable' || verdict.state === 'adoptable') {
      const f = findings.add('store-owner', false, `${lib.blobs.description} has no owner marker yet (a library from before markers)`, [], {
        count: 1,
        hint: 'written by the next command that opens the library, or by fsck --repair',
        repairable: true,
      });
      if (repair) {
        await claimBlobStore(lib.blobs, libraryId, { referenced: [...referenced.keys()].slice(0, 16), isNew: false });
        f.repaired = 1;
      }
    } else if (verdict.state === 'other' || verdict.state === 'unreadable' || verdict.state === 'occupied') {
      const why =
        verdict.state === 'other'
          ? `belongs to library ${verdict.owner}, not to this one (${libraryId})`
          : verdict.state === 'unreadable'
            ? 'has an owner marker smhfs cannot read'
            : `has no owner marker and ${verdict.why}`;
      findings.add('store-owner', true, `${lib.blobs.description} ${why}`, [], {
        count: 1,
        hint: 'every command refuses this store; point the library at its own store with "smhfs blobs set"',
      });
    }

    if (repairs.length > 0) lib.transaction(() => repairs.forEach((r) => r()));
    return finish(libraryId);
  } finally {
    lib.close();
  }
}

function isDir(n: NodeRow | undefined): boolean {
  return n !== undefined && n.kind === 'dir';
}

/**
 * PRAGMA integrity_check of the database file, opened without changing it: [] when sound, else
 * what is wrong (also when it is not an SQLite database at all, or not an smhfs library).
 */
function checkDatabaseFile(path: string): string[] {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    db.pragma('busy_timeout = 10000');
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (problems.length > 0) return problems;
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
    if (tables.length === 0) return ['an empty database (no tables)'];
    if (!tables.some((t) => t.name === 'nodes') || !tables.some((t) => t.name === 'entries')) return ['an SQLite database, but not an smhfs library'];
    return [];
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB') return ['not an SQLite database'];
    if (code.startsWith('SQLITE_CORRUPT')) return [`damaged: ${(e as Error).message}`];
    if (isSmhError(e)) throw e;
    throw fail('LibraryReadOnly', `cannot read ${path}: ${(e as Error).message}`, path);
  } finally {
    db?.close();
  }
}

/** Staging folders of processes that are gone, described for the report. */
function deadStaging(dir: string): string[] {
  return deadStagingFolders(dir).map((name) => {
    let files = 0;
    try {
      files = readdirSync(join(dir, 'staging', name)).length;
    } catch {
      /* raced */
    }
    return `staging/${name} (${files} file${files === 1 ? '' : 's'}, process ${name.split('-')[0]} on ${hostname()} is gone)`;
  });
}

/**
 * The statements fsck runs, on either engine: better-sqlite3's `prepare`, or the same SQL (`?`
 * placeholders, portable SQL) over the PostgreSQL connection, inside the library's transaction
 * when a repair runs in one.
 */
interface SqlDb {
  prepare(sql: string): { all(...params: unknown[]): unknown[]; get(...params: unknown[]): unknown; run(...params: unknown[]): unknown };
}

function pgSqlDb(conn: PgConnection): SqlDb {
  return {
    prepare(sql) {
      let i = 0;
      const text = sql.replace(/\?/g, () => `$${++i}`);
      const rows = (params: unknown[]) => conn.query(text, params as PgValue[]);
      return { all: (...p) => rows(p), get: (...p) => rows(p)[0], run: (...p) => void rows(p) };
    },
  };
}

/** `lost+found` at a space's root, made on first use; lost nodes go in as `#<id>`. */
class LostAndFound {
  readonly #dirs = new Map<string, number>();
  constructor(private readonly db: SqlDb) {}

  attach(space: string, node: number, spaces: Array<{ name: string; root: number }>): void {
    const dir = this.#dir(space, spaces);
    const kind = (this.db.prepare('SELECT kind FROM nodes WHERE id = ?').get(node) as { kind: string }).kind;
    this.db.prepare('DELETE FROM entries WHERE node = ?').run(node);
    this.db.prepare('INSERT INTO entries (parent, name, node, is_dir) VALUES (?, ?, ?, ?)').run(dir, `#${node}`, node, kind === 'dir' ? 1 : 0);
  }

  #dir(space: string, spaces: Array<{ name: string; root: number }>): number {
    const known = this.#dirs.get(space);
    if (known !== undefined) return known;
    const root = spaces.find((s) => s.name === space)?.root;
    if (root === undefined) throw fail('Internal', `fsck: no space '${space}' to put lost nodes in`);
    let name = LOST_FOUND;
    for (let n = 1; ; n++) {
      const e = this.db.prepare('SELECT n.id, n.kind FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? AND e.name = ?').get(root, name) as
        | { id: number; kind: string }
        | undefined;
      if (!e) break;
      if (e.kind === 'dir') {
        this.#dirs.set(space, e.id);
        return e.id;
      }
      name = `${LOST_FOUND} (${n})`;
    }
    const t = Date.now() * 1000;
    const id = Number(
      (
        this.db.prepare(`INSERT INTO nodes (space, kind, mode, atime, mtime, ctime, btime) VALUES (?, 'dir', ?, ?, ?, ?, ?) RETURNING id`).get(space, 0o040700, t, t, t, t) as {
          id: number;
        }
      ).id,
    );
    this.db.prepare('INSERT INTO entries (parent, name, node, is_dir) VALUES (?, ?, ?, 1)').run(root, name, id);
    this.#dirs.set(space, id);
    return id;
  }
}

/** A sparse file's layout (D8) is well-formed and describes a file of `size` bytes. */
function layoutFits(layout: string, size: number): boolean {
  try {
    return SparseLayout.parse(layout).size === size;
  } catch {
    return false;
  }
}

/**
 * Migration 10's counters against the links they count: one line per target whose recorded
 * number differs from its bound links (a zero row equals no row). Exported for the tests.
 */
export function boundLinkCounterErrors(all: <T>(sql: string, ...params: unknown[]) => T[]): string[] {
  const counted = new Map(
    all<{ target: number; n: number }>(
      "SELECT link_node AS target, count(*) AS n FROM nodes WHERE link_flavour = 'bound' AND link_node IS NOT NULL GROUP BY link_node",
    ).map((r) => [Number(r.target), Number(r.n)]),
  );
  const recorded = new Map(all<{ target: number; n: number }>('SELECT target, n FROM bound_links').map((r) => [Number(r.target), Number(r.n)]));
  const off: string[] = [];
  for (const target of [...new Set([...counted.keys(), ...recorded.keys()])].sort((a, b) => a - b)) {
    const c = counted.get(target) ?? 0;
    const r = recorded.get(target) ?? 0;
    if (c !== r) off.push(`node ${target}: recorded ${r} bound link(s); counted ${c}`);
  }
  return off;
}
