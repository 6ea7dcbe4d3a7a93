/** A space's row primitives (src/store/space-rows.ts) as prepared SQLite statements. */
import type Database from 'better-sqlite3';
import { exchangeByMoves, type CascadeLinkRow, type ItemLinkRow, type ItemRow, type NodeRow, type SpaceRows, type StatRow } from '../space-rows.js';
import type { StorageClass } from '../types.js';

export function sqliteSpaceRows(db: Database.Database): SpaceRows {
  const p = (sql: string) => db.prepare(sql);
  const q = {
    node: p('SELECT * FROM nodes WHERE id = ?'),
    child: p('SELECT n.* FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? AND e.name = ?'),
    children: p('SELECT n.*, e.name AS entry_name FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? ORDER BY e.name'),
    childrenPage: p(`SELECT n.*, e.name AS entry_name,
      CASE WHEN e.is_dir = 1 THEN (SELECT count(*) FROM entries s WHERE s.parent = e.node AND s.is_dir = 1) ELSE 0 END AS subdirs,
      CASE WHEN e.is_dir = 1 THEN 1 ELSE (SELECT count(*) FROM entries x WHERE x.node = e.node) END AS names
      FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? AND e.name > ? ORDER BY e.name LIMIT ?`),
    // the same page as StatRow tuples (raw rows; no strings but the name and a layout; few columns:
    // better-sqlite3 sets each value of a raw row one by one, the larger part of a walk's cost)
    statPage: p(`SELECT e.name, n.id, (CASE n.kind WHEN 'file' THEN 0 WHEN 'dir' THEN 1 WHEN 'link' THEN 2 ELSE 3 END) * 2 + (n.link_flavour IS 'bound'),
      n.mode, n.uid, n.gid, n.size, n.rdev, n.atime, n.mtime, n.ctime, n.btime, n.atime_ns * 1000000 + n.mtime_ns * 1000 + n.ctime_ns, n.layout,
      CASE WHEN e.is_dir = 1 THEN (SELECT count(*) FROM entries s WHERE s.parent = e.node AND s.is_dir = 1) ELSE (SELECT count(*) FROM entries x WHERE x.node = e.node) END
      FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? AND e.name > ? ORDER BY e.name LIMIT ?`).raw(true),
    // the same page with what a name and its d_type need (issue 15: a names-only listing)
    namePage: p(`SELECT e.name, n.id, (CASE n.kind WHEN 'file' THEN 0 WHEN 'dir' THEN 1 WHEN 'link' THEN 2 ELSE 3 END) * 2 + (n.link_flavour IS 'bound'), n.mode
      FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? AND e.name > ? ORDER BY e.name LIMIT ?`).raw(true),
    // namePage as one value: the page's rows as `number/name/number/name…` (names hold no '/'), one
    // statement and one string for the page (issue 15, i15-find4): a row's values cost better-sqlite3
    // a JS value each, and reading the rows twice (a names column, a numbers column) paid the join
    // twice. The number is ((id · 2¹⁶ + mode) · 8 + kind × 2 + bound), exact below 2⁵³; NULL (so the
    // row is missing from the text, and the count says so) for an id ≥ 2³⁴: then the page is read with
    // namePage. The aggregate takes the rows in the subquery's order (SQLite feeds an ordered,
    // limited subquery to it as it steps); the reader checks the order and reads again if it is not.
    namePageText: p(`SELECT count(*), group_concat(x, '/') FROM (SELECT CASE WHEN n.id < 17179869184 AND n.mode BETWEEN 0 AND 65535 THEN (n.id * 65536 + n.mode) * 8
        + (CASE n.kind WHEN 'file' THEN 0 WHEN 'dir' THEN 1 WHEN 'link' THEN 2 ELSE 3 END) * 2 + (n.link_flavour IS 'bound') END || '/' || e.name AS x
      FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? AND e.name > ? ORDER BY e.name LIMIT ?)`).raw(true),
    // any commit of another connection moves data_version, any row written by this one total_changes
    listingVersion: p(`SELECT (SELECT data_version FROM pragma_data_version()) || ':' || total_changes()`).pluck(),
    // a node's names by age: the (node, seq) index of migration 7
    entryOf: p('SELECT parent, name FROM entries WHERE node = ? ORDER BY seq LIMIT 1'),
    entriesOf: p('SELECT parent, name FROM entries WHERE node = ? ORDER BY seq'),
    nameCount: p('SELECT count(*) AS n FROM entries WHERE node = ?'),
    // C2: the names of one parent in [lo, hi) — a range of the (parent, name) primary key
    namesBetween: p('SELECT name FROM entries WHERE parent = ? AND name >= ? AND name < ?'),
    hasChildren: p('SELECT 1 FROM entries WHERE parent = ? LIMIT 1'),
    firstChild: p('SELECT node, is_dir, name FROM entries WHERE parent = ? LIMIT 1'),
    subdirCount: p('SELECT count(*) AS n FROM entries WHERE parent = ? AND is_dir = 1'),
    insertNode: p(`INSERT INTO nodes (space, kind, mode, uid, gid, size, blob, etag, layout, rdev, storage_class, link_flavour, link_node,
      link_path, link_base, atime, mtime, ctime, btime, atime_ns, mtime_ns, ctime_ns, btime_ns) VALUES (@space, @kind, @mode, @uid, @gid, @size,
      @blob, @etag, @layout, @rdev, @storage_class, @link_flavour, @link_node, @link_path, @link_base, @atime, @mtime, @ctime, @btime,
      @atime_ns, @mtime_ns, @ctime_ns, @btime_ns)`),
    insertEntry: p('INSERT INTO entries (parent, name, node, is_dir, seq) VALUES (?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM entries WHERE node = ?))'),
    moveEntry: p('UPDATE entries SET parent = ?, name = ? WHERE node = ?'),
    // the writes of names say what they changed (RETURNING): the change feed records it without a read
    moveName: p(`UPDATE entries SET parent = ?, name = ?, seq = (SELECT max(x.seq) + 1 FROM entries x WHERE x.node = entries.node)
      WHERE parent = ? AND name = ? RETURNING node`),
    // many links' names in one statement (the cascade), each only if it names its link
    moveNames: p(`UPDATE entries SET parent = m.value ->> 3, name = m.value ->> 4,
        seq = (SELECT max(x.seq) + 1 FROM entries x WHERE x.node = entries.node)
      FROM json_each(?) m WHERE entries.parent = m.value ->> 1 AND entries.name = m.value ->> 2 AND entries.node = m.value ->> 0`),
    deleteEntry: p('DELETE FROM entries WHERE node = ? RETURNING parent, name'),
    deleteName: p('DELETE FROM entries WHERE parent = ? AND name = ? RETURNING node'),
    deleteNode: p('DELETE FROM nodes WHERE id = ?'),
    // the store's clock is µs: a time set to now has no nanoseconds below it (migration 9)
    touch: p('UPDATE nodes SET mtime = ?, mtime_ns = 0, ctime = ?, ctime_ns = 0 WHERE id = ?'),
    touchCtime: p('UPDATE nodes SET ctime = ?, ctime_ns = 0 WHERE id = ?'),
    touchAtime: p('UPDATE nodes SET atime = ?, atime_ns = 0 WHERE id = ?'),
    setState: p('UPDATE nodes SET state = ? WHERE id = ?'),
    // many at once: the ids as one JSON array (one statement, whatever the count)
    setStates: p('UPDATE nodes SET state = ? WHERE id IN (SELECT value FROM json_each(?))'),
    setClass: p('UPDATE nodes SET storage_class = ? WHERE id = ?'),
    setContent: p(`UPDATE nodes SET blob = @blob, size = @size, etag = @etag, layout = @layout, mtime = @mtime, mtime_ns = @mtime_ns,
      ctime = @ctime, ctime_ns = 0 WHERE id = @id`),
    setattr: p(`UPDATE nodes SET mode = @mode, uid = @uid, gid = @gid, atime = @atime, atime_ns = @atime_ns, mtime = @mtime,
      mtime_ns = @mtime_ns, ctime = @ctime, ctime_ns = 0 WHERE id = @id`),
    rebind: p("UPDATE nodes SET link_node = ? WHERE link_flavour = 'bound' AND link_node = ?"),
    spaceClass: p('SELECT default_storage_class AS c FROM spaces WHERE name = ?'),
    setSpaceClass: p('UPDATE spaces SET default_storage_class = ? WHERE name = ?'),
    // kept by the triggers of migration 4: O(1) whatever the size of the space
    statfs: p('SELECT nodes AS files, bytes FROM space_usage WHERE space = ?'),
    // (+ the entry of the name's directory, as entryOf reads it: the cascade's path of the link)
    boundLinksToCascade: p(`SELECT n.id, e.parent, e.name,
        (SELECT d.parent FROM entries d WHERE d.node = e.parent ORDER BY d.seq LIMIT 1) AS dparent,
        (SELECT d.name FROM entries d WHERE d.node = e.parent ORDER BY d.seq LIMIT 1) AS dname
      FROM nodes n LEFT JOIN entries e ON e.node = n.id
      WHERE n.link_flavour = 'bound' AND n.link_node = ? AND n.state = 'live'
      AND NOT EXISTS (SELECT 1 FROM recycle_items r WHERE r.node = n.id) ORDER BY n.id, e.seq`),
    boundLinksAll: p("SELECT * FROM nodes WHERE link_flavour = 'bound' AND link_node = ?"),
    // migration 10's counter, kept by triggers: O(1) however many links the file has
    boundLinkCount: p('SELECT n FROM bound_links WHERE target = ?'),
    boundTargetsIn: p(`WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
      SELECT n.link_node AS target, count(*) AS n FROM sub JOIN nodes n ON n.id = sub.id WHERE n.link_flavour = 'bound' GROUP BY n.link_node`),
    parentPathLinksIn: p(`WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
      SELECT n.* FROM sub JOIN nodes n ON n.id = sub.id WHERE n.link_flavour = 'path' AND n.link_base = 'parent'`),
    subtreeBytes: p(`WITH RECURSIVE sub(id) AS (SELECT node FROM entries WHERE parent = ?
      UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
      SELECT sum(n.size) AS n FROM sub JOIN nodes n ON n.id = sub.id WHERE n.kind = 'file'`),
    subtreeCount: p(`WITH RECURSIVE sub(id) AS (SELECT node FROM entries WHERE parent = ?
      UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id) SELECT count(*) AS n FROM sub`),
    insertItem: p(`INSERT INTO recycle_items (space, node, kind, name, original_path, size, removed_at)
      VALUES (@space, @node, @kind, @name, @original_path, @size, @removed_at)`),
    // the bin by (space, id) and (space, removed_at): migration 4's indexes
    itemsAfter: p('SELECT * FROM recycle_items WHERE space = ? AND id > ? ORDER BY id LIMIT ?'),
    itemsUpTo: p('SELECT * FROM recycle_items WHERE space = ? AND id <= ? ORDER BY id LIMIT ?'),
    itemsOlder: p('SELECT * FROM recycle_items WHERE space = ? AND removed_at < ? ORDER BY removed_at LIMIT ?'),
    lastItem: p('SELECT max(id) AS id FROM recycle_items WHERE space = ?'),
    item: p('SELECT * FROM recycle_items WHERE id = ? AND space = ?'),
    itemByNode: p('SELECT id FROM recycle_items WHERE node = ?'),
    deleteItem: p('DELETE FROM recycle_items WHERE id = ?'),
    insertRecycleLink: p('INSERT INTO recycle_links (item, node, parent, name, original_path) VALUES (?, ?, ?, ?, ?)'),
    insertRecycleLinks: p(`INSERT INTO recycle_links (item, node, parent, name, original_path)
      SELECT ?, c.value ->> 0, c.value ->> 1, c.value ->> 2, c.value ->> 3 FROM json_each(?) c`),
    itemLinksFull: p('SELECT node, parent, name, original_path FROM recycle_links WHERE item = ? ORDER BY node'),
    deleteItemLinks: p('DELETE FROM recycle_links WHERE item = ?'),
    deleteRecycleLink: p('DELETE FROM recycle_links WHERE node = ?'),
    xattrGet: p('SELECT value FROM xattrs WHERE node = ? AND name = ?'),
    xattrList: p('SELECT name, value FROM xattrs WHERE node = ? ORDER BY name'),
    xattrSet: p('INSERT INTO xattrs (node, name, value) VALUES (?, ?, ?) ON CONFLICT (node, name) DO UPDATE SET value = excluded.value'),
    xattrDelete: p('DELETE FROM xattrs WHERE node = ? AND name = ?'),
    xattrClear: p('DELETE FROM xattrs WHERE node = ?'),
    xattrCopy: p('INSERT INTO xattrs (node, name, value) SELECT ?, name, value FROM xattrs WHERE node = ?'),
  };
  return {
    node: (id) => q.node.get(id) as NodeRow | undefined,
    child: (parent, name) => q.child.get(parent, name) as NodeRow | undefined,
    children: (parent) => q.children.all(parent) as Array<NodeRow & { entry_name: string }>,
    // '' sorts before every name (names are never empty)
    childrenPage: (parent, after, limit) => q.childrenPage.all(parent, after ?? '', limit) as Array<NodeRow & { entry_name: string; subdirs: number; names: number }>,
    statPage: (parent, after, limit) => q.statPage.all(parent, after ?? '', limit) as StatRow[],
    namePage: (parent, after, limit) => {
      const [count, text] = q.namePageText.get(parent, after ?? '', limit) as [number, string | null];
      const whole = () => q.namePage.all(parent, after ?? '', limit) as Array<[string, number, number, number]>;
      if (count === 0) return [];
      const parts = text === null ? [] : text.split('/');
      if (parts.length !== count * 2) return whole(); // a NULL number (id ≥ 2³⁴)
      const rows = new Array<[string, number, number, number]>(count);
      let prev = '';
      for (let i = 0; i < count; i++) {
        const v = Number(parts[2 * i]);
        const name = parts[2 * i + 1]!;
        // name order (bytes) as JS compares it (UTF-16 units): the same except around surrogates, and
        // then (or were the aggregate ever out of order) the rows are read one by one
        if (!(name > prev)) return whole();
        prev = name;
        const hi = Math.floor(v / 8);
        rows[i] = [name, Math.floor(hi / 65536), v - hi * 8, hi % 65536];
      }
      return rows;
    },
    listingVersion: () => q.listingVersion.get() as string,
    entryOf: (node) => q.entryOf.get(node) as { parent: number; name: string } | undefined,
    entriesOf: (node) => q.entriesOf.all(node) as Array<{ parent: number; name: string }>,
    nameCount: (node) => (q.nameCount.get(node) as { n: number }).n,
    namesBetween: (parent, lo, hi) => (q.namesBetween.all(parent, lo, hi) as Array<{ name: string }>).map((r) => r.name),
    hasChildren: (parent) => q.hasChildren.get(parent) !== undefined,
    firstChild: (parent) => q.firstChild.get(parent) as { node: number; is_dir: number; name: string } | undefined,
    subdirCount: (parent) => (q.subdirCount.get(parent) as { n: number }).n,
    insertNode: (node) => Number(q.insertNode.run(node).lastInsertRowid),
    insertEntry: (parent, name, node, isDir) => void q.insertEntry.run(parent, name, node, isDir ? 1 : 0, node),
    moveEntry: (parent, name, node) => void q.moveEntry.run(parent, name, node),
    moveName: (fromParent, fromName, toParent, toName) => (q.moveName.get(toParent, toName, fromParent, fromName) as { node: number } | undefined)?.node,
    moveLinkNames: (moves) => (moves.length === 0 ? 0 : q.moveNames.run(JSON.stringify(moves)).changes),
    exchangeNames: (ap, an, bp, bn) =>
      exchangeByMoves((fp, fn, tp, tn) => (q.moveName.get(tp, tn, fp, fn) as { node: number } | undefined)?.node, ap, an, bp, bn),
    deleteEntry: (node) => q.deleteEntry.all(node) as Array<{ parent: number; name: string }>,
    deleteName: (parent, name) => (q.deleteName.get(parent, name) as { node: number } | undefined)?.node,
    deleteNode: (id) => void q.deleteNode.run(id),
    touch: (id, t) => void q.touch.run(t, t, id),
    touchCtime: (id, t) => void q.touchCtime.run(t, id),
    touchAtime: (id, t) => void q.touchAtime.run(t, id),
    setState: (id, state) => void q.setState.run(state, id),
    setStates: (ids, state) => void (ids.length > 0 && q.setStates.run(state, JSON.stringify(ids))),
    setClass: (id, cls) => void q.setClass.run(cls, id),
    setContent: (id, blob, mtime, ctime, mtimeNs = 0) =>
      void q.setContent.run({ id, blob: blob.key, size: blob.size, etag: blob.etag, layout: blob.layout ?? null, mtime, mtime_ns: mtimeNs, ctime }),
    setattr: (a) => void q.setattr.run(a),
    rebind: (from, to) => void q.rebind.run(to, from),
    spaceClass: (space) => (q.spaceClass.get(space) as { c: StorageClass }).c,
    setSpaceClass: (space, cls) => void q.setSpaceClass.run(cls, space),
    statfs: (space) => q.statfs.get(space) as { files: number; bytes: number } | undefined,
    boundLinksToCascade: (target) => q.boundLinksToCascade.all(target) as CascadeLinkRow[],
    boundLinksAll: (target) => q.boundLinksAll.all(target) as NodeRow[],
    boundLinkCount: (target) => (q.boundLinkCount.get(target) as { n: number } | undefined)?.n ?? 0,
    boundTargetsIn: (top) => q.boundTargetsIn.all(top) as Array<{ target: number; n: number }>,
    parentPathLinksIn: (top) => q.parentPathLinksIn.all(top) as NodeRow[],
    subtreeBytes: (dir) => (q.subtreeBytes.get(dir) as { n: number | null }).n ?? 0,
    subtreeCount: (dir) => (q.subtreeCount.get(dir) as { n: number }).n,
    insertItem: (it) => Number(q.insertItem.run(it).lastInsertRowid),
    // SQLite: a negative LIMIT is no limit
    itemsAfter: (space, after, limit) => q.itemsAfter.all(space, after, limit ?? -1) as ItemRow[],
    itemsUpTo: (space, last, limit) => q.itemsUpTo.all(space, last, limit) as ItemRow[],
    itemsOlder: (space, cutoff, limit) => q.itemsOlder.all(space, cutoff, limit) as ItemRow[],
    lastItem: (space) => (q.lastItem.get(space) as { id: number | null }).id ?? undefined,
    item: (id, space) => q.item.get(id, space) as ItemRow | undefined,
    itemByNode: (node) => (q.itemByNode.get(node) as { id: number } | undefined)?.id,
    deleteItem: (id) => void q.deleteItem.run(id),
    insertItemLink: (item, l) => void q.insertRecycleLink.run(item, l.node, l.parent, l.name, l.original_path),
    insertItemLinks: (item, ls) =>
      void (ls.length > 0 && q.insertRecycleLinks.run(item, JSON.stringify(ls.map((l) => [l.node, l.parent, l.name, l.original_path])))),
    itemLinks: (item) => q.itemLinksFull.all(item) as ItemLinkRow[],
    deleteItemLinks: (item) => void q.deleteItemLinks.run(item),
    deleteItemLinkOf: (node) => void q.deleteRecycleLink.run(node),
    xattr: (node, name) => (q.xattrGet.get(node, name) as { value: Buffer } | undefined)?.value,
    xattrs: (node) => q.xattrList.all(node) as Array<{ name: string; value: Buffer }>,
    setXattr: (node, name, value) => void q.xattrSet.run(node, name, value),
    deleteXattr: (node, name) => q.xattrDelete.run(node, name).changes > 0,
    clearXattrs: (node) => void q.xattrClear.run(node),
    copyXattrs: (to, from) => void q.xattrCopy.run(to, from),
  };
}
