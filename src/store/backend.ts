/**
 * What a library needs of a metadata engine (src/store/library.ts): the engine (the transaction
 * seam, src/store/engine.ts) and its row primitives. SQLite makes one in library.ts, PostgreSQL in
 * src/store/postgres/library.ts.
 */
import type Database from 'better-sqlite3';
import type { MetaEngine } from './engine.js';
import type { BlobRows, MetaRows, TaskRows, TokenRows } from './rows.js';
import type { SpaceRows } from './space-rows.js';
import type { FeedRows } from './changes.js';

export interface MetaBackend {
  engine: MetaEngine;
  meta: MetaRows;
  blobRows: BlobRows;
  taskRows: TaskRows;
  tokenRows: TokenRows;
  /** A space's rows (prepared when asked: test/helpers/sql-counter.ts counts on it). */
  spaceRows(): SpaceRows;
  /** The change feed's rows (src/store/changes.ts). */
  feedRows(): FeedRows;
  /** Periodic upkeep of the engine's own records (mount and serve: every scheduler tick; each open). */
  maintain?(): void;
  /** The SQLite database, for the SQLite engine. */
  sqlite?: Database.Database;
}
