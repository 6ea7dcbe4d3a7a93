/**
 * The engine seam (src/store/engine.ts) as the rules rely on it: work registered on a transaction
 * runs once, after the commit, and never for a transaction that rolled back; nested transactions
 * join the outer one. And the scheduler's `kick` (src/store/tasks.ts), which a server uses to run
 * purge tasks without the library's periodic maintenance.
 */
import t from 'tap';
import type { MetaTx } from '../src/store/engine.js';
import { openLib, put } from './helpers/store.js';

t.test('engine: after-commit work runs once the outer transaction commits; nested calls share its value', async (t) => {
  const { lib } = openLib(t);
  const log: string[] = [];
  let outer: MetaTx | undefined;
  lib.transaction((tx) => {
    outer = tx;
    tx.afterCommit(() => log.push('outer'));
    lib.transaction((inner) => {
      t.equal(inner, tx, 'a nested transaction joins the outer one');
      inner.afterCommit(() => log.push('inner'));
    });
    log.push('body');
  });
  t.same(log, ['body', 'outer', 'inner'], 'after the body, in registration order');
  t.equal(lib.engine.current, undefined, 'no transaction is open afterwards');

  log.length = 0;
  t.throws(() =>
    lib.transaction((tx) => {
      t.not(tx, outer, 'each transaction has its own value');
      tx.afterCommit(() => log.push('rolled back'));
      throw new Error('abort');
    }),
  );
  t.same(log, [], 'a transaction that rolled back runs none of its after-commit work');
});

t.test('T6/D3: a blob a transaction drops is collected after its commit, never when it rolls back', async (t) => {
  const { lib, space, blobs } = openLib(t);
  const placed = await put(lib, space, 'f.txt', 'bytes that go', { conflict: 'ask' });
  const key = placed.info.blob!;
  t.throws(() =>
    lib.transaction(() => {
      space.remove('f.txt', { permanent: true });
      throw new Error('abort');
    }),
  );
  await lib.idle();
  t.ok(await blobs.head(key), 'rolled back: the bytes stay');
  t.equal(lib.queuedBlobCount(), 0, 'and the key was never queued');

  space.remove('f.txt', { permanent: true });
  await lib.idle();
  t.equal(await blobs.head(key), undefined, 'committed: the bytes are collected');
  t.equal(lib.queuedBlobCount(), 0, 'and the key left the queue');
});

t.test('L15: kickTasks runs queued purge tasks without startBackground; kicks during a run join it', async (t) => {
  const { lib, space } = openLib(t);
  for (let i = 0; i < 5; i++) await put(lib, space, `dir/sub${i}/f.txt`, `file ${i}`, { conflict: 'ask', createParents: true });
  const { taskId } = space.remove('dir', { permanent: true, recursive: true });
  t.type(taskId, 'number', 'a purge task is queued');
  await new Promise((r) => setImmediate(r));
  t.equal(lib.task(taskId!).state, 'queued', 'nothing runs it on its own (no startBackground)');

  const errors: unknown[] = [];
  const first = lib.kickTasks((e) => errors.push(e));
  const second = lib.kickTasks((e) => errors.push(e));
  t.equal(first, second, 'a kick during a run joins it');
  await first;
  t.same(errors, [], 'no errors');
  const task = lib.task(taskId!);
  t.equal(task.state, 'done', 'the task ran to the end');
  t.equal(task.done, task.total, `every node purged (${task.total})`);
  await lib.kickTasks((e) => errors.push(e));
  t.same(errors, [], 'a kick with nothing queued is fine');
});
