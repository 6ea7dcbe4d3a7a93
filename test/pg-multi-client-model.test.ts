/**
 * The randomized multi-client model test of issue 13 (SPEC §11): four clients — separate
 * processes, each its own host folder and connection — issue random operations at once against
 * one PostgreSQL library and one blob folder, over a namespace small enough that they collide
 * (test/helpers/model-client.ts: create/overwrite, bound link, path link, hard link, mv, rm,
 * restore, purge). A client fails on any outcome no rule gives (Internal, a serialization failure
 * that surfaced, a lost connection). Then the final state is checked against the rules:
 *
 * - every live bound link resolves to the node it is bound to (L8/L9), and its readlink answer
 *   leads there; that node is live, or inside a directory in the bin (L14) — never itself a bin
 *   item (L12 takes the links with it); every bound link in the bin is there with its target:
 *   its node exists, and so does the item's;
 * - every bound link's node exists; names are unique per directory and every name's parent is a
 *   directory; the directory flag matches the node; a file's st_nlink is its number of names
 *   (L17); the statfs counters equal the rows (nodes and bytes per space);
 * - every file's bytes hash to its blob key, and fsck is clean.
 *
 * Seeded: SMHFS_MODEL_SEED=<n> replays a run; the seed is printed and named in every assertion.
 * A real PostgreSQL: the file fails, never skips, without one.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { checkLibrary } from '../src/store/fsck.js';
import { Library } from '../src/store/library.js';
import { librarySha256 } from './helpers/fsck.js';
import { postgresForTest } from './helpers/postgres.js';

const CLIENT = fileURLToPath(new URL('./helpers/model-client.js', import.meta.url));
const CLIENTS = 4;
const OPS = 120;
const seed = Number(process.env['SMHFS_MODEL_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
t.comment(`seed ${seed} (replay: SMHFS_MODEL_SEED=${seed})`);
const at = `[seed ${seed}]`;

const work = await mkdtemp(join(tmpdir(), 'smhfs-model-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const cluster = await postgresForTest(t);

t.test(`${CLIENTS} clients × ${OPS} random operations on one PostgreSQL library: the rules hold, fsck clean ${at}`, async (t) => {
  const { name: db, url } = await cluster.createDatabase();
  const blobsDir = join(work, 'blobs');
  const store = new LocalBlobStore(blobsDir);
  t.teardown(() => store.close?.());
  const home = join(work, 'checker');
  Library.open(home, { create: true, meta: url, blobStore: store }).close();
  const folders = Array.from({ length: CLIENTS }, (_, i) => join(work, `client-${i}`));
  for (const f of folders) Library.open(f, { create: true, meta: url, blobStore: store }).close();

  const runs = folders.map((f, i) => {
    const child = spawn(process.execPath, [CLIENT, f, blobsDir, String(seed + i * 7919), String(OPS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return once(child, 'close').then(([code]) => ({ code: code as number | null, out, err }));
  });
  const results = await Promise.all(runs);
  let ok = 0;
  for (const [i, r] of results.entries()) {
    t.equal(r.code, 0, `${at} client ${i} exits 0 ${r.err.slice(-500)}`);
    const rep = JSON.parse(r.out.trim().split('\n').pop() || '{}') as { done?: number; outcomes?: Record<string, number>; failures?: string[]; retries?: number };
    t.equal(rep.done, OPS, `${at} client ${i} ran every operation`);
    t.same(rep.failures, [], `${at} client ${i}: no outcome a rule does not give`);
    ok += rep.outcomes?.['ok'] ?? 0;
    t.comment(`client ${i}: ${JSON.stringify(rep.outcomes)}, ${rep.retries ?? 0} retries${rep.failures?.length ? `; ${rep.failures.join(" / ")}` : ""}`);
  }
  t.ok(ok > CLIENTS * OPS * 0.2, `${at} a good share of the operations succeeded (${ok}), so the state is worth checking`);

  const lib = Library.open(home, { blobStore: store });
  try {
    const space = lib.space('-');
    // Live bound links lead to a live node: the one they are bound to.
    const broken: string[] = [];
    let bound = 0;
    const names = new Map<number, number>();
    const nlinks = new Map<number, number>();
    const walk = (path: string): void => {
      for (const e of space.readdir(path)) {
        if (path === '' && e.name === '.trash') continue;
        const p = path === '' ? e.name : `${path}/${e.name}`;
        names.set(e.info.id, (names.get(e.info.id) ?? 0) + 1);
        nlinks.set(e.info.id, e.info.nlink);
        if (e.info.kind === 'dir') walk(p);
        if (e.info.kind !== 'link' || e.info.link?.flavour !== 'bound') continue;
        bound++;
        try {
          const target = space.stat(p, { follow: true });
          // L14: a target inside a directory in the bin keeps its live links; a target that is
          // itself a bin item took them with it (L12).
          if (target.inTrash && space.trashList({ limit: 10_000 }).some((item) => item.viewName === target.path.split('/')[1] && target.path.split('/').length === 2)) {
            broken.push(`${p}: its target ${target.path} is itself a bin item, yet the link is live (L12)`);
          }
          if (target.id !== e.info.link.targetNode) broken.push(`${p}: resolves to node ${target.id}, bound to ${e.info.link.targetNode}`);
          const via = e.info.link.targetPath;
          if (via === undefined || space.stat(via).id !== target.id) broken.push(`${p}: its readlink path ${via} does not lead to its target`);
        } catch (err) {
          broken.push(`${p}: ${(err as Error).message}`);
        }
      }
    };
    walk('');
    t.same(broken, [], `${at} every live bound link (${bound}) resolves to its live target`);
    const wrongNlink = [...names].filter(([id, n]) => (nlinks.get(id) ?? 0) !== n && space.statNode(id).kind === 'file');
    t.same(wrongNlink, [], `${at} a file's st_nlink is its number of names (L17)`);

    // Bin items and their cascaded links are there with their nodes.
    const lost: string[] = [];
    for (const item of space.trashList({ limit: 10_000 })) {
      const node = (await cluster.sql<{ id: string }>('SELECT r.node::text AS id FROM recycle_items r JOIN nodes n ON n.id = r.node WHERE r.id = $1', [item.id], db))[0];
      if (!node) lost.push(`item ${item.id} (${item.originalPath}) has no node`);
      for (const l of item.links) {
        const row = (await cluster.sql<{ link_node: string | null }>('SELECT link_node::text FROM nodes WHERE id = $1', [l.nodeId], db))[0];
        if (!row) lost.push(`item ${item.id}: its cascaded link ${l.nodeId} has no node`);
      }
    }
    t.same(lost, [], `${at} every bin item and every bound link cascaded into the bin is there with its node`);
  } finally {
    lib.close();
  }

  const q = async (sql: string): Promise<unknown[]> => cluster.sql(sql, [], db);
  t.same(await q("SELECT n.id FROM nodes n LEFT JOIN nodes x ON x.id = n.link_node WHERE n.link_flavour = 'bound' AND x.id IS NULL"), [], `${at} every bound link's target node exists`);
  t.same(await q('SELECT parent, name FROM entries GROUP BY parent, name HAVING count(*) > 1'), [], `${at} names are unique per directory`);
  t.same(await q("SELECT e.parent, e.name FROM entries e LEFT JOIN nodes p ON p.id = e.parent WHERE p.id IS NULL OR p.kind <> 'dir'"), [], `${at} every name's parent is a directory`);
  t.same(await q("SELECT e.node FROM entries e JOIN nodes n ON n.id = e.node WHERE e.is_dir <> (CASE WHEN n.kind = 'dir' THEN 1 ELSE 0 END)"), [], `${at} the directory flag matches the node`);
  t.same(
    await q('SELECT u.space FROM space_usage u FULL JOIN (SELECT space, count(*) AS nodes, coalesce(sum(size), 0) AS bytes FROM nodes GROUP BY space) r ON r.space = u.space WHERE u.nodes IS DISTINCT FROM r.nodes OR u.bytes IS DISTINCT FROM r.bytes'),
    [],
    `${at} the statfs counters equal the rows (nodes and bytes per space)`,
  );

  await t.resolves(librarySha256(home, { blobStore: store }), `${at} every file's bytes hash to its blob key`);
  const report = await checkLibrary(home, { blobStore: store });
  t.same(
    report.findings.filter((f) => f.problem).map((f) => `${f.check}: ${f.summary}`),
    [],
    `${at} fsck finds no problem`,
  );
  t.equal(report.exitCode, 0, `${at} fsck exit 0`);
});
