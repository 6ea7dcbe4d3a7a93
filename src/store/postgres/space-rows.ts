/**
 * A space's row primitives (src/store/space-rows.ts) as prepared PostgreSQL statements.
 *
 * A node row is read without its `layout` (D8: a sparse file's container header, up to ~1.3 MB):
 * over a network it would travel with every getattr of that file. The row carries whether it has
 * one, and `layout` is a getter that fetches it when a rule asks — once per container blob, since
 * a blob key names its bytes and so its header (content-addressed), kept in a small cache.
 */
import { exchangeByMoves, type CascadeLinkRow, type Counted, type ItemLinkRow, type ItemRow, type NodeRow, type SpaceRows, type Way } from '../space-rows.js';
import type { StorageClass } from '../types.js';
import type { PgConnection, PgStatement } from './connection.js';

const COLUMNS = ['id', 'space', 'kind', 'mode', 'uid', 'gid', 'size', 'blob', 'etag', 'rdev', 'storage_class', 'link_flavour', 'link_node',
  'link_path', 'link_base', 'atime', 'mtime', 'ctime', 'btime', 'atime_ns', 'mtime_ns', 'ctime_ns', 'btime_ns', 'state'];
/** A node's columns (of table alias `a`), `layout` replaced by whether there is one. */
const nodeCols = (a = ''): string => [...COLUMNS.map((c) => `${a}${c}`), `(${a}layout IS NOT NULL) AS has_layout`].join(', ');
const NODE_COLS = nodeCols();

const isId = (n: number): boolean => Number.isSafeInteger(n);

/** What a node's nlink counts, for the node of alias `a`: its subdirectories (a directory) or its names. */
const counts = (a: string): string => `CASE WHEN ${a}kind = 'dir' THEN (SELECT count(*) FROM entries s WHERE s.parent = ${a}id AND s.is_dir = 1) ELSE 0 END::INT AS subdirs,
  CASE WHEN ${a}kind = 'dir' THEN 1 ELSE (SELECT count(*) FROM entries x WHERE x.node = ${a}id) END::INT AS names`;

/**
 * SpaceRows.placed / placedPage as one statement each. `me`: node $1; `kid`: the child named $2
 * ('child'), or a page of children ('page': after $4, at most $5, bytewise as childrenPage) or all
 * of them ('all', in `children`'s order); `who`: the nodes whose ways up go with the answer (the
 * node's own names, unless a child was asked, and every bound target among the rows); `steps`: the
 * ways, each name's entry and then up its parents' one entry each (as `up`), to the space root or
 * the bin ($2/$3 or $3/$4). The ways travel as one JSON array on `me`'s row (role 0).
 */
