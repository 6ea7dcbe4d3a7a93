/**
 * The library's row primitives (src/store/rows.ts) as prepared SQLite statements, made once per
 * connection.
 */
import type Database from 'better-sqlite3';
import type { BlobRows, DoomedRow, LeaseRow, MetaRows, TaskRow, TaskRows, TokenRow, TokenRows } from '../rows.js';

type Db = Database.Database;

export function sqliteMetaRows(db: Db): MetaRows {
  const p = (sql: string) => db.prepare(sql);
  const q = {
    meta: p('SELECT value FROM meta WHERE key = ?'),
    setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    addMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
    blobSample: p('SELECT DISTINCT blob FROM nodes WHERE blob IS NOT NULL AND blob != ? LIMIT ?'),
    space: p('SELECT root, trash FROM spaces WHERE name = ?'),
    spaces: p('SELECT name FROM spaces ORDER BY name'),
    insertSpace: p('INSERT INTO spaces (name, root, trash, created) VALUES (?, ?, ?, ?)'),
    insertDir: p(`INSERT INTO nodes (space, kind, mode, atime, mtime, ctime, btime) VALUES (?, 'dir', ?, ?, ?, ?, ?)`),
    blobSize: p('SELECT size, layout FROM nodes WHERE blob = ? LIMIT 1'),
  };
  return {
    get: (key) => (q.meta.get(key) as { value: string } | undefined)?.value,
    set: (key, value) => void q.setMeta.run(key, value),
    add: (key, value) => void q.addMeta.run(key, value),
    blobSample: (except, n) => (q.blobSample.all(except, n) as Array<{ blob: string }>).map((r) => r.blob),
    space: (name) => q.space.get(name) as { root: number; trash: number } | undefined,
    spaceNames: () => (q.spaces.all() as Array<{ name: string }>).map((r) => r.name),
    insertSpaceDir: (space, mode, t) => Number(q.insertDir.run(space, mode, t, t, t, t).lastInsertRowid),
    insertSpace: (name, root, trash, t) => void q.insertSpace.run(name, root, trash, t),
    blobSize: (blob) => q.blobSize.get(blob) as { size: number; layout: string | null } | undefined,
    trashReclaimable: (emptyKey) => {
      // Rarely asked (a full disk's message): prepared when asked.
      const row = db
        .prepare(
          `WITH RECURSIVE bin(id) AS (SELECT trash FROM spaces UNION ALL SELECT e.node FROM entries e JOIN bin ON e.parent = bin.id)
           SELECT coalesce(sum(size), 0) AS bytes FROM (
             SELECT n.blob, max(n.size) AS size FROM nodes n WHERE n.id IN (SELECT id FROM bin) AND n.blob IS NOT NULL AND n.blob != ?
               AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.blob = n.blob AND m.id NOT IN (SELECT id FROM bin))
             GROUP BY n.blob)`,
        )
        .get(emptyKey) as { bytes: number };
      const items = (db.prepare('SELECT count(*) AS n FROM recycle_items').get() as { n: number }).n;
      return { bytes: row.bytes, items };
    },
  };
}

