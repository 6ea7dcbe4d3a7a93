/**
 * The library's row primitives (src/store/rows.ts) as prepared PostgreSQL statements, made once
 * per connection (each is prepared on the server at its first use, again after a reconnect).
 * What differs from SQLite: RETURNING id instead of lastInsertRowid, ON CONFLICT DO NOTHING
 * instead of INSERT OR IGNORE, $n placeholders, LIMIT NULL for no limit.
 */
import type { BlobRows, DoomedRow, LeaseRow, MetaRows, TaskRow, TaskRows, TokenRow, TokenRows } from '../rows.js';
import type { PgConnection } from './connection.js';

type Id = { id: number };

export function pgMetaRows(conn: PgConnection): MetaRows {
  const p = (sql: string) => conn.prepare(sql);
  const q = {
    meta: p('SELECT value FROM meta WHERE key = $1'),
    setMeta: p('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    addMeta: p('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING'),
    blobSample: p('SELECT DISTINCT blob FROM nodes WHERE blob IS NOT NULL AND blob <> $1 LIMIT $2'),
    space: p('SELECT root, trash FROM spaces WHERE name = $1'),
    spaces: p('SELECT name FROM spaces ORDER BY name'),
    insertSpace: p('INSERT INTO spaces (name, root, trash, created) VALUES ($1, $2, $3, $4)'),
    insertDir: p(`INSERT INTO nodes (space, kind, mode, atime, mtime, ctime, btime) VALUES ($1, 'dir', $2, $3, $3, $3, $3) RETURNING id`),
    blobSize: p('SELECT size, layout FROM nodes WHERE blob = $1 LIMIT 1'),
    reclaimable: p(
      `WITH RECURSIVE bin(id) AS (SELECT trash FROM spaces UNION ALL SELECT e.node FROM bin CROSS JOIN LATERAL (SELECT node FROM entries WHERE parent = bin.id OFFSET 0) e)
       SELECT coalesce(sum(size), 0) AS bytes FROM (
         SELECT n.blob, max(n.size) AS size FROM nodes n WHERE n.id IN (SELECT id FROM bin) AND n.blob IS NOT NULL AND n.blob <> $1
           AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.blob = n.blob AND m.id NOT IN (SELECT id FROM bin))
         GROUP BY n.blob) AS only_binned`,
    ),
    items: p('SELECT count(*) AS n FROM recycle_items'),
  };
  return {
    get: (key) => q.meta.get<{ value: string }>(key)?.value,
    set: (key, value) => void q.setMeta.run(key, value),
    add: (key, value) => void q.addMeta.run(key, value),
    blobSample: (except, n) => q.blobSample.all<{ blob: string }>(except, n).map((r) => r.blob),
    space: (name) => q.space.get<{ root: number; trash: number }>(name),
    spaceNames: () => q.spaces.all<{ name: string }>().map((r) => r.name),
    insertSpaceDir: (space, mode, t) => q.insertDir.get<Id>(space, mode, t)!.id,
    insertSpace: (name, root, trash, t) => void q.insertSpace.run(name, root, trash, t),
    blobSize: (blob) => q.blobSize.get<{ size: number; layout: string | null }>(blob),
    trashReclaimable: (emptyKey) =>
      conn.snapshot(() => ({ bytes: q.reclaimable.get<{ bytes: number }>(emptyKey)!.bytes, items: q.items.get<{ n: number }>()!.n })),
  };
}

export function pgBlobRows(conn: PgConnection): BlobRows {
  const p = (sql: string) => conn.prepare(sql);
  const q = {
    referenced: p('SELECT 1 AS x FROM nodes WHERE blob = $1 LIMIT 1'),
    pendingKey: p('SELECT 1 AS x FROM blob_pending WHERE key = $1 LIMIT 1'),
    pendingAll: p('SELECT id, key, owner, created, heartbeat FROM blob_pending'),
    pendingById: p('SELECT key FROM blob_pending WHERE id = $1'),
    pendingOf: p('SELECT id, key FROM blob_pending WHERE owner = $1'),
    insertPending: p('INSERT INTO blob_pending (key, owner, created, heartbeat) VALUES ($1, $2, $3, $3) RETURNING id'),
    deletePending: p('DELETE FROM blob_pending WHERE id = $1'),
    beatPending: p('UPDATE blob_pending SET heartbeat = $1 WHERE owner = $2'),
    doomed: p('SELECT key, created, owner FROM blob_doomed WHERE key = $1'),
    doomedAll: p('SELECT key, created, owner FROM blob_doomed'),
    doom: p('INSERT INTO blob_doomed (key, created, owner) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING'),
    undoom: p('DELETE FROM blob_doomed WHERE key = $1'),
    queued: p('SELECT 1 AS x FROM blob_queue WHERE key = $1'),
    enqueue: p('INSERT INTO blob_queue (key, queued) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING'),
    dequeue: p('DELETE FROM blob_queue WHERE key = $1'),
    queuePage: p('SELECT key FROM blob_queue WHERE key > $1 ORDER BY key LIMIT $2'),
    queueAny: p('SELECT 1 AS x FROM blob_queue LIMIT 1'),
    queueCount: p('SELECT count(*) AS n FROM blob_queue'),
    held: p('SELECT 1 AS x FROM blob_holds WHERE key = $1 LIMIT 1'),
    insertHold: p('INSERT INTO blob_holds (key, owner, heartbeat, created) VALUES ($1, $2, $3, $3) RETURNING id'),
    deleteHold: p('DELETE FROM blob_holds WHERE id = $1'),
    deleteHoldsOf: p('DELETE FROM blob_holds WHERE owner = $1'),
    beatHolds: p('UPDATE blob_holds SET heartbeat = $1 WHERE owner = $2'),
    ownsRows: p('SELECT 1 AS x FROM blob_holds WHERE owner = $1 UNION ALL SELECT 1 FROM blob_pending WHERE owner = $1 LIMIT 1'),
    holdOwners: p('SELECT owner, max(heartbeat) AS heartbeat FROM blob_holds GROUP BY owner'),
    // one statement for any number of owners: the list goes as one JSON array
    countHoldsOf: p('SELECT count(*) AS n FROM blob_holds WHERE owner IN (SELECT jsonb_array_elements_text($1::jsonb))'),
  };
  return {
    referenced: (key) => q.referenced.get(key) !== undefined,
    leased: (key) => q.pendingKey.get(key) !== undefined,
    leases: () => q.pendingAll.all<LeaseRow & Record<string, unknown>>(),
    leaseKey: (id) => q.pendingById.get<{ key: string }>(id)?.key,
    leasesOf: (owner) => q.pendingOf.all<{ id: number; key: string }>(owner),
    insertLease: (key, owner, t) => q.insertPending.get<Id>(key, owner, t)!.id,
    deleteLease: (id) => q.deletePending.run(id).changes > 0,
    beatLeases: (owner, t) => q.beatPending.run(t, owner).changes,
    doomed: (key) => q.doomed.get<DoomedRow & Record<string, unknown>>(key),
    doomedAll: () => q.doomedAll.all<DoomedRow & Record<string, unknown>>(),
    doom: (key, owner, t) => void q.doom.run(key, t, owner),
    undoom: (key) => void q.undoom.run(key),
    queued: (key) => q.queued.get(key) !== undefined,
    enqueue: (key, t) => void q.enqueue.run(key, t),
    dequeue: (key) => void q.dequeue.run(key),
    queuePage: (after, limit) => q.queuePage.all<{ key: string }>(after, limit).map((r) => r.key),
    queueAny: () => q.queueAny.get() !== undefined,
    queueCount: () => q.queueCount.get<{ n: number }>()!.n,
    held: (key) => q.held.get(key) !== undefined,
    insertHold: (key, owner, t) => q.insertHold.get<Id>(key, owner, t)!.id,
    deleteHold: (id) => void q.deleteHold.run(id),
    deleteHoldsOf: (owner) => q.deleteHoldsOf.run(owner).changes,
    beatHolds: (owner, t) => q.beatHolds.run(t, owner).changes,
    holdOwners: () => q.holdOwners.all<{ owner: string; heartbeat: number }>(),
    countHoldsOf: (owners) => (owners.length === 0 ? 0 : q.countHoldsOf.get<{ n: number }>(JSON.stringify(owners))!.n),
    ownsRows: (owner) => q.ownsRows.get(owner) !== undefined,
  };
}

export function pgTaskRows(conn: PgConnection): TaskRows {
  const p = (sql: string) => conn.prepare(sql);
  const q = {
    tasks: p('SELECT * FROM tasks ORDER BY id'),
    task: p('SELECT * FROM tasks WHERE id = $1'),
    claimable: p(`SELECT * FROM tasks WHERE state = 'queued' OR (state = 'running' AND (heartbeat < $1 OR owner IS NOT NULL)) ORDER BY id`),
    claim: p(`UPDATE tasks SET state = 'running', owner = $1, heartbeat = $2, updated = $2 WHERE id = $3`),
    progress: p('UPDATE tasks SET done = done + $1, heartbeat = $2, updated = $2 WHERE id = $3'),
    finish: p('UPDATE tasks SET state = $1, error = $2, updated = $3, owner = NULL WHERE id = $4'),
    insertTask: p(`INSERT INTO tasks (space, kind, state, subject, root, total, done, created, updated)
      VALUES ($1, 'purge-directory', 'queued', $2, $3, $4, 0, $5, $5) RETURNING id`),
  };
  type R = TaskRow & Record<string, unknown>;
  return {
    all: () => q.tasks.all<R>(),
    get: (id) => (Number.isSafeInteger(id) ? q.task.get<R>(id) : undefined),
    claimable: (staleUs) => q.claimable.all<R>(staleUs),
    claim: (id, owner, t) => void q.claim.run(owner, t, id),
    progress: (id, done, t) => void q.progress.run(done, t, id),
    finish: (id, state, error, t) => void q.finish.run(state, error, t, id),
    insertPurge: (space, subject, root, total, t) => q.insertTask.get<Id>(space, subject, root, total, t)!.id,
  };
}

export function pgTokenRows(conn: PgConnection): TokenRows {
  const p = (sql: string) => conn.prepare(sql);
  const q = {
    insertToken: p('INSERT INTO tokens (hash, space, grants, user_id, expires, created) VALUES ($1, $2, $3, $4, $5, $6)'),
    token: p('SELECT * FROM tokens WHERE hash = $1'),
    tokens: p('SELECT * FROM tokens ORDER BY id'),
    revokeToken: p('DELETE FROM tokens WHERE id = $1'),
    revokeTokenHash: p('DELETE FROM tokens WHERE hash = $1'),
    purgeTokens: p('DELETE FROM tokens WHERE expires < $1'),
  };
  type R = TokenRow & Record<string, unknown>;
  return {
    insert: (hash, space, grants, userId, expires, created) => void q.insertToken.run(hash, space, grants, userId, expires, created),
    byHash: (hash) => q.token.get<R>(hash),
    all: () => q.tokens.all<R>(),
    revoke: (id) => q.revokeToken.run(id).changes > 0,
    revokeHash: (hash) => q.revokeTokenHash.run(hash).changes > 0,
    purgeExpired: (now) => void q.purgeTokens.run(now),
  };
}