// Every recursive step below reaches entries through `CROSS JOIN LATERAL (… OFFSET 0)`: the
// OFFSET keeps the planner from flattening it into a join, so each step is an index probe per
// row of the step before. As a plain join, a library whose tables were never analyzed (a new
// one, before autovacuum's first ANALYZE) got a hash join over all of entries at every level:
// O(depth × entries), 1–2 s for one statement on a 4,000-level chain (session 12, suite-pg2).
function placedSql(form: 'child' | 'page' | 'all'): string {
  const [stop1, stop2] = form === 'child' ? ['$3', '$4'] : ['$2', '$3'];
  const kid =
    form === 'child'
      ? `SELECT n.*, e.name AS entry_name, 0::BIGINT AS ord FROM entries e JOIN nodes n ON n.id = e.node WHERE $2::TEXT IS NOT NULL AND e.parent = $1 AND e.name = $2::TEXT`
      : form === 'page'
        ? `SELECT n.*, e.name AS entry_name, row_number() OVER (ORDER BY e.name COLLATE "C") AS ord FROM entries e JOIN nodes n ON n.id = e.node
           WHERE e.parent = $1 AND e.name COLLATE "C" > $4 COLLATE "C" ORDER BY e.name COLLATE "C" LIMIT $5`
        : `SELECT n.*, e.name AS entry_name, row_number() OVER (ORDER BY e.name) AS ord FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = $1`;
  // the node's own counts and its bound target only for getattr/readlink by id (a lookup's or a
  // page's directory needs its place, not its nlink: counting a big directory's subdirectories
  // at every lookup in it would read the whole directory)
  const own = form === 'child' ? '$2::TEXT IS NULL' : 'FALSE';
  return `WITH RECURSIVE me AS (SELECT * FROM nodes WHERE id = $1),
    kid AS (${kid}),
    who(id) AS (SELECT id FROM me
      UNION SELECT link_node FROM me WHERE ${own} AND link_flavour = 'bound'
      UNION SELECT link_node FROM kid WHERE link_flavour = 'bound'),
    steps(who_id, seq, depth, node, parent, name) AS (
      SELECT e.node, e.seq, 0, e.node, e.parent, e.name FROM entries e WHERE e.node IN (SELECT id FROM who)
      UNION ALL SELECT s.who_id, s.seq, s.depth + 1, e.node, e.parent, e.name FROM steps s CROSS JOIN LATERAL (SELECT node, parent, name FROM entries WHERE node = s.parent OFFSET 0) e
      WHERE s.parent <> ${stop1} AND s.parent <> ${stop2} AND s.depth < 100000)
    SELECT 0 AS role, 0::BIGINT AS ord, ${nodeCols('m.')}, NULL::TEXT AS entry_name,
      CASE WHEN ${own} AND m.kind = 'dir' THEN (SELECT count(*) FROM entries s WHERE s.parent = m.id AND s.is_dir = 1) ELSE 0 END::INT AS subdirs,
      CASE WHEN ${own} AND m.kind <> 'dir' THEN (SELECT count(*) FROM entries x WHERE x.node = m.id) ELSE 1 END::INT AS names,
      (SELECT coalesce(json_agg(json_build_array(who_id, seq, depth, node, parent, name) ORDER BY who_id, seq, depth), '[]'::json) FROM steps) AS ways
    FROM me m
    UNION ALL SELECT 1, k.ord, ${nodeCols('k.')}, k.entry_name, ${counts('k.')}, NULL FROM kid k
    ORDER BY role, ord`;
}

type RawNode = Omit<NodeRow, 'layout'> & { has_layout?: boolean; layout?: string | null };

/** Layouts of container blobs, by blob key (immutable for a key). */
const LAYOUT_CACHE_MAX = 256;

