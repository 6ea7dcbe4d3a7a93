// Issue 15 (readdirplus on ll), without a mount: the directory cursor of src/fuse/dir-cursor.ts
// over a real store. A reply never holds more than its `size` bytes of entries (as libfuse
// encodes them), a listing resumes after the last name sent whatever was created or removed
// meanwhile (every name present throughout comes exactly once, in name order), and an offset
// keeps its meaning on its handle after a rewind. test/binding-ll-readdirplus drives the same
// through the kernel.
import t from 'tap';
import { DirCursor, type DirPageEntry } from '../src/fuse/dir-cursor.js';
import type { NodeInfo } from '../src/store/types.js';
import { openLib } from './helpers/store.js';

const exists = (space: { stat(p: string): unknown }, p: string): boolean => {
  try {
    space.stat(p);
    return true;
  } catch {
    return false;
  }
};

const entryBytes = (name: string, plus: boolean): number => ((plus ? 152 : 24) + Buffer.byteLength(name) + 7) & ~7;

t.test('issue 15: pages fit the reply, resume after the last name sent, and see each stable name once under concurrent creates and unlinks', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  const dir = space.stat('d').id;
  lib.transaction(() => {
    for (let i = 0; i < 1500; i++) space.mknod(`d/s${String(i).padStart(4, '0')}`, { mode: 0o100644 });
  });
  const hooks = {
    self: (): NodeInfo => space.statNode(dir),
    up: (): NodeInfo => space.statNode(space.root),
    listed: (): void => undefined,
  };
  let churn = 0;
  for (const plus of [true, false]) {
    for (const size of [4096, 32768]) {
      const cursor = new DirCursor();
      const got: string[] = [];
      let offset = 0;
      let replies = 0;
      for (;;) {
        const page: DirPageEntry[] = cursor.page(space, dir, offset, size, plus, hooks);
        if (page.length === 0) break;
        replies++;
        if (page.reduce((n, e) => n + entryBytes(e.name, plus), 0) > size) t.fail(`a reply over ${size} bytes`);
        got.push(...page.map((e) => e.name));
        offset = page[page.length - 1]!.next;
        // between replies, others make and remove names before, among and after the stable ones
        // (from a pool of 6 names per place: new names sorting after the cursor must run out)
        churn++;
        for (const [pre, post] of [['a', ''], ['s0', '-x'], ['t', '']] as const) {
          const made = `d/${pre}${churn % 6}${post}`;
          const gone = `d/${pre}${(churn + 3) % 6}${post}`;
          if (!exists(space, made)) space.mknod(made, { mode: 0o100644 });
          if (exists(space, gone)) space.unlink(gone);
        }
        if (replies > 1000) break;
      }
      t.same(got.slice(0, 2), ['.', '..'], `${plus ? 'readdirplus' : 'readdir'} ${size}: . and .. first`);
      const stable = got.filter((n) => /^s\d{4}$/.test(n));
      t.same(stable, Array.from({ length: 1500 }, (_, i) => `s${String(i).padStart(4, '0')}`), `${plus ? 'readdirplus' : 'readdir'} ${size}: every stable name once, in order (${replies} replies)`);
      const names = got.slice(2);
      t.same(names, [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'name order throughout');
      t.ok(replies > 1 && replies < 1000, `in several replies, and it ends (${replies})`);
      // a rewind lists again; an offset given before still resumes after its own name
      const again = cursor.page(space, dir, 0, size, plus, hooks);
      t.equal(again[0]!.name, '.', 'a rewind starts over');
      const mid = got.indexOf('s0700');
      const resumed = cursor.page(space, dir, mid + 1, size, plus, hooks);
      t.equal(resumed[0]!.name, 's0701', 'an old offset still means the name it was given for');
      t.same(cursor.page(space, dir, 1e9, size, plus, hooks), [], 'an offset never given: nothing follows');
    }
  }
});
