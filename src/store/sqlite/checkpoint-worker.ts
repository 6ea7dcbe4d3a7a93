/**
 * The worker side of `Checkpointer` (checkpoints.ts): its own connection to library.db, a look at
 * the WAL-index header every tick, a PASSIVE checkpoint when `WalCheckpoints` says one is due.
 * It never writes a row; on 'stop' it closes its connection and says so through the shared state,
 * which the serving thread waits on.
 */
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { readWalProgress, WalCheckpoints, type CheckpointWorkerData } from './checkpoints.js';

if (parentPort) {
  const port = parentPort;
  const data = workerData as CheckpointWorkerData;
  const state = new Int32Array(data.state);
  let db: Database.Database;
  try {
    db = new Database(data.dbPath, { fileMustExist: true });
    // Checkpoints sync the WAL and the database in both NORMAL and FULL; NORMAL as the serving connection.
    db.pragma('synchronous = NORMAL');
    // Never a writer, so never an automatic checkpoint of its own; its close may do SQLite's last one.
    db.pragma('wal_autocheckpoint = 0');
  } catch (e) {
    // Nothing to close: a stop() waiting (or about to) must not wait for a connection never made.
    Atomics.store(state, 0, 2);
    Atomics.notify(state, 0);
    throw e;
  }
  let fd: number | undefined;
  const buf = Buffer.alloc(136);
  const progress = () => {
    if (fd === undefined) {
      try {
        fd = openSync(data.shmPath, 'r');
      } catch {
        return undefined;
      }
    }
    return readWalProgress(fd, buf);
  };
  const policy = new WalCheckpoints(db, progress, data.high);
  const timer = setInterval(() => {
    if (policy.tick()) {
      Atomics.add(state, 1, 1);
      port.postMessage({ checkpoints: policy.checkpoints, log: policy.lastLog });
    }
  }, data.tickMs);
  port.on('message', (m) => {
    if (m !== 'stop') return;
    clearInterval(timer);
    if (fd !== undefined) closeSync(fd);
    db.close();
    Atomics.store(state, 0, 1);
    Atomics.notify(state, 0);
    port.close();
  });
}