export function sqliteBlobRows(db: Db): BlobRows {
  const p = (sql: string) => db.prepare(sql);
  const q = {
    referenced: p('SELECT 1 FROM nodes WHERE blob = ? LIMIT 1'),
    pendingKey: p('SELECT 1 FROM blob_pending WHERE key = ? LIMIT 1'),
    pendingAll: p('SELECT id, key, owner, created, heartbeat FROM blob_pending'),
    pendingById: p('SELECT key FROM blob_pending WHERE id = ?'),
    pendingOf: p('SELECT id, key FROM blob_pending WHERE owner = ?'),
    insertPending: p('INSERT INTO blob_pending (key, owner, created, heartbeat) VALUES (?, ?, ?, ?)'),
    deletePending: p('DELETE FROM blob_pending WHERE id = ?'),
    beatPending: p('UPDATE blob_pending SET heartbeat = ? WHERE owner = ?'),
    doomed: p('SELECT key, created, owner FROM blob_doomed WHERE key = ?'),
    doomedAll: p('SELECT key, created, owner FROM blob_doomed'),
    doom: p('INSERT OR IGNORE INTO blob_doomed (key, created, owner) VALUES (?, ?, ?)'),
    undoom: p('DELETE FROM blob_doomed WHERE key = ?'),
    queued: p('SELECT 1 FROM blob_queue WHERE key = ?'),
    enqueue: p('INSERT OR IGNORE INTO blob_queue (key, queued) VALUES (?, ?)'),
    dequeue: p('DELETE FROM blob_queue WHERE key = ?'),
    queuePage: p('SELECT key FROM blob_queue WHERE key > ? ORDER BY key LIMIT ?'),
    queueAny: p('SELECT 1 FROM blob_queue LIMIT 1'),
    queueCount: p('SELECT count(*) AS n FROM blob_queue'),
    held: p('SELECT 1 FROM blob_holds WHERE key = ? LIMIT 1'),
    insertHold: p('INSERT INTO blob_holds (key, owner, heartbeat, created) VALUES (?, ?, ?, ?)'),
    deleteHold: p('DELETE FROM blob_holds WHERE id = ?'),
    deleteHoldsOf: p('DELETE FROM blob_holds WHERE owner = ?'),
    beatHolds: p('UPDATE blob_holds SET heartbeat = ? WHERE owner = ?'),
    ownsRows: p('SELECT 1 FROM blob_holds WHERE owner = ? UNION ALL SELECT 1 FROM blob_pending WHERE owner = ? LIMIT 1'),
    holdOwners: p('SELECT owner, max(heartbeat) AS heartbeat FROM blob_holds GROUP BY owner'),
  };
  return {
    referenced: (key) => q.referenced.get(key) !== undefined,
    leased: (key) => q.pendingKey.get(key) !== undefined,
    leases: () => q.pendingAll.all() as LeaseRow[],
    leaseKey: (id) => (q.pendingById.get(id) as { key: string } | undefined)?.key,
    leasesOf: (owner) => q.pendingOf.all(owner) as Array<{ id: number; key: string }>,
    insertLease: (key, owner, t) => Number(q.insertPending.run(key, owner, t, t).lastInsertRowid),
    deleteLease: (id) => q.deletePending.run(id).changes > 0,
    beatLeases: (owner, t) => q.beatPending.run(t, owner).changes,
    doomed: (key) => q.doomed.get(key) as DoomedRow | undefined,
    doomedAll: () => q.doomedAll.all() as DoomedRow[],
    doom: (key, owner, t) => void q.doom.run(key, t, owner),
    undoom: (key) => void q.undoom.run(key),
    queued: (key) => q.queued.get(key) !== undefined,
    enqueue: (key, t) => void q.enqueue.run(key, t),
    dequeue: (key) => void q.dequeue.run(key),
    queuePage: (after, limit) => (q.queuePage.all(after, limit) as Array<{ key: string }>).map((r) => r.key),
    queueAny: () => q.queueAny.get() !== undefined,
    queueCount: () => (q.queueCount.get() as { n: number }).n,
    held: (key) => q.held.get(key) !== undefined,
    insertHold: (key, owner, t) => Number(q.insertHold.run(key, owner, t, t).lastInsertRowid),
    deleteHold: (id) => void q.deleteHold.run(id),
    deleteHoldsOf: (owner) => q.deleteHoldsOf.run(owner).changes,
    beatHolds: (owner, t) => q.beatHolds.run(t, owner).changes,
    holdOwners: () => q.holdOwners.all() as Array<{ owner: string; heartbeat: number }>,
    countHoldsOf: (owners) =>
      owners.length === 0
        ? 0
        : (db.prepare(`SELECT count(*) AS n FROM blob_holds WHERE owner IN (${owners.map(() => '?').join(',')})`).get(...owners) as { n: number }).n,
    ownsRows: (owner) => q.ownsRows.get(owner, owner) !== undefined,
  };
}

export function sqliteTaskRows(db: Db): TaskRows {
  const p = (sql: string) => db.prepare(sql);
  const q = {
    tasks: p('SELECT * FROM tasks ORDER BY id'),
    task: p('SELECT * FROM tasks WHERE id = ?'),
    claimable: p(`SELECT * FROM tasks WHERE state = 'queued' OR (state = 'running' AND (heartbeat < ? OR owner IS NOT NULL)) ORDER BY id`),
    claim: p(`UPDATE tasks SET state = 'running', owner = ?, heartbeat = ?, updated = ? WHERE id = ?`),
    progress: p('UPDATE tasks SET done = done + ?, heartbeat = ?, updated = ? WHERE id = ?'),
    finish: p('UPDATE tasks SET state = ?, error = ?, updated = ?, owner = NULL WHERE id = ?'),
    insertTask: p(`INSERT INTO tasks (space, kind, state, subject, root, total, done, created, updated)
      VALUES (?, 'purge-directory', 'queued', ?, ?, ?, 0, ?, ?)`),
  };
  return {
    all: () => q.tasks.all() as TaskRow[],
    get: (id) => q.task.get(id) as TaskRow | undefined,
    claimable: (staleUs) => q.claimable.all(staleUs) as TaskRow[],
    claim: (id, owner, t) => void q.claim.run(owner, t, t, id),
    progress: (id, done, t) => void q.progress.run(done, t, t, id),
    finish: (id, state, error, t) => void q.finish.run(state, error, t, id),
    insertPurge: (space, subject, root, total, t) => Number(q.insertTask.run(space, subject, root, total, t, t).lastInsertRowid),
  };
}

export function sqliteTokenRows(db: Db): TokenRows {
  const p = (sql: string) => db.prepare(sql);
  const q = {
    insertToken: p('INSERT INTO tokens (hash, space, grants, user_id, expires, created) VALUES (?, ?, ?, ?, ?, ?)'),
    token: p('SELECT * FROM tokens WHERE hash = ?'),
    tokens: p('SELECT * FROM tokens ORDER BY id'),
    revokeToken: p('DELETE FROM tokens WHERE id = ?'),
    revokeTokenHash: p('DELETE FROM tokens WHERE hash = ?'),
    purgeTokens: p('DELETE FROM tokens WHERE expires < ?'),
  };
  return {
    insert: (hash, space, grants, userId, expires, created) => void q.insertToken.run(hash, space, grants, userId, expires, created),
    byHash: (hash) => q.token.get(hash) as TokenRow | undefined,
    all: () => q.tokens.all() as TokenRow[],
    revoke: (id) => q.revokeToken.run(id).changes > 0,
    revokeHash: (hash) => q.revokeTokenHash.run(hash).changes > 0,
    purgeExpired: (now) => void q.purgeTokens.run(now),
  };
}