export function pgSpaceRows(conn: PgConnection): SpaceRows {
  const p = (sql: string) => conn.prepare(sql);
  const layouts = new Map<string, string>();
  const layoutOf = p('SELECT layout FROM nodes WHERE id = $1');
  const fetchLayout = (id: number, blob: string | null): string | null => {
    const known = blob === null ? undefined : layouts.get(blob);
    if (known !== undefined) return known;
    const layout = layoutOf.get<{ layout: string | null }>(id)?.layout ?? null;
    if (layout !== null && blob !== null) {
      if (layouts.size >= LAYOUT_CACHE_MAX) layouts.delete(layouts.keys().next().value!);
      layouts.set(blob, layout);
    }
    return layout;
  };
  /** A row as the rules see it: `layout` null, or fetched when first read. */
  const shape = <R extends RawNode>(raw: R): R & NodeRow => {
    const hasLayout = raw.has_layout === true;
    delete raw.has_layout;
    if (!hasLayout) {
      raw.layout = null;
      return raw as R & NodeRow;
    }
    let cached: string | null | undefined;
    Object.defineProperty(raw, 'layout', {
      enumerable: true,
      configurable: true,
      get: () => (cached ??= fetchLayout(raw.id, raw.blob)),
      set: (v: string | null) => void (cached = v),
    });
    return raw as R & NodeRow;
  };
  const one = <R extends RawNode>(st: PgStatement, ...args: Array<string | number>): (R & NodeRow) | undefined => {
    const r = st.get<R & Record<string, unknown>>(...args);
    return r ? shape(r) : undefined;
  };
  const many = <R extends RawNode>(st: PgStatement, ...args: Array<string | number>): Array<R & NodeRow> =>
    st.all<R & Record<string, unknown>>(...args).map((r) => shape(r));
  const n = nodeCols('n.');
  const q = {
    placed: p(placedSql('child')),
    placedPage: p(placedSql('page')),
    placedAll: p(placedSql('all')),
    node: p(`SELECT ${NODE_COLS} FROM nodes WHERE id = $1`),
    child: p(`SELECT ${n} FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = $1 AND e.name = $2`),
    children: p(`SELECT ${n}, e.name AS entry_name FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = $1 ORDER BY e.name`),
    // readdirplus's page (as SQLite's): names compared bytewise whatever the database's collation
    childrenPage: p(`SELECT ${n}, e.name AS entry_name,
      CASE WHEN e.is_dir = 1 THEN (SELECT count(*) FROM entries s WHERE s.parent = e.node AND s.is_dir = 1) ELSE 0 END::INT AS subdirs,
      CASE WHEN e.is_dir = 1 THEN 1 ELSE (SELECT count(*) FROM entries x WHERE x.node = e.node) END::INT AS names
      FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = $1 AND e.name COLLATE "C" > $2 COLLATE "C" ORDER BY e.name COLLATE "C" LIMIT $3`),
    // a node's names by age: the (node, seq) index of migration 7
    entryOf: p('SELECT parent, name FROM entries WHERE node = $1 ORDER BY seq LIMIT 1'),
    entriesOf: p('SELECT parent, name FROM entries WHERE node = $1 ORDER BY seq'),
    nameCount: p('SELECT count(*) AS n FROM entries WHERE node = $1'),
    // the way up in one round trip: a node's oldest name, then each parent's (a directory has one)
    up: p(`WITH RECURSIVE steps(node, parent, name, depth) AS (
        SELECT * FROM (SELECT node, parent, name, 0 FROM entries WHERE node = $1 ORDER BY seq LIMIT 1) AS own
        UNION ALL SELECT e.node, e.parent, e.name, s.depth + 1 FROM steps s CROSS JOIN LATERAL (SELECT node, parent, name FROM entries WHERE node = s.parent OFFSET 0) e
        WHERE s.parent <> $2 AND s.parent <> $3 AND s.depth < 100000)
      SELECT node, parent, name FROM steps ORDER BY depth`),
    // a path in one round trip: step i joins the entry named by the i-th name under step i-1's node
    walk: p(`WITH RECURSIVE steps(i, id) AS (SELECT 0, $1::BIGINT
        UNION ALL SELECT s.i + 1, e.node FROM steps s
          CROSS JOIN LATERAL (SELECT node FROM entries WHERE parent = s.id AND name = ($2::jsonb ->> s.i) COLLATE "C" OFFSET 0) e
        WHERE s.i < jsonb_array_length($2::jsonb))
      SELECT s.i AS step, ${n},
        CASE WHEN s.i = jsonb_array_length($2::jsonb) AND n.kind <> 'dir' THEN (SELECT count(*) FROM entries x WHERE x.node = n.id) ELSE -1 END::INT AS names
      FROM steps s JOIN nodes n ON n.id = s.id WHERE s.i > 0 ORDER BY s.i`),
    namesBetween: p('SELECT name FROM entries WHERE parent = $1 AND name >= $2 AND name < $3'),
    hasChildren: p('SELECT 1 AS x FROM entries WHERE parent = $1 LIMIT 1'),
    firstChild: p('SELECT node, is_dir, name FROM entries WHERE parent = $1 LIMIT 1'),
    // firstChild level by level, inside the server (LATERAL: one child per level, as LIMIT 1 gives)
    firstDescent: p(`WITH RECURSIVE d(node, is_dir, name, depth) AS (
        (SELECT node, is_dir, name, 1 FROM entries WHERE parent = $1 LIMIT 1)
        UNION ALL
        SELECT c.node, c.is_dir, c.name, d.depth + 1 FROM d CROSS JOIN LATERAL (SELECT node, is_dir, name FROM entries WHERE parent = d.node LIMIT 1) c WHERE d.is_dir = 1)
      SELECT node, is_dir, name FROM d ORDER BY depth`),
    subdirCount: p('SELECT count(*) AS n FROM entries WHERE parent = $1 AND is_dir = 1'),
    insertNode: p(`INSERT INTO nodes (space, kind, mode, uid, gid, size, blob, etag, layout, rdev, storage_class, link_flavour, link_node,
      link_path, link_base, atime, mtime, ctime, btime, atime_ns, mtime_ns, ctime_ns, btime_ns)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) RETURNING id`),
    insertEntry: p('INSERT INTO entries (parent, name, node, is_dir, seq) VALUES ($1, $2, $3, $4, (SELECT coalesce(max(seq), 0) + 1 FROM entries WHERE node = $3))'),
    moveEntry: p('UPDATE entries SET parent = $1, name = $2 WHERE node = $3'),
    moveName: p(`UPDATE entries SET parent = $1, name = $2, seq = (SELECT max(x.seq) + 1 FROM entries x WHERE x.node = entries.node)
      WHERE parent = $3 AND name = $4 RETURNING node`),
    // many links' names in one statement (the cascade: one round trip), each only if it names its link
    moveNames: p(`UPDATE entries SET parent = (m ->> 3)::bigint, name = m ->> 4,
        seq = (SELECT max(x.seq) + 1 FROM entries x WHERE x.node = entries.node)
      FROM jsonb_array_elements($1::jsonb) m
      WHERE entries.parent = (m ->> 1)::bigint AND entries.name = m ->> 2 AND entries.node = (m ->> 0)::bigint`),
    deleteEntry: p('DELETE FROM entries WHERE node = $1 RETURNING parent, name'),
    deleteName: p('DELETE FROM entries WHERE parent = $1 AND name = $2 RETURNING node'),
    deleteNode: p('DELETE FROM nodes WHERE id = $1'),
    // the store's clock is µs: a time set to now has no nanoseconds below it (migration 9)
    touch: p('UPDATE nodes SET mtime = $1, mtime_ns = 0, ctime = $1, ctime_ns = 0 WHERE id = $2'),
    touchCtime: p('UPDATE nodes SET ctime = $1, ctime_ns = 0 WHERE id = $2'),
    touchAtime: p('UPDATE nodes SET atime = $1, atime_ns = 0 WHERE id = $2'),
    setState: p('UPDATE nodes SET state = $1 WHERE id = $2'),
    // many at once: the ids as one JSON array (one round trip, whatever the count)
    setStates: p('UPDATE nodes SET state = $1 WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text($2::jsonb))'),
    setClass: p('UPDATE nodes SET storage_class = $1 WHERE id = $2'),
    setContent: p('UPDATE nodes SET blob = $1, size = $2, etag = $3, layout = $4, mtime = $5, mtime_ns = $8, ctime = $6, ctime_ns = 0 WHERE id = $7'),
    setattr: p(`UPDATE nodes SET mode = $1, uid = $2, gid = $3, atime = $4, atime_ns = $8, mtime = $5, mtime_ns = $9, ctime = $6, ctime_ns = 0
      WHERE id = $7`),
    rebind: p("UPDATE nodes SET link_node = $1 WHERE link_flavour = 'bound' AND link_node = $2"),
    spaceClass: p('SELECT default_storage_class AS c FROM spaces WHERE name = $1'),
    setSpaceClass: p('UPDATE spaces SET default_storage_class = $1 WHERE name = $2'),
    // the view over the per-transaction deltas of migration 4
    statfs: p('SELECT nodes AS files, bytes FROM space_usage WHERE space = $1'),
    // (+ the entry of the name's directory, as entryOf reads it: the cascade's path of the link)
    boundLinksToCascade: p(`SELECT n.id, e.parent, e.name,
        (SELECT d.parent FROM entries d WHERE d.node = e.parent ORDER BY d.seq LIMIT 1) AS dparent,
        (SELECT d.name FROM entries d WHERE d.node = e.parent ORDER BY d.seq LIMIT 1) AS dname
      FROM nodes n LEFT JOIN entries e ON e.node = n.id
      WHERE n.link_flavour = 'bound' AND n.link_node = $1 AND n.state = 'live'
      AND NOT EXISTS (SELECT 1 FROM recycle_items r WHERE r.node = n.id) ORDER BY n.id, e.seq`),
    boundLinksAll: p(`SELECT ${NODE_COLS} FROM nodes WHERE link_flavour = 'bound' AND link_node = $1`),
    // migration 10's counter, kept by triggers: O(1) however many links the file has
    boundLinkCount: p('SELECT n FROM bound_links WHERE target = $1'),
    boundTargetsIn: p(`WITH RECURSIVE sub(id) AS (SELECT $1::BIGINT UNION ALL SELECT e.node FROM sub CROSS JOIN LATERAL (SELECT node FROM entries WHERE parent = sub.id OFFSET 0) e)
      SELECT n.link_node AS target, count(*) AS n FROM sub JOIN nodes n ON n.id = sub.id WHERE n.link_flavour = 'bound' GROUP BY n.link_node`),
    parentPathLinksIn: p(`WITH RECURSIVE sub(id) AS (SELECT $1::BIGINT UNION ALL SELECT e.node FROM sub CROSS JOIN LATERAL (SELECT node FROM entries WHERE parent = sub.id OFFSET 0) e)
      SELECT ${n} FROM sub JOIN nodes n ON n.id = sub.id WHERE n.link_flavour = 'path' AND n.link_base = 'parent'`),
    subtreeBytes: p(`WITH RECURSIVE sub(id) AS (SELECT node FROM entries WHERE parent = $1
      UNION ALL SELECT e.node FROM sub CROSS JOIN LATERAL (SELECT node FROM entries WHERE parent = sub.id OFFSET 0) e)
      SELECT sum(n.size) AS n FROM sub JOIN nodes n ON n.id = sub.id WHERE n.kind = 'file'`),
    subtreeCount: p(`WITH RECURSIVE sub(id) AS (SELECT node FROM entries WHERE parent = $1
      UNION ALL SELECT e.node FROM sub CROSS JOIN LATERAL (SELECT node FROM entries WHERE parent = sub.id OFFSET 0) e) SELECT count(*) AS n FROM sub`),
    insertItem: p(`INSERT INTO recycle_items (space, node, kind, name, original_path, size, removed_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`),
    itemsAfter: p('SELECT * FROM recycle_items WHERE space = $1 AND id > $2 ORDER BY id LIMIT $3'),
    itemsUpTo: p('SELECT * FROM recycle_items WHERE space = $1 AND id <= $2 ORDER BY id LIMIT $3'),
    itemsOlder: p('SELECT * FROM recycle_items WHERE space = $1 AND removed_at < $2 ORDER BY removed_at LIMIT $3'),
    lastItem: p('SELECT max(id) AS id FROM recycle_items WHERE space = $1'),
    item: p('SELECT * FROM recycle_items WHERE id = $1 AND space = $2'),
    itemByNode: p('SELECT id FROM recycle_items WHERE node = $1'),
    deleteItem: p('DELETE FROM recycle_items WHERE id = $1'),
    insertRecycleLink: p('INSERT INTO recycle_links (item, node, parent, name, original_path) VALUES ($1, $2, $3, $4, $5)'),
    insertRecycleLinks: p(`INSERT INTO recycle_links (item, node, parent, name, original_path)
      SELECT $1, (c ->> 0)::bigint, (c ->> 1)::bigint, c ->> 2, c ->> 3 FROM jsonb_array_elements($2::jsonb) c`),
    itemLinksFull: p('SELECT node, parent, name, original_path FROM recycle_links WHERE item = $1 ORDER BY node'),
    deleteItemLinks: p('DELETE FROM recycle_links WHERE item = $1'),
    deleteRecycleLink: p('DELETE FROM recycle_links WHERE node = $1'),
    xattrGet: p('SELECT value FROM xattrs WHERE node = $1 AND name = $2'),
    xattrList: p('SELECT name, value FROM xattrs WHERE node = $1 ORDER BY name'),
    xattrSet: p('INSERT INTO xattrs (node, name, value) VALUES ($1, $2, $3) ON CONFLICT (node, name) DO UPDATE SET value = excluded.value'),
    xattrDelete: p('DELETE FROM xattrs WHERE node = $1 AND name = $2'),
    xattrClear: p('DELETE FROM xattrs WHERE node = $1'),
    xattrCopy: p('INSERT INTO xattrs (node, name, value) SELECT $1, name, value FROM xattrs WHERE node = $2'),
  };
  type Item = ItemRow & Record<string, unknown>;
  const placedRows = (raws: Array<RawNode & Record<string, unknown>>): { me?: RawNode & Record<string, unknown>; kids: Array<Counted<NodeRow & { entry_name: string }>>; ways: Way[] } => {
    let me: (RawNode & Record<string, unknown>) | undefined;
    const kids: Array<Counted<NodeRow & { entry_name: string }>> = [];
    for (const r of raws) {
      const role = r.role;
      delete r.role;
      delete r.ord;
      if (role === 0) me = r;
      else {
        delete r.ways;
        kids.push(shape(r) as unknown as Counted<NodeRow & { entry_name: string }>);
      }
    }
    const ways: Way[] = [];
    for (const [of, seq, , node, parent, name] of (me?.ways ?? []) as Array<[number, number, number, number, number, string]>) {
      const last = ways[ways.length - 1];
      const way = last && last.of === of && last.seq === seq ? last : (ways[ways.push({ of, seq, steps: [] }) - 1]!);
      way.steps.push({ node, parent, name });
    }
    if (me) {
      delete me.ways;
      delete me.entry_name;
      shape(me);
    }
    return { ...(me ? { me } : {}), kids, ways };
  };
  return {
    placed: (id, child, stops) => {
      if (!isId(id)) return undefined;
      const { me, kids, ways } = placedRows(q.placed.all<RawNode & Record<string, unknown>>(id, child ?? null, stops[0], stops[1]));
      return me ? { row: me as unknown as Counted, child: kids[0], ways } : undefined;
    },
    placedPage: (id, after, limit, stops) => {
      if (!isId(id)) return undefined;
      const raws = limit === undefined ? q.placedAll.all<RawNode & Record<string, unknown>>(id, stops[0], stops[1]) : q.placedPage.all<RawNode & Record<string, unknown>>(id, stops[0], stops[1], after ?? '', limit);
      const { me, kids, ways } = placedRows(raws);
      return me ? { row: me as unknown as Counted, children: kids, ways } : undefined;
    },
    // An id that is no integer (NaN from a caller) names no row, as in SQLite; libpq cannot send it.
    node: (id) => (isId(id) ? one(q.node, id) : undefined),
    child: (parent, name) => one(q.child, parent, name),
    children: (parent) => many<RawNode & { entry_name: string }>(q.children, parent),
    entryOf: (node) => q.entryOf.get<{ parent: number; name: string }>(node),
    entriesOf: (node) => q.entriesOf.all<{ parent: number; name: string }>(node),
    nameCount: (node) => q.nameCount.get<{ n: number }>(node)!.n,
    up: (node, stops) => q.up.all<{ node: number; parent: number; name: string }>(node, stops[0], stops[1]),
    // A last step that is no directory brings its names (nlink) along; `names` -1 elsewhere: not
    // read. A directory's subdirectories are not counted here: the rules walk to a parent
    // directory at every create, and counting would read the whole directory each time.
    walk: (start, names) =>
      many<RawNode & { step?: number; subdirs?: number; names?: number }>(q.walk, start, JSON.stringify(names)).map((r) => {
        delete r.step;
        if (r.names === -1) delete r.names;
        else r.subdirs = 0;
        return r;
      }),
    namesBetween: (parent, lo, hi) => q.namesBetween.all<{ name: string }>(parent, lo, hi).map((r) => r.name),
    hasChildren: (parent) => q.hasChildren.get(parent) !== undefined,
    firstChild: (parent) => q.firstChild.get<{ node: number; is_dir: number; name: string }>(parent),
    firstDescent: (parent) => q.firstDescent.all<{ node: number; is_dir: number; name: string }>(parent),
    subdirCount: (parent) => q.subdirCount.get<{ n: number }>(parent)!.n,
    insertNode: (x) =>
      q.insertNode.get<{ id: number }>(
        x.space, x.kind, x.mode, x.uid, x.gid, x.size, x.blob, x.etag, x.layout, x.rdev, x.storage_class, x.link_flavour, x.link_node,
        x.link_path, x.link_base, x.atime, x.mtime, x.ctime, x.btime, x.atime_ns, x.mtime_ns, x.ctime_ns, x.btime_ns,
      )!.id,
    insertEntry: (parent, name, node, isDir) => void q.insertEntry.run(parent, name, node, isDir ? 1 : 0),
    moveEntry: (parent, name, node) => void q.moveEntry.run(parent, name, node),
    // what it removed (the change feed names the entry that went)
    deleteEntry: (node) => q.deleteEntry.all<{ parent: number; name: string }>(node),
    moveName: (fromParent, fromName, toParent, toName) => q.moveName.get<{ node: number }>(toParent, toName, fromParent, fromName)?.node,
    moveLinkNames: (moves) => (moves.length === 0 ? 0 : q.moveNames.run(JSON.stringify(moves)).changes),
    exchangeNames: (ap, an, bp, bn) => exchangeByMoves((fp, fn, tp, tn) => q.moveName.get<{ node: number }>(tp, tn, fp, fn)?.node, ap, an, bp, bn),
    deleteName: (parent, name) => q.deleteName.get<{ node: number }>(parent, name)?.node,
    childrenPage: (parent, after, limit) => many<RawNode & { entry_name: string; subdirs: number; names: number }>(q.childrenPage, parent, after ?? '', limit),
    deleteNode: (id) => void q.deleteNode.run(id),
    touch: (id, t) => void q.touch.run(t, id),
    touchCtime: (id, t) => void q.touchCtime.run(t, id),
    touchAtime: (id, t) => void q.touchAtime.run(t, id),
    setState: (id, state) => void q.setState.run(state, id),
    setStates: (ids, state) => void (ids.length > 0 && q.setStates.run(state, JSON.stringify(ids))),
    setClass: (id, cls) => void q.setClass.run(cls, id),
    setContent: (id, blob, mtime, ctime, mtimeNs = 0) => void q.setContent.run(blob.key, blob.size, blob.etag, blob.layout ?? null, mtime, ctime, id, mtimeNs),
    setattr: (a) => void q.setattr.run(a.mode, a.uid, a.gid, a.atime, a.mtime, a.ctime, a.id, a.atime_ns, a.mtime_ns),
    rebind: (from, to) => void q.rebind.run(to, from),
    spaceClass: (space) => q.spaceClass.get<{ c: StorageClass }>(space)!.c,
    setSpaceClass: (space, cls) => void q.setSpaceClass.run(cls, space),
    statfs: (space) => q.statfs.get<{ files: number; bytes: number }>(space),
    boundLinksToCascade: (target) => q.boundLinksToCascade.all<CascadeLinkRow>(target),
    boundLinksAll: (target) => many(q.boundLinksAll, target),
    boundLinkCount: (target) => q.boundLinkCount.get<{ n: number }>(target)?.n ?? 0,
    boundTargetsIn: (top) => q.boundTargetsIn.all<{ target: number; n: number }>(top),
    parentPathLinksIn: (top) => many(q.parentPathLinksIn, top),
    subtreeBytes: (dir) => q.subtreeBytes.get<{ n: number | null }>(dir)!.n ?? 0,
    subtreeCount: (dir) => q.subtreeCount.get<{ n: number }>(dir)!.n,
    insertItem: (it) => q.insertItem.get<{ id: number }>(it.space, it.node, it.kind, it.name, it.original_path, it.size, it.removed_at)!.id,
    // PostgreSQL: LIMIT NULL is no limit
    itemsAfter: (space, after, limit) => q.itemsAfter.all<Item>(space, after, limit ?? null),
    itemsUpTo: (space, last, limit) => q.itemsUpTo.all<Item>(space, last, limit),
    itemsOlder: (space, cutoff, limit) => q.itemsOlder.all<Item>(space, cutoff, limit),
    lastItem: (space) => q.lastItem.get<{ id: number | null }>(space)!.id ?? undefined,
    item: (id, space) => (isId(id) ? q.item.get<Item>(id, space) : undefined),
    itemByNode: (node) => (isId(node) ? q.itemByNode.get<{ id: number }>(node)?.id : undefined),
    deleteItem: (id) => void q.deleteItem.run(id),
    insertItemLink: (item, l) => void q.insertRecycleLink.run(item, l.node, l.parent, l.name, l.original_path),
    insertItemLinks: (item, ls) =>
      void (ls.length > 0 && q.insertRecycleLinks.run(item, JSON.stringify(ls.map((l) => [l.node, l.parent, l.name, l.original_path])))),
    itemLinks: (item) => q.itemLinksFull.all<ItemLinkRow & Record<string, unknown>>(item),
    deleteItemLinks: (item) => void q.deleteItemLinks.run(item),
    deleteItemLinkOf: (node) => void q.deleteRecycleLink.run(node),
    xattr: (node, name) => q.xattrGet.get<{ value: Buffer }>(node, name)?.value,
    xattrs: (node) => q.xattrList.all<{ name: string; value: Buffer }>(node),
    setXattr: (node, name, value) => void q.xattrSet.run(node, name, value),
    deleteXattr: (node, name) => q.xattrDelete.run(node, name).changes > 0,
    clearXattrs: (node) => void q.xattrClear.run(node),
    copyXattrs: (to, from) => void q.xattrCopy.run(to, from),
  };
}
