/**
 * The worker side of `Checkpointer` (checkpoints.ts): its own connection to library.db, and a
 * PASSIVE checkpoint each time the serving thread says one is due. It never writes a row; on
 * 'stop' it closes its connection and says so through the shared state, which the serving thread
 * waits on.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { passiveCheckpoint, type CheckpointReply, type CheckpointWorkerData } from './checkpoints.js';

if (parentPort) {
  const port = parentPort;
  const data = workerData as CheckpointWorkerData;
  const state = new Int32Array(data.state);
  const reply = (m: CheckpointReply) => port.postMessage(m);
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
  port.on('message', (m) => {
    if (m === 'checkpoint') {
      try {
        const r = passiveCheckpoint(db);
        Atomics.add(state, 1, 1);
        reply({ op: 'done', ok: true, log: r.log });
      } catch {
        reply({ op: 'done', ok: false, log: 0 });
      }
    } else if (m === 'stop') {
      db.close();
      Atomics.store(state, 0, 1);
      Atomics.notify(state, 0);
      port.close();
    }
  });
  reply({ op: 'ready' });
}
