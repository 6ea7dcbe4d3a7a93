/**
 * Numbered migrations, applied in order inside one transaction each and recorded in
 * `PRAGMA user_version`. A database whose version is higher than the last migration here was
 * written by a newer smhfs: it is refused rather than guessed at.
 *
 * Identity (`nodes`) is separate from naming (`entries`): a rename or move is one UPDATE of an
 * entry, and a bound link stores a node id, so it survives every rename of its target (L9).
 * A directory has one entry; another node may have several (hard links, L17, ordered by
 * \`entries.seq\`). A node without an entry is either a space root, a space's recycle-bin node, a link cascaded
 * into the bin (state 'detached', L12), or a directory being purged (state 'purging', L15);
 * `smhfs fsck` reports any other (src/store/fsck.ts).
 */
import type Database from 'better-sqlite3';
import { fail } from '../../errors.js';
import { secretHash } from '../secrets.js';

export const MIGRATIONS: readonly string[] = [
  // 1: the initial schema
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  CREATE TABLE nodes (
    id            INTEGER PRIMARY KEY,
    space         TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('dir','file','link','special')),
    mode          INTEGER NOT NULL,
    uid           INTEGER NOT NULL DEFAULT 0,
    gid           INTEGER NOT NULL DEFAULT 0,
    size          INTEGER NOT NULL DEFAULT 0,
    blob          TEXT,
    etag          TEXT,
    rdev          INTEGER NOT NULL DEFAULT 0,
    storage_class TEXT    NOT NULL DEFAULT 'STANDARD',
    link_flavour  TEXT CHECK (link_flavour IN ('bound','path')),
    link_node     INTEGER,
    link_path     TEXT,
    link_base     TEXT CHECK (link_base IN ('parent','space')),
    atime         INTEGER NOT NULL,
    mtime         INTEGER NOT NULL,
    ctime         INTEGER NOT NULL,
    btime         INTEGER NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'live' CHECK (state IN ('live','detached','purging'))
  );
  CREATE INDEX nodes_by_link_node ON nodes(link_node) WHERE link_node IS NOT NULL;
  CREATE INDEX nodes_by_blob ON nodes(blob) WHERE blob IS NOT NULL;

  CREATE TABLE entries (
    parent INTEGER NOT NULL,
    name   TEXT    NOT NULL,
    node   INTEGER NOT NULL UNIQUE,
    PRIMARY KEY (parent, name)
  ) WITHOUT ROWID;

  CREATE TABLE xattrs (
    node  INTEGER NOT NULL,
    name  TEXT    NOT NULL,
    value BLOB    NOT NULL,
    PRIMARY KEY (node, name)
  ) WITHOUT ROWID;

  CREATE TABLE spaces (
    name                  TEXT PRIMARY KEY,
    root                  INTEGER NOT NULL,
    trash                 INTEGER NOT NULL,
    default_storage_class TEXT NOT NULL DEFAULT 'STANDARD',
    created               INTEGER NOT NULL
  );

  CREATE TABLE recycle_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    space         TEXT    NOT NULL,
    node          INTEGER NOT NULL UNIQUE,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    original_path TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    removed_at    INTEGER NOT NULL
  );

  CREATE TABLE recycle_links (
    item          INTEGER NOT NULL,
    node          INTEGER NOT NULL UNIQUE,
    parent        INTEGER,
    name          TEXT    NOT NULL,
    original_path TEXT    NOT NULL
  );
  CREATE INDEX recycle_links_by_item ON recycle_links(item);

  CREATE TABLE tasks (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    space     TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    state     TEXT    NOT NULL CHECK (state IN ('queued','running','done','failed')),
    subject   TEXT    NOT NULL,
    root      INTEGER NOT NULL,
    total     INTEGER NOT NULL,
    done      INTEGER NOT NULL DEFAULT 0,
    error     TEXT,
    owner     TEXT,
    heartbeat INTEGER,
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL
  );

  CREATE TABLE tokens (
    token   TEXT PRIMARY KEY,
    space   TEXT NOT NULL,
    grants  TEXT NOT NULL,
    user_id TEXT,
    expires INTEGER NOT NULL,
    created INTEGER NOT NULL
  );

  -- T6: a blob being uploaded is protected from garbage collection until the commit that
  -- references it; a blob being deleted is 'doomed' so no new commit can start referencing it.
  CREATE TABLE blob_pending (
    id      INTEGER PRIMARY KEY,
    key     TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    created INTEGER NOT NULL
  );
  CREATE INDEX blob_pending_by_key ON blob_pending(key);
  CREATE TABLE blob_doomed (key TEXT PRIMARY KEY, created INTEGER NOT NULL);
  `,
  // 2: a directory's nlink (2 + subdirectories) is asked on every getattr; counting subdirectories
  // through an index on (parent, is_dir) costs O(subdirectories), not O(children) with a join.
  `
  ALTER TABLE entries ADD COLUMN is_dir INTEGER NOT NULL DEFAULT 0;
  UPDATE entries SET is_dir = 1 WHERE node IN (SELECT id FROM nodes WHERE kind = 'dir');
  CREATE INDEX entries_subdirs ON entries(parent, is_dir);
  `,
  // 3: secrets at rest are hashes: access tokens by their SHA-256 (with a numeric id for `token
  // list`/`revoke`), the library secret likewise. Neither can be read back from the file.
  `
  CREATE TABLE tokens_hashed (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    hash    TEXT    NOT NULL UNIQUE,
    space   TEXT    NOT NULL,
    grants  TEXT    NOT NULL,
    user_id TEXT,
    expires INTEGER NOT NULL,
    created INTEGER NOT NULL
  );
  INSERT INTO tokens_hashed (hash, space, grants, user_id, expires, created)
    SELECT smhfs_sha256(token), space, grants, user_id, expires, created FROM tokens ORDER BY created;
  DROP TABLE tokens;
  ALTER TABLE tokens_hashed RENAME TO tokens;
  UPDATE meta SET key = 'library_secret_sha256', value = smhfs_sha256(value) WHERE key = 'library_secret';
  `,
  // 4: statfs (every `df`) counted the whole space (44 ms at 370k entries). Per-space counters of
  // nodes and bytes, kept by triggers inside whatever transaction inserts, deletes or resizes a
  // node, so no code path can forget them and they are exact at every commit. The bin is read
  // by id and by removal time per space (paged listing, retention) instead of whole.
  `
  CREATE TABLE space_usage (
    space TEXT PRIMARY KEY,
    nodes INTEGER NOT NULL,
    bytes INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO space_usage (space, nodes, bytes) SELECT space, count(*), coalesce(sum(size), 0) FROM nodes GROUP BY space;
  CREATE TRIGGER nodes_usage_insert AFTER INSERT ON nodes BEGIN
    INSERT INTO space_usage (space, nodes, bytes) VALUES (new.space, 1, new.size)
      ON CONFLICT (space) DO UPDATE SET nodes = nodes + 1, bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER nodes_usage_delete AFTER DELETE ON nodes BEGIN
    UPDATE space_usage SET nodes = nodes - 1, bytes = bytes - old.size WHERE space = old.space;
  END;
  CREATE TRIGGER nodes_usage_update AFTER UPDATE OF size, space ON nodes
    WHEN new.size IS NOT old.size OR new.space IS NOT old.space BEGIN
    UPDATE space_usage SET nodes = nodes - 1, bytes = bytes - old.size WHERE space = old.space;
    INSERT INTO space_usage (space, nodes, bytes) VALUES (new.space, 1, new.size)
      ON CONFLICT (space) DO UPDATE SET nodes = nodes + 1, bytes = bytes + excluded.bytes;
  END;
  CREATE INDEX recycle_items_by_space ON recycle_items(space, id);
  CREATE INDEX recycle_items_by_age ON recycle_items(space, removed_at);
  `,
  // 5: data safety (D3, D7). `blob_queue` is the durable record of keys whose last reference a
  // committed transaction dropped (written in that transaction): the collector deletes only from
  // it, so a crash between commit and deletion leaks nothing. `blob_holds` are cross-process
  // holds on blobs open for reading (a CLI cat, a serve download, a mount's open file): the
  // collector never deletes a held key. Holds and upload leases carry a heartbeat; a doomed row
  // names the collector deleting it, so a dead collector's rows can be told from a live one's.
  `
  CREATE TABLE blob_queue (key TEXT PRIMARY KEY, queued INTEGER NOT NULL);
  CREATE TABLE blob_holds (
    id        INTEGER PRIMARY KEY,
    key       TEXT    NOT NULL,
    owner     TEXT    NOT NULL,
    heartbeat INTEGER NOT NULL,
    created   INTEGER NOT NULL
  );
  CREATE INDEX blob_holds_by_key ON blob_holds(key);
  CREATE INDEX blob_holds_by_owner ON blob_holds(owner);
  ALTER TABLE blob_pending ADD COLUMN heartbeat INTEGER;
  CREATE INDEX blob_pending_by_owner ON blob_pending(owner);
  ALTER TABLE blob_doomed ADD COLUMN owner TEXT;
  `,
  // 6 (D8): a sparse file's layout — the header of its container blob (src/blob/sparse.ts) — or
  // NULL for a dense file, whose blob is its bytes.
  `
  ALTER TABLE nodes ADD COLUMN layout TEXT;
  `,
  // 7 (L17–L19): hard links. A node may have several entries (names), so entries.node is no
  // longer UNIQUE; \`seq\` orders one node's names by creation (1, 2, …; a rename makes the name
  // the newest), so a bound link's readlink names the oldest surviving name (L19) and st_nlink is
  // a count over the (node, seq) index. WITHOUT ROWID tables cannot drop a constraint: the table
  // is rebuilt, every existing name being its node's first.
  `
  CREATE TABLE entries_v7 (
    parent INTEGER NOT NULL,
    name   TEXT    NOT NULL,
    node   INTEGER NOT NULL,
    is_dir INTEGER NOT NULL DEFAULT 0,
    seq    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (parent, name)
  ) WITHOUT ROWID;
  INSERT INTO entries_v7 (parent, name, node, is_dir, seq) SELECT parent, name, node, is_dir, 1 FROM entries;
  DROP TABLE entries;
  ALTER TABLE entries_v7 RENAME TO entries;
  CREATE INDEX entries_subdirs ON entries(parent, is_dir);
  CREATE UNIQUE INDEX entries_by_node ON entries(node, seq);
  `,
  // 8 (H4, issue 11): the change feed. Every write transaction records, in the same transaction,
  // what it changed (an entry's name in a directory, a node's attributes, content or readlink
  // answer, a moved subtree), numbered in commit order (AUTOINCREMENT: a number is never handed
  // out twice, even after pruning). A mount follows it to invalidate the kernel's caches
  // (src/vfs/changes.ts); what was pruned is below `changes_horizon`, and a follower behind it
  // drops every cache. Same record shape as PostgreSQL's feed (migration 1 there).
  `
  CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    origin TEXT    NOT NULL,
    space  TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    node   INTEGER,
    parent INTEGER,
    name   TEXT
  );
  CREATE TABLE changes_horizon (one INTEGER PRIMARY KEY CHECK (one = 1), pruned_to INTEGER NOT NULL);
  INSERT INTO changes_horizon (one, pruned_to) VALUES (1, 0);
  `,
  // 9 (M2, issue 11): times keep nanoseconds. A time stays integer µs (whole ns since 1970 do not
  // fit a JS number exactly); each gets the nanoseconds below its µs (0–999) beside it, so
  // atime·1000 + atime_ns is the time in ns. Only utimensat sets a non-zero remainder: the
  // store's clock is µs, and every write of a time to "now" writes 0 beside it. Existing
  // libraries migrate with 0 (what they had).
  `
  ALTER TABLE nodes ADD COLUMN atime_ns INTEGER NOT NULL DEFAULT 0 CHECK (atime_ns BETWEEN 0 AND 999);
  ALTER TABLE nodes ADD COLUMN mtime_ns INTEGER NOT NULL DEFAULT 0 CHECK (mtime_ns BETWEEN 0 AND 999);
  ALTER TABLE nodes ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0 CHECK (ctime_ns BETWEEN 0 AND 999);
  ALTER TABLE nodes ADD COLUMN btime_ns INTEGER NOT NULL DEFAULT 0 CHECK (btime_ns BETWEEN 0 AND 999);
  `,
  // 10 (issue 11): every symlink checks its target's bound links against MAX_BOUND_LINKS; counting
  // them (count(*) over nodes_by_link_node) cost O(links), so binding the 10,000th link read
  // 9,999 index entries. \`bound_links\` keeps the number per target: one row per node that has
  // bound links (none at zero), kept by triggers on nodes inside whatever transaction inserts,
  // deletes, rebinds (L10) or re-flavours a link — bind, cascade, restore, purge and retarget
  // alike — so no rule can forget it and it is exact at every commit (as migration 4's counters).
  // It counts what the old count(*) counted: every node with link_flavour 'bound' naming the
  // target, whatever its state (a link cascaded into the bin still counts). fsck checks it.
  `
  CREATE TABLE bound_links (target INTEGER PRIMARY KEY, n INTEGER NOT NULL);
  INSERT INTO bound_links (target, n)
    SELECT link_node, count(*) FROM nodes WHERE link_flavour = 'bound' AND link_node IS NOT NULL GROUP BY link_node;
  CREATE TRIGGER nodes_bound_insert AFTER INSERT ON nodes
    WHEN new.link_flavour = 'bound' AND new.link_node IS NOT NULL BEGIN
    INSERT INTO bound_links (target, n) VALUES (new.link_node, 1) ON CONFLICT (target) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER nodes_bound_delete AFTER DELETE ON nodes
    WHEN old.link_flavour = 'bound' AND old.link_node IS NOT NULL BEGIN
    UPDATE bound_links SET n = n - 1 WHERE target = old.link_node;
    DELETE FROM bound_links WHERE target = old.link_node AND n <= 0;
  END;
  CREATE TRIGGER nodes_bound_update AFTER UPDATE OF link_node, link_flavour ON nodes
    WHEN new.link_node IS NOT old.link_node OR new.link_flavour IS NOT old.link_flavour BEGIN
    UPDATE bound_links SET n = n - 1 WHERE old.link_flavour = 'bound' AND target = old.link_node;
    DELETE FROM bound_links WHERE old.link_flavour = 'bound' AND target = old.link_node AND n <= 0;
    INSERT INTO bound_links (target, n) SELECT new.link_node, 1 WHERE new.link_flavour = 'bound' AND new.link_node IS NOT NULL
      ON CONFLICT (target) DO UPDATE SET n = n + 1;
  END;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw fail(
      'SchemaTooNew',
      `library schema version ${current} is newer than this smhfs supports (${SCHEMA_VERSION}); upgrade smhfs`,
    );
  }
  // Migrations may hash secrets; registered per connection, deterministic.
  db.function('smhfs_sha256', { deterministic: true }, (v: unknown) => secretHash(String(v)));
  // Migration 3 replaces secrets with their hashes: the rows it deletes must not live on in free
  // pages or in the WAL.
  const scrub = current < 3 && SCHEMA_VERSION >= 3;
  if (scrub) db.pragma('secure_delete = ON');
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  if (scrub) {
    db.pragma('secure_delete = OFF');
    if ((db.pragma('journal_mode', { simple: true }) as string) === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  }
}
